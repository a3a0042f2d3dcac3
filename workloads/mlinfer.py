"""Handwritten-digit recognition: a small neural network loaded from disk, then inference.

Setup trains an MLP on scikit-learn's bundled digits set (no download) with a fixed seed and
saves the model and the held-out images into the scratch dir, as a deployment would ship them.
The function loads the model, reads the images, classifies them and writes the predictions; the
model is saved and loaded again every round, which is the part that touches the file system.
"""

import os
import pickle
import time
import warnings

# One BLAS thread: the same floating-point summation order under every cpuset, hence the same
# predictions and the same digest in every mode.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier

import contract

PRESETS = {"tiny": (2, 15), "small": (20, 150), "full": (60, 150)}  # (rounds, training epochs)
SEED = 20240505


def train(work, epochs):
    # Small presets stop training early on purpose; the warning would only be noise.
    warnings.simplefilter("ignore", ConvergenceWarning)
    digits = load_digits()
    x = digits.data / 16.0
    y = digits.target
    n_train = 1200
    model = MLPClassifier(hidden_layer_sizes=(128, 64), max_iter=epochs, random_state=SEED)
    model.fit(x[:n_train], y[:n_train])
    model_path = os.path.join(work, "ml-model.pkl")
    with open(model_path, "wb") as f:
        pickle.dump(model, f, protocol=pickle.HIGHEST_PROTOCOL)
    images_path = os.path.join(work, "ml-images.npy")
    np.save(images_path, x[n_train:])
    return model_path, images_path


def infer(model_path, images_path, work, rounds):
    t = {"load": 0.0, "infer": 0.0, "save": 0.0}
    outputs = []
    for r in range(rounds):
        t0 = time.perf_counter()
        with open(model_path, "rb") as f:
            model = pickle.load(f)
        images = np.load(images_path)
        t1 = time.perf_counter()
        labels = model.predict(images)
        proba = model.predict_proba(images)
        t2 = time.perf_counter()
        out = os.path.join(work, f"ml-pred-{r}.csv")
        with open(out, "w") as f:
            for label, p in zip(labels, proba):
                f.write(f"{label},{p.max():.6f}\n")
        # A function that updates its model (fine-tuning, caching) writes it back.
        with open(model_path, "wb") as f:
            pickle.dump(model, f, protocol=pickle.HIGHEST_PROTOCOL)
        t3 = time.perf_counter()
        t["load"] += t1 - t0
        t["infer"] += t2 - t1
        t["save"] += t3 - t2
        outputs.append(out)
    return t, outputs


def main():
    p = contract.parser(__doc__.splitlines()[0])
    a = p.parse_args()
    rounds, epochs = PRESETS[a.size]
    work = contract.prepare_scratch(a.scratch)
    ph = contract.Phases(["function"])
    model_path, images_path = ph.run("train", train, work, epochs)
    parts, outputs = ph.run("function", infer, model_path, images_path, work, rounds)
    for k, v in parts.items():
        ph.timings[k + "_s"] = v
    digest = contract.digest_files(outputs)
    for f in outputs + [model_path, images_path]:
        os.unlink(f)
    contract.emit("mlinfer", {"rounds": rounds, "epochs": epochs}, ph, ["train"], digest)


if __name__ == "__main__":
    main()
