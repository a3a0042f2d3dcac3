// Paths deeper than PATH_MAX, built under a managed root by successive mkdir + chdir (issue 9
// item 4): getcwd, files at every level (in memory near the top, on disk below EPH_PATH_MAX), and
// removal of the whole tree by rm -rf and by Python's shutil.rmtree (which calls a directory whose
// lstat and fstat disagree "a symbolic link"), from the top and from inside.  The same script on
// a real tmpfs and under the shim; the outputs must match.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { runOnTmpfsAndShim } from './lib/harness.mjs';

const SCRIPT = `
import os, shutil, stat, subprocess, sys
root = sys.argv[1]
out = []
def tree(top, levels, width):
    os.chdir(root)
    os.mkdir(top)
    os.chdir(top)
    for i in range(levels):
        with open('f', 'w') as f:
            f.write('x' * i)
        os.mkdir('d' * width)
        os.chdir('d' * width)
    with open('leaf', 'w') as f:
        f.write('leaf')
    cwd = os.getcwd()
    out.append(f'{top}: getcwd len {len(cwd) - len(root)} under root {cwd.startswith(root + "/")}')
    out.append(f'{top}: leaf {open("leaf").read()} lstat dir {stat.S_ISDIR(os.lstat(".").st_mode)}')
    os.chdir(root)
def attempt(what, fn):
    try:
        r = fn()
        out.append(f'{what}: {"ok" if r is None else r}')
    except OSError as e:
        out.append(f'{what}: {type(e).__name__} {os.strerror(e.errno) if e.errno else e}')
    except RecursionError:
        out.append(f'{what}: RecursionError')
for name, levels, width in [('a', 25, 200), ('b', 70, 60)]:
    tree(name, levels, width)
    attempt(f'{name} rmtree', lambda: shutil.rmtree(name))
    attempt(f'{name} gone', lambda: str(os.path.lexists(name)))
    tree(name, levels, width)
    r = subprocess.run(['rm', '-rf', name], capture_output=True, text=True)
    out.append(f'{name} rm -rf: {r.returncode} {r.stderr.replace(root, "R")[:200]}')
    attempt(f'{name} gone', lambda: str(os.path.lexists(name)))
# from inside the deep directory: a subtree by relative name, and the working directory's listing
tree('c', 25, 200)
os.chdir('c')
for _ in range(25):
    os.chdir('d' * 200)
os.makedirs('s/t/u')
for p in ['s/1', 's/t/2', 's/t/u/3']:
    with open(p, 'w') as f:
        f.write(p)
out.append(f'inside: islink {os.path.islink("s")} listdir {sorted(os.listdir("s"))}')
attempt('inside rmtree', lambda: shutil.rmtree('s'))
os.makedirs('s/t')
r = subprocess.run(['rm', '-rf', 's'], capture_output=True, text=True)
out.append(f'inside rm -rf: {r.returncode} {r.stderr[:200]}')
out.append(f'inside listdir {sorted(os.listdir("."))}')
os.chdir(root)
r = subprocess.run(['rm', '-rf', 'c'], capture_output=True, text=True)
out.append(f'c rm -rf: {r.returncode} {r.stderr[:200]} left {os.listdir(root)}')
print('\\n'.join(out))
`;

test('a tree deeper than PATH_MAX: getcwd, rm -rf and shutil.rmtree as on tmpfs', { timeout: 120_000 }, async () => {
  const { tmpfs, shim, sc } = await runOnTmpfsAndShim('deep', SCRIPT);
  assert.ok(shim.stats.files_created >= 10, `the upper levels' files were in memory: ${JSON.stringify(shim.stats)}`);
  assert.equal(shim.stdout.toString(), tmpfs.stdout.toString());
  assert.match(tmpfs.stdout.toString(), /a rmtree: ok/);
  sc.done();
});
