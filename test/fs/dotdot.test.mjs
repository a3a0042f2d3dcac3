// Paths with ".." through symlinks whose chains end in (or under) an in-memory file: the kernel's
// physical walk fails them with ENOTDIR, even though the disk alone has nothing there (it would
// say ENOENT).  Same script on a real tmpfs and under the shim; the errnos must match.
// Regression for difftest multi-evicting seed 643586309 c0:848 `open b/../b/f1` (b -> f1 -> a/f3,
// a an in-memory file) and multi seed 79215754 c0:2474 `rename a/a a/../a/a` (a -> b/c, a directory,
// and b/a an in-memory file), and random seed 185223599 line 9936 `rename a/c/../a/c/b a/c/../a/c/b/c`
// (a/c -> ../f2: tmpfs EINVAL, the shim said ENOENT from a lexical walk of the source).
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { runOnTmpfsAndShim } from './lib/harness.mjs';

const SCRIPT = `
import os, sys
os.chdir(sys.argv[1])
os.makedirs('p0/w')
with open('p0/w/a', 'w') as f:
    f.write('x')
os.symlink('a/f3', 'p0/w/f1')   # into the in-memory file a
os.symlink('f1', 'p0/w/b')      # a chain: b -> f1 -> a/f3
os.symlink('a', 'p0/w/c')       # straight at it
out = []
for p in ['b/../b/f1', 'b/../f1', 'b/..', 'b/../b', 'f1/../x', 'b/x', 'c/../a', 'c/..', 'a/../a', 'w/../w/b/../a']:
    for name, fn in [('open', lambda p: os.close(os.open(p, os.O_RDWR | os.O_APPEND))),
                     ('stat', os.stat), ('lstat', os.lstat), ('mkdir', os.mkdir), ('unlink', os.unlink),
                     ('creat', lambda p: os.close(os.open(p, os.O_CREAT | os.O_WRONLY, 0o644)))]:
        try:
            fn('p0/w/' + p)
            out.append(f'{name} {p} ok')
        except OSError as e:
            out.append(f'{name} {p} {os.strerror(e.errno)}')
# a symlink to a real directory, then '..' and on into an in-memory file (the kernel walks
# from the link target's parent: s/../m is d/m, a file)
os.makedirs('p0/w/d/e')
with open('p0/w/d/m', 'w') as f:
    f.write('m')
with open('p0/w/d/e/q', 'w') as f:
    f.write('q')
os.symlink('d/e', 'p0/w/s')
def attempt(cases):
    for name, fn in cases:
        try:
            fn()
            out.append(f'{name} ok')
        except OSError as e:
            out.append(f'{name} {os.strerror(e.errno)}')
attempt([('rename', lambda: os.rename('p0/w/s/nothere', 'p0/w/s/../m/q')),
         ('rename-existing', lambda: os.rename('p0/w/s/q', 'p0/w/s/../m/q')),
         ('rename-back', lambda: os.rename('p0/w/s/../m/q', 'p0/w/s/q')),
         ('link', lambda: os.link('p0/w/s/q', 'p0/w/s/../m/q'))])
# a source with '..' after a symlink to a directory, whose lexical spelling names nothing: the
# kernel walks it physically (s2/.. is w/d) and refuses a move into itself with EINVAL
os.makedirs('p0/w/d/sub/in')
os.symlink('d/e', 'p0/w/s2')
attempt([('rename-into-itself', lambda: os.rename('p0/w/s2/../sub/in', 'p0/w/s2/../sub/in/x')),
         ('rename-dotdot-src', lambda: os.rename('p0/w/s2/../sub/in', 'p0/w/s2/../sub/in2')),
         ('rename-dotdot-back', lambda: os.rename('p0/w/s2/../sub/in2', 'p0/w/d/sub/in'))])
print('\\n'.join(out))
`;

test("'..' after a chain of symlinks into an in-memory file: the kernel's ENOTDIR", async () => {
  const { tmpfs, shim, sc } = await runOnTmpfsAndShim('dotdot', SCRIPT);
  assert.ok(shim.stats.files_created >= 1, 'a was created in memory');
  assert.equal(shim.stdout.toString(), tmpfs.stdout.toString());
  sc.done();
});
