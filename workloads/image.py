"""Image processing with PIL, after FunctionBench's image_processing function.

Setup draws a deterministic photo-like JPEG into the scratch dir (the function's input). The
function then reads it and writes one output per variant, FunctionBench's ten: grayscale (the
paper's Table 3 task), two flips, three rotations, three filters and a 128-pixel thumbnail, each
saved back to the scratch dir as a JPEG.
"""

import os
import time

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

import contract

PRESETS = {"tiny": (256, 1), "small": (1024, 1), "full": (2048, 2)}  # (side px, rounds)
SEED = 20240503

VARIANTS = (
    ("gray", lambda im: im.convert("L")),
    ("flip_lr", lambda im: im.transpose(Image.Transpose.FLIP_LEFT_RIGHT)),
    ("flip_tb", lambda im: im.transpose(Image.Transpose.FLIP_TOP_BOTTOM)),
    ("rot90", lambda im: im.transpose(Image.Transpose.ROTATE_90)),
    ("rot180", lambda im: im.transpose(Image.Transpose.ROTATE_180)),
    ("rot270", lambda im: im.transpose(Image.Transpose.ROTATE_270)),
    ("blur", lambda im: im.filter(ImageFilter.BLUR)),
    ("contour", lambda im: im.filter(ImageFilter.CONTOUR)),
    ("sharpen", lambda im: im.filter(ImageFilter.SHARPEN)),
    ("thumbnail", lambda im: thumbnail(im, (128, 128))),
)


def thumbnail(im, size):
    # FunctionBench shrinks the input image itself; a copy keeps it intact for the next round.
    small = im.copy()
    small.thumbnail(size)
    return small


def make_input(path, side):
    rng = np.random.default_rng(SEED)
    y, x = np.mgrid[0:side, 0:side].astype(np.float32) / side
    base = np.stack([x * 255, y * 255, (1 - x) * (1 - y) * 255], axis=-1)
    noise = rng.normal(0, 18, size=(side, side, 3))
    im = Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(im)
    for _ in range(64):
        x0, y0 = (int(v) for v in rng.integers(0, side, 2))
        r = int(rng.integers(side // 64, side // 8))
        color = tuple(int(c) for c in rng.integers(0, 256, 3))
        draw.ellipse((x0 - r, y0 - r, x0 + r, y0 + r), fill=color)
    im.save(path, "JPEG", quality=92)


def process(src, work, rounds):
    t = {"read": 0.0, "process": 0.0, "write": 0.0}
    outputs = []
    for r in range(rounds):
        t0 = time.perf_counter()
        with Image.open(src) as im:
            im.load()
            t1 = time.perf_counter()
            t["read"] += t1 - t0
            for name, fn in VARIANTS:
                t1 = time.perf_counter()
                out = fn(im)
                t2 = time.perf_counter()
                path = os.path.join(work, f"out-{r}-{name}.jpg")
                out.save(path, "JPEG", quality=90)
                t3 = time.perf_counter()
                t["process"] += t2 - t1
                t["write"] += t3 - t2
                outputs.append(path)
    return t, outputs


def main():
    p = contract.parser(__doc__.splitlines()[0])
    a = p.parse_args()
    side, rounds = PRESETS[a.size]
    work = contract.prepare_scratch(a.scratch)
    src = os.path.join(work, "image-input.jpg")
    ph = contract.Phases(["function"])
    ph.run("gen", make_input, src, side)
    parts, outputs = ph.run("function", process, src, work, rounds)
    for k, v in parts.items():
        ph.timings[k + "_s"] = v
    digest = contract.digest_files(outputs)
    for f in outputs + [src]:
        os.unlink(f)
    contract.emit("image", {"side": side, "rounds": rounds}, ph, ["gen"], digest)


if __name__ == "__main__":
    main()
