# What the keeper tests' workloads (killed_daemon.py, hardlinks.py and the inline ones of
# test/fs/keeper.test.mjs) share: finding the daemon that `ephemera run`'s keeper started for them,
# waiting for the one it restarted, and the files they make and the test compares with the disk.
import hashlib
import json
import os
import sys
import time

IN_MEMORY = 1 << 44  # st_ino of an in-memory file (EPH_INO_TAG)


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


def restarted(old, seconds=20):
    """Wait, at most `seconds`, until a daemon other than `old` runs (the keeper's restart)."""
    end = time.time() + seconds
    while time.time() < end and not [p for p in daemons() if p != old]:
        time.sleep(0.01)


def expect(out, want):
    """What each file must hold, {name: bytes}, as OUT/expect.json ({name: sha256}) for the test."""
    with open(os.path.join(out, 'expect.json'), 'w') as f:
        json.dump({k: hashlib.sha256(v).hexdigest() for k, v in want.items()}, f)


class Files:
    """An inline workload's files in root: each name's body (the sha256 of the name repeated
    base + len(name) * per times), what each must hold (want) and what went wrong (bad)."""

    def __init__(self, root, base, per, in_memory=True):
        self.root, self.base, self.per, self.in_memory = root, base, per, in_memory
        self.want, self.bad = {}, []

    def body(self, name):
        return hashlib.sha256(name.encode()).digest() * (self.base + len(name) * self.per)

    def make(self, name):
        """Write name's body; with in_memory, the file must be in memory."""
        with open(os.path.join(self.root, name), 'wb') as f:
            f.write(self.body(name))
        self.want[name] = self.body(name)
        if self.in_memory and os.stat(os.path.join(self.root, name)).st_ino < IN_MEMORY:
            self.bad.append('%s: not in memory' % name)

    def check(self, name):
        """name reads back what it must hold."""
        try:
            with open(os.path.join(self.root, name), 'rb') as f:
                got = f.read()
        except OSError as e:
            self.bad.append('%s: %s' % (name, e))
            return
        if got != self.want[name]:
            self.bad.append('%s: %d bytes read back, %d written' % (name, len(got), len(self.want[name])))

    def finish(self, out, shown=None):
        """OUT/expect.json, the first `shown` (all) of what went wrong, and exit 3 if anything did, else 6."""
        expect(out, self.want)
        print('\n'.join(self.bad[:shown]))
        sys.exit(3 if self.bad else 6)
