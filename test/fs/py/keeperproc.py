# What the keeper tests' workloads (killed_daemon.py, hardlinks.py) share: finding the daemon that
# `ephemera run`'s keeper started for them.
import os


def daemons():
    """ephemerad processes whose parent is ours (the keeper)."""
    found = []
    for p in os.listdir('/proc'):
        if not p.isdigit():
            continue
        try:
            with open('/proc/%s/stat' % p) as f:
                st = f.read()
            with open('/proc/%s/comm' % p) as f:
                comm = f.read().strip()
        except OSError:
            continue
        fields = st[st.rindex(')') + 2:].split()
        if comm == 'ephemerad' and int(fields[1]) == os.getppid() and fields[0] not in 'ZX':
            found.append(int(p))
    return found
