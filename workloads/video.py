"""Video processing with OpenCV: read a video, convert every frame to gray, write it back.

Setup renders a deterministic clip (moving shapes over a gradient, fixed seed) into the scratch
dir as Motion-JPEG AVI. The function decodes it frame by frame (OpenCV's default backend,
FFmpeg on Debian) and converts each frame to grayscale; as FunctionBench's video_processing does,
every gray frame then goes through a JPEG file in the scratch dir (``cv2.imwrite`` of tmp.jpg and
``cv2.imread`` of it back, as a 3-channel image) before it is encoded into the output AVI.
Encoding uses OpenCV's own MJPEG writer rather than FunctionBench's XVID, so the output bytes do
not depend on the FFmpeg build.
"""

import os
import time

import cv2
import numpy as np

import contract

PRESETS = {"tiny": (160, 120, 10), "small": (640, 480, 60), "full": (1280, 720, 150)}
SEED = 20240506
FPS = 25


def make_input(path, w, h, frames):
    rng = np.random.default_rng(SEED)
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([(x * 255 // w), (y * 255 // h), ((x + y) * 255 // (w + h))], axis=-1)
    base = base.astype(np.uint8)
    shapes = [(rng.integers(0, w), rng.integers(0, h), rng.integers(-8, 9), rng.integers(-8, 9),
               int(rng.integers(h // 20, h // 6)), tuple(int(c) for c in rng.integers(0, 256, 3)))
              for _ in range(12)]
    out = cv2.VideoWriter(path, cv2.CAP_OPENCV_MJPEG, cv2.VideoWriter_fourcc(*"MJPG"), FPS, (w, h))
    if not out.isOpened():
        raise SystemExit(f"video: cannot open {path} for writing")
    for i in range(frames):
        frame = base.copy()
        for x0, y0, dx, dy, r, color in shapes:
            cx = int((x0 + dx * i) % w)
            cy = int((y0 + dy * i) % h)
            cv2.circle(frame, (cx, cy), r, color, -1)
        out.write(frame)
    out.release()


def process(src, dst, tmp):
    t = {"read": 0.0, "process": 0.0, "frame_io": 0.0, "write": 0.0}
    cap = cv2.VideoCapture(src)
    if not cap.isOpened():
        raise SystemExit(f"video: cannot open {src}")
    w = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))
    h = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
    out = cv2.VideoWriter(dst, cv2.CAP_OPENCV_MJPEG, cv2.VideoWriter_fourcc(*"MJPG"), FPS, (w, h))
    frames = 0
    while True:
        t0 = time.perf_counter()
        ok, frame = cap.read()
        t1 = time.perf_counter()
        t["read"] += t1 - t0
        if not ok:
            break
        gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        t2 = time.perf_counter()
        if not cv2.imwrite(tmp, gray):
            raise SystemExit(f"video: cannot write {tmp}")
        gray = cv2.imread(tmp)
        if gray is None:
            raise SystemExit(f"video: cannot read {tmp} back")
        t3 = time.perf_counter()
        out.write(gray)
        t4 = time.perf_counter()
        t["process"] += t2 - t1
        t["frame_io"] += t3 - t2
        t["write"] += t4 - t3
        frames += 1
    cap.release()
    t0 = time.perf_counter()
    out.release()
    t["write"] += time.perf_counter() - t0
    return t, frames


def main():
    p = contract.parser(__doc__.splitlines()[0])
    a = p.parse_args()
    w, h, frames = PRESETS[a.size]
    # One thread: the CPU set is the container's to decide, and the benchmark compares storage.
    cv2.setNumThreads(1)
    work = contract.prepare_scratch(a.scratch)
    src = os.path.join(work, "video-input.avi")
    dst = os.path.join(work, "video-gray.avi")
    ph = contract.Phases(["function"])
    ph.run("gen", make_input, src, w, h, frames)
    tmp = os.path.join(work, "tmp.jpg")
    parts, got = ph.run("function", process, src, dst, tmp)
    if got != frames:
        raise SystemExit(f"video: decoded {got} frames, expected {frames}")
    for k, v in parts.items():
        ph.timings[k + "_s"] = v
    digest = contract.digest_files([dst])
    for f in (src, dst, tmp):
        os.unlink(f)
    contract.emit("video", {"width": w, "height": h, "frames": frames}, ph, ["gen"],
                  digest)


if __name__ == "__main__":
    main()
