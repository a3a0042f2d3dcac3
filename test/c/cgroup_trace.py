#!/usr/bin/env python3
"""What a v1 memory cgroup holds, sampled every few ms (issue 9; branch protooom).

  test/c/cgroup_trace.py trace OUT [SECONDS]   one line per sample of every ephd-test-* cgroup
                                               (daemon_proto_test's) until SECONDS have passed
  test/c/cgroup_trace.py margin OUT            per case: the largest unreclaimable charge once the
                                               guard is lifted and the file is out of memory, and
                                               the margin to a 128 MiB limit

A line: time, cgroup, usage, limit, rss, cache, shmem, mapped_file, inactive_file, active_file,
dirty, writeback (KiB), oom_kill_disable, under_oom, oom_kill, then pid:comm/aRssAnon/sRssShmem of
each task. Unreclaimable = usage - file LRU pages (clean page cache the kernel can drop).
"""
import glob
import sys
import time


def rd(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def trace(out, seconds):
    end = time.monotonic() + seconds
    with open(out, "w", buffering=1) as o:
        while time.monotonic() < end:
            for cg in glob.glob("/sys/fs/cgroup/memory/ephd-test-*"):
                u, st, oc = rd(cg + "/memory.usage_in_bytes"), rd(cg + "/memory.stat"), rd(cg + "/memory.oom_control")
                if not (u and st and oc):
                    continue
                d = dict(l.split() for l in st.splitlines())
                k = {n: int(d["total_" + n]) >> 10 for n in ("rss", "cache", "shmem", "mapped_file", "inactive_file",
                                                             "active_file", "dirty", "writeback")}
                c = dict(l.split() for l in oc.splitlines())
                tasks = []
                for pid in (rd(cg + "/cgroup.procs") or "").split():
                    s = rd("/proc/%s/status" % pid) or ""
                    f = {l.split(":", 1)[0]: (l.split(":", 1)[1].split() or [""])[0] for l in s.splitlines() if ":" in l}
                    tasks.append("%s:%s/a%s/s%s" % (pid, f.get("Name", "")[:6], f.get("RssAnon"), f.get("RssShmem")))
                o.write("%.3f %s use %d lim %d rss %d cache %d shm %d map %d ifile %d afile %d dirty %d wb %d "
                        "okd %s und %s kill %s %s\n" % (
                            time.monotonic(), cg[-5:], int(u) >> 10, int(rd(cg + "/memory.limit_in_bytes") or 0) >> 10,
                            k["rss"], k["cache"], k["shmem"], k["mapped_file"], k["inactive_file"], k["active_file"],
                            k["dirty"], k["writeback"], c["oom_kill_disable"], c["under_oom"], c["oom_kill"], " ".join(tasks)))
            time.sleep(0.003)


def margin(path):
    runs = {}
    for line in open(path):
        f = line.split()
        if len(f) < 30:
            continue
        d = dict(zip(f[2:30:2], f[3:31:2]))
        use, lru, shm = int(d["use"]), int(d["ifile"]) + int(d["afile"]), int(d["shm"])
        r = runs.setdefault(f[1], {"case": 0, "last": 0, "max": {}})
        if use < r["last"] - 60000:  # the usage fell from a case's peak to a new case's start
            r["case"] += 1
        r["last"] = use
        if d["okd"] == "0" and shm < 4096 and use > 50000:
            best = r["max"].get(r["case"])
            if not best or use - lru > best[0]:
                r["max"][r["case"]] = (use - lru, use, lru, shm)
    for cg, r in runs.items():
        for case, (un, use, lru, shm) in r["max"].items():
            print("%s case %d: unreclaimable %d KiB (usage %d, file LRU %d, shmem %d), margin %d KiB"
                  % (cg, case, un, use, lru, shm, (128 << 10) - un))


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "trace":
        trace(sys.argv[2], float(sys.argv[3]) if len(sys.argv) > 3 else 60)
    elif len(sys.argv) == 3 and sys.argv[1] == "margin":
        margin(sys.argv[2])
    else:
        sys.exit(__doc__)
