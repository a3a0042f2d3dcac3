"""Run one workload command inside a function instance and report how it ran.

    python3 launch.py [--ephemera --daemon PATH --lib PATH --root DIR] [--strace FILE] -- CMD...

This is the container's entry point in every mode (the harness passes the same CMD to all):
  * with ``--ephemera`` it first starts ``ephemerad`` for the instance (``--cgroup auto``: the
    budget follows the container's own memory cgroup), waits until it reports ready, runs CMD
    under ``LD_PRELOAD`` with the scratch root managed, and shuts the daemon down afterwards,
    keeping its final statistics;
  * with ``--strace FILE`` the workload runs its measured phases under ``strace -f -c`` (syscall
    time per syscall, for the I/O-intensity table; see contract.py);
  * always, the CPU times of CMD and its descendants come from ``wait4``'s rusage.

CMD's own output passes through untouched; the launcher prints one more JSON line at the end:
``{"launch": {"exit": N, "utime_s": ..., "stime_s": ..., "strace": {...}, "daemon": {...}}}``.
Launcher failures exit with status 97 and say why on stderr.
"""

import argparse
import json
import os
import select
import signal
import socket
import subprocess
import sys
import time

READY_TIMEOUT_S = 15.0


def fail(msg):
    print(f"launch: {msg}", file=sys.stderr, flush=True)
    sys.exit(97)


def start_daemon(a, rundir):
    os.makedirs(rundir, exist_ok=True)
    r, w = os.pipe()
    argv = [a.daemon, "--rundir", rundir, "--root", a.root, "--cgroup", "auto",
            "--ready-fd", str(w), "--log", os.path.join(rundir, "daemon.log")]
    # Extra daemon flags for a diagnosis run (e.g. --debug), never set by the harness.
    argv += os.environ.get("EPHEMERA_DAEMON_ARGS", "").split()
    try:
        proc = subprocess.Popen(argv, pass_fds=(w,), stdin=subprocess.DEVNULL)
    except OSError as e:
        fail(f"cannot start {a.daemon}: {e}; is build/ephemerad mounted into the container?")
    os.close(w)
    deadline = time.monotonic() + READY_TIMEOUT_S
    got = b""
    while b"\n" not in got:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([r], [], [], left)[0]:
            proc.kill()
            fail(f"ephemerad was not ready within {READY_TIMEOUT_S:.0f} s; {tail(rundir)}")
        chunk = os.read(r, 64)
        if not chunk:
            proc.wait()
            fail(f"ephemerad exited with status {proc.returncode} before it was ready; {tail(rundir)}")
        got += chunk
    os.close(r)
    return proc


def tail(rundir):
    try:
        with open(os.path.join(rundir, "daemon.log"), errors="replace") as f:
            return "daemon log: " + " | ".join(f.read().strip().splitlines()[-5:])
    except OSError:
        return "no daemon log"


def stop_daemon(proc, rundir):
    """Ask for the final statistics with a discarding shutdown; SIGTERM if that fails."""
    stats = None
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(10)
            s.connect(os.path.join(rundir, "control.sock"))
            s.sendall(b'{"v": 1, "id": 1, "op": "shutdown", "mode": "discard"}\n')
            buf = b""
            while b"\n" not in buf:
                chunk = s.recv(65536)
                if not chunk:
                    break
                buf += chunk
            reply = json.loads(buf.split(b"\n")[0])
            stats = reply.get("result") if reply.get("ok") else {"error": reply.get("error")}
    except (OSError, ValueError) as e:
        stats = {"error": f"control socket: {e}"}
        proc.send_signal(signal.SIGTERM)
    try:
        _, _, ru = wait4_timeout(proc, 15)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, _, ru = os.wait4(proc.pid, 0)
    if isinstance(stats, dict):
        # The daemon shares the instance's CPU set: its own CPU time is part of Ephemera's cost.
        stats["daemon_utime_s"] = ru.ru_utime
        stats["daemon_stime_s"] = ru.ru_stime
    return stats


def wait4_timeout(proc, seconds):
    deadline = time.monotonic() + seconds
    while True:
        pid, status, ru = os.wait4(proc.pid, os.WNOHANG)
        if pid == proc.pid:
            proc.returncode = os.waitstatus_to_exitcode(status)
            return pid, status, ru
        if time.monotonic() > deadline:
            raise subprocess.TimeoutExpired(proc.args, seconds)
        time.sleep(0.01)


def parse_strace(path):
    """Rows of strace -c: {syscall: {"seconds": s, "calls": n}}."""
    rows = {}
    with open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) < 5 or not parts[0].replace(".", "", 1).isdigit():
                continue
            name = parts[-1]
            if name == "total":
                continue
            try:
                rows[name] = {"seconds": float(parts[1]), "calls": int(parts[3])}
            except ValueError:
                continue
    return rows


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ephemera", action="store_true")
    p.add_argument("--daemon", default="/opt/ephemera/bin/ephemerad")
    p.add_argument("--lib", default="/opt/ephemera/lib/libephemera.so")
    p.add_argument("--root", default="/tmp", help="managed scratch root (default /tmp)")
    p.add_argument("--rundir", default="/run/ephemera")
    p.add_argument("--strace", metavar="FILE")
    p.add_argument("cmd", nargs=argparse.REMAINDER)
    a = p.parse_args()
    cmd = a.cmd[1:] if a.cmd[:1] == ["--"] else a.cmd
    if not cmd:
        fail("no command given after --")

    env = dict(os.environ)
    daemon = None
    if a.ephemera:
        daemon = start_daemon(a, a.rundir)
        env.update({
            "LD_PRELOAD": a.lib,
            "EPHEMERA_LIB": a.lib,
            "EPHEMERA_SOCK": os.path.join(a.rundir, "shim.sock"),
            "EPHEMERA_ROOTS": a.root,
            "EPHEMERA_LOG": os.path.join(a.rundir, "shim.log"),
        })
    if a.strace:
        # The workload attaches strace to itself for its measured phases only (contract.py).
        env["EPHEMERA_TRACE_OUT"] = a.strace

    t0 = time.perf_counter()
    try:
        child = subprocess.Popen(cmd, env=env)
    except OSError as e:
        fail(f"cannot start {cmd[0]}: {e}")
    _, status, ru = os.wait4(child.pid, 0)
    wall = time.perf_counter() - t0
    code = os.waitstatus_to_exitcode(status)
    report = {"exit": code, "wall_s": wall, "utime_s": ru.ru_utime, "stime_s": ru.ru_stime,
              "maxrss_kb": ru.ru_maxrss}
    if daemon is not None:
        report["daemon"] = stop_daemon(daemon, a.rundir)
    if a.strace:
        try:
            report["strace"] = parse_strace(a.strace)
        except OSError as e:
            report["strace_error"] = str(e)
    print(json.dumps({"launch": report}, sort_keys=True), flush=True)
    sys.exit(code if code >= 0 else 128 - code)


if __name__ == "__main__":
    main()
