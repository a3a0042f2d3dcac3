"""The contract every workload follows, so the harness can run any of them the same way.

A workload is ``python3 NAME.py --scratch DIR [--size tiny|small|full] [its own flags]``. It
creates its inputs deterministically inside DIR (the function's scratch space, /tmp in a
container), does its work there, and prints exactly one JSON object as the last line of stdout:

    {"workload": ..., "params": {...}, "timings": {"total_s": ..., <phase>_s: ...},
     "digest": "<sha256 hex of the outputs>", "setup_s": ...}

``total_s`` covers only the function's own work, never input generation (``setup_s``), so the
three storage modes are compared on what a function invocation would do. The digest depends only
on the parameters, so overlay, tmpfs and ephemera must agree on it.
"""

import argparse
import hashlib
import json
import os
import sys
import time

SIZES = ("tiny", "small", "full")


def parser(description):
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--scratch", required=True, help="scratch directory the workload owns")
    p.add_argument("--size", choices=SIZES, default="full",
                   help="preset input size; tiny is for tests (default: full, the paper's size)")
    return p


def prepare_scratch(path):
    """Return a fresh working directory inside the scratch dir, refusing one that is missing."""
    if not os.path.isdir(path):
        sys.exit(f"workload: --scratch {path!r} is not a directory; create it or pass another one")
    work = os.path.join(path, "wl")
    os.makedirs(work, exist_ok=True)
    return work


class Phases:
    """Wall-clock timings of named phases, in seconds, measured with a monotonic clock."""

    def __init__(self):
        self.timings = {}

    def run(self, name, fn, *args):
        t0 = time.perf_counter()
        result = fn(*args)
        self.timings[name + "_s"] = time.perf_counter() - t0
        return result


def digest_files(paths):
    """sha256 over the names (relative order given) and contents of the output files."""
    h = hashlib.sha256()
    for p in paths:
        h.update(os.path.basename(p).encode() + b"\0")
        with open(p, "rb") as f:
            while True:
                chunk = f.read(1 << 20)
                if not chunk:
                    break
                h.update(chunk)
    return h.hexdigest()


def emit(workload, params, phases, measured, setup, digest):
    """Print the result line; ``measured`` names the phases that make up total_s."""
    timings = dict(phases.timings)
    timings["total_s"] = sum(phases.timings[m + "_s"] for m in measured)
    out = {
        "workload": workload,
        "params": params,
        "timings": timings,
        "setup_s": sum(phases.timings.get(s + "_s", 0.0) for s in setup),
        "digest": digest,
        "pid": os.getpid(),
    }
    sys.stdout.flush()
    print(json.dumps(out, sort_keys=True), flush=True)
