// Writes stamp mtime/ctime the way tmpfs's multigrain timestamps do (see ARCHITECTURE.md,
// "Timestamps"): the cheap coarse clock, unless a stat has looked since the last change - then the
// next write must still be visible to it.  A Python script checks what programs rely on: a stat
// after every write sees a newer mtime, ctime moves with it, a file written later never looks
// older than one written (and looked at) before, and a time set into the future is replaced.  The
// same script runs on a real tmpfs as the reference.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { PYTHON, assertServedFromMemory, requireBuilt, runOnTmpfsAndShim } from './lib/harness.mjs';

const SCRIPT = `
import os, sys, time
d = sys.argv[1]
def fail(*a):
    print("FAIL", *a); sys.exit(1)
a, b = os.path.join(d, "a"), os.path.join(d, "b")
fb = os.open(b, os.O_RDWR | os.O_CREAT, 0o644); os.write(fb, b"old")
time.sleep(0.05)  # b's stamp is from an older tick of the coarse clock
fa = os.open(a, os.O_RDWR | os.O_CREAT, 0o644)
last = 0
for i in range(300):  # write, look, write, look...: every look sees a change
    os.pwrite(fa, b"x" * 8192, (i % 7) * 8192)
    st = os.stat(a)
    if st.st_mtime_ns <= last: fail("write", i, "not visible to stat:", st.st_mtime_ns, "after", last)
    if st.st_ctime_ns != st.st_mtime_ns: fail("ctime", st.st_ctime_ns, "!= mtime", st.st_mtime_ns)
    last = st.st_mtime_ns
for i in range(1000):  # nobody looks: the stamp may stay within the tick, but never goes back
    os.pwrite(fa, b"y", i)
if os.fstat(fa).st_mtime_ns < last: fail("mtime went back")
os.pwrite(fa, b"z", 0); ma = os.fstat(fa).st_mtime_ns
os.pwrite(fa, b"z", 1)  # a's newest stamp is fine-grained and unseen...
os.pwrite(fb, b"new", 0)  # ...so b, written after it, must not look older
mb, ma2 = os.stat(b).st_mtime_ns, os.stat(a).st_mtime_ns
if mb < ma2: fail("b written after a looks older:", mb, "<", ma2)
if ma2 <= ma: fail("looked-at a did not change")
future = time.time_ns() + 3600 * 10**9
os.utime(a, ns=(future, future)); os.pwrite(fa, b"w", 0)
now = time.time_ns()
if os.fstat(fa).st_mtime_ns > now: fail("a write kept a future mtime")
if os.pread(fa, 3, 0) != b"wzy": fail("data", os.pread(fa, 3, 0))
print("mtime ok")
`;

test('writes stamp mtime like tmpfs multigrain timestamps: every stat after a write sees it', async (t) => {
  requireBuilt(PYTHON);
  const { shim: r, sc } = await runOnTmpfsAndShim('mtime', SCRIPT);
  assert.match(r.stdout.toString(), /mtime ok/);
  assertServedFromMemory(r.stats, 'mtime');
  t.diagnostic(`fast_writes=${r.stats.fast_writes} fast_stats=${r.stats.fast_stats}`);
  sc.done();
});
