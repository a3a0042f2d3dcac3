"""Word count as MapReduce: 2 mappers writing intermediate files, then 1 reducer.

Setup writes two text inputs (Zipf-distributed pseudo-words, fixed seed) into the scratch dir.
The function starts both mappers as separate processes at once; each reads its input and writes
every word as a ``word<TAB>1`` record to one of R partition files chosen by a stable hash. When
both have exited, a reducer process reads all intermediate files and writes the sorted counts.
Running the phases as real child processes (fork + exec of python3) is deliberate: it is what a
serverless MapReduce does, and it exercises the shared scratch namespace across processes.
"""

import argparse
import os
import subprocess
import sys
import time
import zlib

import contract

PRESETS = {"tiny": 64 << 10, "small": 4 << 20, "full": 16 << 20}  # bytes per input file
PARTITIONS = 4
MAPPERS = 2
SEED = 20240504


def make_inputs(work, nbytes):
    import numpy as np  # only setup needs numpy; mappers and reducer stay light

    rng = np.random.default_rng(SEED)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    vocab = ["".join(rng.choice(letters, size=int(n))) for n in rng.integers(2, 11, 5000)]
    weights = 1.0 / np.arange(1, len(vocab) + 1)
    weights /= weights.sum()
    paths = []
    for m in range(MAPPERS):
        words = rng.choice(len(vocab), size=nbytes // 6, p=weights)
        lines = []
        for start in range(0, len(words), 12):
            lines.append(" ".join(vocab[i] for i in words[start:start + 12]))
        path = os.path.join(work, f"mr-input-{m}.txt")
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
        paths.append(path)
    return paths


def mapper(src, work, m):
    outs = [open(os.path.join(work, f"mr-map-{m}-part-{r}.txt"), "w") for r in range(PARTITIONS)]
    try:
        with open(src) as f:
            for line in f:
                for word in line.split():
                    outs[zlib.crc32(word.encode()) % PARTITIONS].write(word + "\t1\n")
    finally:
        for o in outs:
            o.close()


def reducer(work, dst):
    counts = {}
    for m in range(MAPPERS):
        for r in range(PARTITIONS):
            path = os.path.join(work, f"mr-map-{m}-part-{r}.txt")
            with open(path) as f:
                for line in f:
                    word, n = line.rstrip("\n").split("\t")
                    counts[word] = counts.get(word, 0) + int(n)
            os.unlink(path)
    with open(dst, "w") as f:
        for word in sorted(counts):
            f.write(f"{word}\t{counts[word]}\n")


def run_function(inputs, work, dst):
    t = {}
    me = os.path.abspath(__file__)
    t0 = time.perf_counter()
    procs = [subprocess.Popen([sys.executable, me, "--role", "map", "--scratch", work,
                               "--input", src, "--index", str(m)])
             for m, src in enumerate(inputs)]
    for pr in procs:
        if pr.wait() != 0:
            raise SystemExit(f"mapreduce: a mapper exited with status {pr.returncode}")
    t1 = time.perf_counter()
    subprocess.run([sys.executable, me, "--role", "reduce", "--scratch", work, "--output", dst],
                   check=True)
    t2 = time.perf_counter()
    t["map"] = t1 - t0
    t["reduce"] = t2 - t1
    return t


def main():
    p = contract.parser(__doc__.splitlines()[0])
    p.add_argument("--role", choices=("main", "map", "reduce"), default="main",
                   help=argparse.SUPPRESS)
    p.add_argument("--input", help=argparse.SUPPRESS)
    p.add_argument("--index", type=int, help=argparse.SUPPRESS)
    p.add_argument("--output", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.role == "map":
        mapper(a.input, a.scratch, a.index)
        return
    if a.role == "reduce":
        reducer(a.scratch, a.output)
        return
    nbytes = PRESETS[a.size]
    work = contract.prepare_scratch(a.scratch)
    ph = contract.Phases(["function"])
    inputs = ph.run("gen", make_inputs, work, nbytes)
    dst = os.path.join(work, "mr-output.tsv")
    parts = ph.run("function", run_function, inputs, work, dst)
    for k, v in parts.items():
        ph.timings[k + "_s"] = v
    digest = contract.digest_files([dst])
    for f in inputs + [dst]:
        os.unlink(f)
    contract.emit("mapreduce", {"input_bytes": nbytes, "mappers": MAPPERS,
                                "partitions": PARTITIONS}, ph, ["gen"], digest)


if __name__ == "__main__":
    main()
