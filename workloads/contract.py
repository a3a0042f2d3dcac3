"""The contract every workload follows, so the harness can run any of them the same way.

A workload is ``python3 NAME.py --scratch DIR [--size tiny|small|full] [its own flags]``. It
creates its inputs deterministically inside DIR (the function's scratch space, /tmp in a
container), does its work there, and prints exactly one JSON object as the last line of stdout:

    {"workload": ..., "params": {...}, "timings": {"total_s": ..., <phase>_s: ...},
     "digest": "<sha256 hex of the outputs>", "setup_s": ...}

``total_s`` covers only the function's own work, never input generation (``setup_s``), so the
three storage modes are compared on what a function invocation would do. The digest depends only
on the parameters, so overlay, tmpfs and ephemera must agree on it.

The measured phases also report their CPU time (``cpu``: user and kernel seconds of the process
and of the children it waited for), and with ``EPHEMERA_TRACE_OUT=FILE`` in the environment they
run under ``strace -f -c`` attached for those phases only, so the I/O intensity of Table 3
describes the function and not the interpreter's start-up or the input generation.
"""

import argparse
import hashlib
import json
import os
import resource
import signal
import subprocess
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


TRACE_ATTACH_TIMEOUT_S = 15.0


class FunctionTrace:
    """``strace -f -c`` attached to this process (every thread, and the children it starts) only
    while the measured phases run; its summary table goes to ``out``."""

    def __init__(self, out):
        self.out = out
        self.proc = None

    def start(self):
        # With -f, strace attaches to every thread of the process it is given.
        tids = os.listdir("/proc/self/task")
        argv = ["strace", "-f", "-c", "-qq", "-o", self.out, "-p", str(os.getpid())]
        try:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL)
        except OSError as e:
            sys.exit(f"workload: cannot start strace for the I/O table: {e}; install strace")
        deadline = time.monotonic() + TRACE_ATTACH_TIMEOUT_S
        while not all(_tracer_pid(t) for t in tids):
            if self.proc.poll() is not None:
                sys.exit(f"workload: strace exited with status {self.proc.returncode} before it "
                         "attached; tracing needs CAP_SYS_PTRACE (docker run --cap-add SYS_PTRACE)")
            if time.monotonic() > deadline:
                self.proc.kill()
                sys.exit(f"workload: strace did not attach within {TRACE_ATTACH_TIMEOUT_S:.0f} s")
            time.sleep(0.005)

    def stop(self):
        # SIGINT makes strace detach and write its summary.
        self.proc.send_signal(signal.SIGINT)
        self.proc.wait()


def _tracer_pid(tid):
    try:
        with open(f"/proc/self/task/{tid}/status") as f:
            for line in f:
                if line.startswith("TracerPid:"):
                    return int(line.split()[1])
    except FileNotFoundError:
        return 1  # the thread has exited: nothing left to wait for
    return 0


def _cpu_now():
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + kids.ru_utime, me.ru_stime + kids.ru_stime


class Phases:
    """Wall-clock timings of named phases, in seconds, measured with a monotonic clock.

    ``measured`` names the phases that make up ``total_s`` (the function's own work), in the
    order they run; their CPU time is summed, and they are the ones traced for the I/O table."""

    def __init__(self, measured):
        self.timings = {}
        self.measured = tuple(measured)
        self.cpu = {"utime_s": 0.0, "stime_s": 0.0}
        out = os.environ.get("EPHEMERA_TRACE_OUT")
        self._trace = FunctionTrace(out) if out else None

    def run(self, name, fn, *args):
        measured = name in self.measured
        if measured and self._trace is not None and self._trace.proc is None:
            self._trace.start()
        u0, s0 = _cpu_now()
        t0 = time.perf_counter()
        result = fn(*args)
        self.timings[name + "_s"] = time.perf_counter() - t0
        u1, s1 = _cpu_now()
        if measured:
            self.cpu["utime_s"] += u1 - u0
            self.cpu["stime_s"] += s1 - s0
            if self._trace is not None and name == self.measured[-1]:
                self._trace.stop()
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


def emit(workload, params, phases, setup, digest):
    """Print the result line; total_s is the sum of the measured phases."""
    timings = dict(phases.timings)
    timings["total_s"] = sum(phases.timings[m + "_s"] for m in phases.measured)
    out = {
        "workload": workload,
        "params": params,
        "timings": timings,
        "setup_s": sum(phases.timings.get(s + "_s", 0.0) for s in setup),
        "cpu": phases.cpu,
        "digest": digest,
        "pid": os.getpid(),
    }
    sys.stdout.flush()
    print(json.dumps(out, sort_keys=True), flush=True)
