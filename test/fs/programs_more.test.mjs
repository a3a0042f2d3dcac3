// More unmodified programs a function or its build step runs in its scratch directory: git, gcc and
// make (and running what they built, with its shared libraries), zip/unzip, rsync, sed -i, perl -i,
// dd, split, find, stat, touch, ln, mkfifo, chmod/chown, sqlite, a venv, npm, and Python's mmap,
// flock/lockf, sendfile and archives.  Each script runs
// on a real tmpfs directory (the reference) and under `ephemera run` with a managed root in its
// place; the outputs, with the directory's path replaced by $R, must be identical, and the stats
// must show the files were served from memory.
//
// Differences that are design, not bugs, are kept out of the outputs: directories are real
// directories on the disk's file system, so their st_size/st_blocks (and `du`, `ls -l` totals)
// are the disk's; times of files written during the run are not printed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

import { PYTHON, REPO, cleanEnv, requireBuilt, sameOnTmpfsAndShim } from './lib/harness.mjs';

/**
 * Every program the scripts run must be installed (scripts/deps.sh installs them): a missing one
 * would print the same "command not found" on both sides and pass unseen.
 */
const PROGRAMS = ['git', 'gcc', 'make', 'ar', 'nm', 'strip', 'zip', 'unzip', 'rsync', 'perl', 'sed', 'dd', 'split', 'find',
  'du', 'stat', 'touch', 'ln', 'mkfifo', 'flock', 'setpriv', 'fallocate', 'truncate', 'install', 'tar', 'sqlite3', 'node', 'npm'];
test.before(() => {
  const path = cleanEnv().PATH.split(':');
  const missing = PROGRAMS.filter((p) => !path.some((d) => existsSync(join(d, p))));
  assert.deepEqual(missing, [], `programs missing for test/fs/programs_more.test.mjs: ${missing.join(' ')}; run scripts/deps.sh (make test does)`);
  requireBuilt(PYTHON);
});

// GIT_CEILING_DIRECTORIES: the scratch directory lies inside this repository's build/, so a step that
// fails (a `cd repo` that did not happen) must not let the next git commands find the repository
// above it and commit, branch and check out there (it did once, on a shim that broke `cd`).
const GIT_ENV = `export GIT_AUTHOR_NAME=a GIT_AUTHOR_EMAIL=a@example.org GIT_COMMITTER_NAME=a GIT_COMMITTER_EMAIL=a@example.org
export GIT_AUTHOR_DATE=2020-01-01T00:00:00Z GIT_COMMITTER_DATE=2020-01-01T00:00:00Z GIT_CONFIG_NOSYSTEM=1
export GIT_CEILING_DIRECTORIES="$(dirname "$PWD")"
`;

test('git: init, commit, branch, checkout, merge, gc, repack, fsck, clones (a local clone hard-links objects)', async (t) => {
  const { out } = await sameOnTmpfsAndShim(
    t,
    'git',
    `${GIT_ENV}
git init -q -b main repo && cd repo
for i in $(seq 1 30); do seq $i 1000 > f$i.txt; done
mkdir sub && head -c 200000 /usr/bin/git > sub/bin
git add . && git commit -qm first && git rev-parse HEAD
git branch feature && git checkout -q feature
echo change >> f3.txt && git rm -q f4.txt && git mv f5.txt sub/f5.txt
git commit -qam second && git rev-parse HEAD
git checkout -q main && tail -1 f3.txt && ls | wc -l
git merge -q --no-edit feature && git log --oneline | cat
git status --porcelain
git gc -q --aggressive && ls .git/objects/pack | sed 's/-[0-9a-f]*\\./-X./'
git count-objects -v | grep -v size
git fsck --full --strict 2>&1
git repack -adq && git verify-pack -v .git/objects/pack/*.idx | tail -2
cd .. && git clone -q --no-hardlinks repo clone && git -C clone log --oneline | cat
git clone -q --no-local repo clone2 && git -C clone2 rev-parse HEAD && git -C clone2 fsck 2>&1
git -C clone diff HEAD~1 --stat | cat
git clone -q repo clone3 && git -C clone3 fsck 2>&1 && stat -c '%h' clone3/.git/objects/pack/*.pack repo/.git/objects/pack/*.pack
echo tweak >> clone/f1.txt && git -C clone commit -qam third && git -C repo pull -q ../clone main 2>&1 && git -C repo log --oneline | head -1`,
  );
  assert.match(out, /3 files changed, 1 insertion\(\+\), 997 deletions\(-\)/);
});

test('gcc + make: build, run what was built (and the shared libraries it loads), incremental rebuilds, dlopen, a static binary, a script', async (t) => {
  const { out, stats } = await sameOnTmpfsAndShim(
    t,
    'make',
    `mkdir proj && cd proj
cat > a.h <<'X'
int add(int, int);
#define GREETING "hello"
X
printf '#include "a.h"\\nint add(int x, int y) { return x + y; }\\n' > a.c
printf '#include <stdio.h>\\n#include "a.h"\\nint main(void) { printf("%%s %%d\\\\n", GREETING, add(2, 3)); return 0; }\\n' > main.c
printf 'prog: main.o a.o\\n\\t$(CC) -o $@ main.o a.o\\n\\tar rcs liba.a a.o\\n%%.o: %%.c a.h\\n\\t$(CC) -O1 -c -o $@ $<\\n' > Makefile
touch -d '2020-01-01 00:00:00' a.h a.c main.c Makefile
make 2>&1 && ./prog
make 2>&1
sleep 0.02 && touch a.c && make 2>&1
make -q; echo "make -q: $?"
sed -i 's/hello/howdy/' a.h && make 2>&1 && ./prog
sha256sum liba.a prog | cut -c1-16
nm prog | grep -c ' T '
gcc -shared -fPIC -o libx.so a.c && python3 -c "import ctypes; print(ctypes.CDLL('./libx.so').add(4, 5))"
gcc -O2 -o prog2 main.c a.c -save-temps && ./prog2 && ls *.i *.s
strip prog2 && ./prog2
echo 'int main(void) { return 7; }' > s.c && gcc -static -o st s.c; ./st; echo "static: $?"
printf '#!/bin/sh\\necho "script $1"\\n' > run.sh && chmod +x run.sh && ./run.sh arg
PATH="$PWD:$PATH" prog | tr a-z A-Z
cp /bin/echo ./myecho && ./myecho copied binary
printf 'int twice(int a) { return 2 * a; }\n' > y.c
printf 'int twice(int);\nint add(int a, int b) { return twice(a) + b; }\n' > x.c
gcc -shared -fPIC -Wl,-soname,liby.so.1 -o liby.so.1 y.c && ln -s liby.so.1 liby.so
gcc -shared -fPIC -o libx.so x.c -L. -ly -Wl,-rpath,'$ORIGIN'
gcc -o runpath main.c -L. -lx -Wl,-rpath,'$ORIGIN' -Wl,--enable-new-dtags && ./runpath
gcc -o rpath main.c -L. -lx -Wl,-rpath,"$PWD" -Wl,--disable-new-dtags && ./rpath
mkdir lib && cp libx.so liby.so.1 lib/ && gcc -o nopath main.c -L. -lx && LD_LIBRARY_PATH="$PWD/lib" ./nopath`,
  );
  assert.match(out, /^hello 5$/m);
  assert.match(out, /^HOWDY 5$/m);
  assert.match(out, /^9$/m);
  assert.match(out, /^static: 7$/m);
  assert.match(out, /^script arg$/m);
  assert.equal(out.match(/^howdy 7$/gm)?.length, 3, 'RUNPATH, RPATH and LD_LIBRARY_PATH programs with their libraries in the root');
  assert.ok(stats.evictions > 0, 'programs run from the root moved to disk first (the kernel reads them by path)');
});

test('archivers and coreutils: zip/unzip, rsync, sed -i, perl -i, dd, split, find, stat, touch, ln, mkfifo, chmod, chown', async (t) => {
  await sameOnTmpfsAndShim(
    t,
    'tools',
    `mkdir -p src/sub
seq 1 20000 > src/nums.txt; head -c 300000 /usr/bin/perl > src/sub/bin; printf 'a\\nb\\n' > src/sub/small; : > src/empty
touch -d '2021-02-03 04:05:06.123456789' src/nums.txt src/sub/bin src/sub/small src/empty
echo == zip; (cd src && zip -qrX ../a.zip .) && unzip -l a.zip | awk '{print $1, $4}' | sort
mkdir uz && unzip -q a.zip -d uz && diff -r src uz && echo unzipped
zip -q a.zip -d sub/small && unzip -Z1 a.zip | sort && unzip -tq a.zip
echo == rsync
rsync -a src/ r1/ && diff -r src r1 && stat -c '%n %y %s %a' r1/nums.txt r1/sub/bin
echo changed >> src/nums.txt; touch -d '2021-02-03 04:05:07' src/nums.txt
rsync -a src/ r1/ && cmp src/nums.txt r1/nums.txt && echo updated
rsync -a --inplace src/ r2/ && echo x >> src/sub/small && rsync -a --inplace src/ r2/ && diff -r src r2 && echo inplace
rsync -a --delete --checksum src/ r1/ && diff -r src r1 && echo checksum
rsync -a --link-dest="$R/r1" src/ r3/ && stat -c '%h' r3/sub/bin
echo == sed perl
cp src/nums.txt s.txt; sed -i 's/^1/one/' s.txt; sed -i.bak -e '5d' s.txt; sha256sum s.txt s.txt.bak | cut -c1-16
perl -pi -e 's/2/two/g' s.txt; perl -i.orig -ne 'print if /two/' s.txt; wc -l s.txt s.txt.orig
echo == dd
dd if=src/sub/bin of=d.bin bs=4096 count=10 status=none
dd if=/dev/zero of=d.bin bs=1000 seek=3 count=2 conv=notrunc status=none
dd if=src/nums.txt of=d.bin bs=512 skip=7 seek=100 count=3 conv=notrunc status=none
dd if=d.bin of=d2.bin bs=7 skip=5 status=none; dd if=src/nums.txt of=d3.bin bs=1M seek=2 status=none
sha256sum d.bin d2.bin d3.bin | cut -c1-16; stat -c '%n %s %b' d.bin d2.bin d3.bin
dd if=src/nums.txt of=d.bin bs=100 count=1 seek=1 status=none; stat -c '%s' d.bin
echo == split
split -b 10000 -d src/sub/bin part. && ls part.* | wc -l && cat part.* > joined && cmp joined src/sub/bin && echo joined
split -l 3000 src/nums.txt L && wc -l La* | tail -1
echo == find
touch -d '2021-01-01' old; touch -d '2030-01-01' new
find . -newer old -type f | wc -l; find . -maxdepth 1 -newer new | wc -l
find src -type f -size +10k | sort; find src -type d | sort; find src -empty | sort
find src -name '*.txt' -exec wc -c {} + ; find src -type f -exec sh -c 'basename "$1"' _ {} \\; | sort
find src -xdev -type f | wc -l; du -sk src/sub/bin; du -x --apparent-size -b src/nums.txt
echo == stat touch
touch -r src/sub/bin ref; stat -c '%Y %y' ref src/sub/bin
touch -d '2000-01-01 12:00:00' t1; touch -m -d '2001-01-01' t1; touch -a -d '2002-01-01' t1; stat -c '%x|%y' t1
touch -c nothere; ls nothere 2>&1
stat -c '%n %s %F %a %h %U %b %B' src/nums.txt src/empty src/sub/bin; stat -c '%F %a %h' src/sub
ls -la --time-style=full-iso src/sub/bin src/empty | awk '{print $1, $2, $5, $6, $7, $9}'
echo == ln
ln -s nums.txt src/link; wc -l < src/link; readlink src/link; stat -L -c '%s' src/link; stat -c '%F' src/link
ln src/sub/small hard; stat -c '%h' hard src/sub/small; echo more >> hard; cat src/sub/small
ln src/sub/small hard 2>&1; ln src/nothere x 2>&1; ln src/sub x 2>&1
cp -l src/nums.txt cpl && stat -c '%h' cpl src/nums.txt
echo == fifo
mkfifo ff && stat -c '%F' ff && (echo through > ff &) && cat ff; rm ff
echo == chmod chown
chmod 600 src/nums.txt; stat -c '%a' src/nums.txt; chmod u+x,g+w src/nums.txt; stat -c '%a' src/nums.txt
chown 1000:1000 src/nums.txt; stat -c '%u:%g' src/nums.txt; chown root src/nums.txt; stat -c '%u:%g' src/nums.txt
chmod -R go-rwx src; stat -c '%a %n' src/sub/bin src/sub
setpriv --reuid=1000 --regid=1000 --clear-groups cat src/sub/bin 2>&1 | grep -v "^ERROR: ld.so: object .* cannot be preloaded" | head -c 60; echo
echo == misc
truncate -s 5000 t2; truncate -s +3000 t2; truncate -s -1000 t2; stat -c '%s %b' t2
fallocate -l 100000 fa; stat -c '%s %b' fa; fallocate -p -o 0 -l 8192 fa; stat -c '%s %b' fa
cp --sparse=always d3.bin sp; stat -c '%s %b' sp
install -m 755 src/sub/bin inst; stat -c '%a' inst; mv -n inst src/sub/bin; cmp inst src/sub/bin && echo mv-n
sort -o src/nums.txt -n -r src/nums.txt; head -2 src/nums.txt; tac src/nums.txt | head -1
tee tee.out < src/sub/small > /dev/null; cat src/sub/small >> tee.out; cat tee.out
sync; sync -f tee.out; rm -rf src/sub; ls src`,
  );
});

test('python: mmap writes, flock/lockf between processes and opens, sendfile, shutil and tarfile archives, os.replace onto open files', async (t) => {
  const script = readFileSync(join(REPO, 'test', 'fs', 'py', 'more_ops.py'), 'utf8');
  const { out } = await sameOnTmpfsAndShim(t, 'py-more', '', { cmd: PYTHON, argv: (dir) => ['-c', script, dir] });
  assert.match(out, /\('flock: second open, same process', 'busy 11'\)/);
  assert.match(out, /\('flock: dup of the first', 'got'\)/);
});

test('python: the same checks under a 1 MiB budget that evicts files around them', async (t) => {
  const script = readFileSync(join(REPO, 'test', 'fs', 'py', 'more_ops.py'), 'utf8');
  const { stats } = await sameOnTmpfsAndShim(t, 'py-more-budget', '', { cmd: PYTHON, argv: (dir) => ['-c', script, dir], budget: '1M' });
  assert.ok(stats.evictions > 0, `a 1 MiB budget evicted nothing: ${JSON.stringify(stats)}`);
});

test('sqlite WAL with mmap, dbm and shelve, hard links in tar and cp -a, a venv whose interpreter is in the root, Node.js fs', async (t) => {
  const { out } = await sameOnTmpfsAndShim(
    t,
    'misc',
    `/usr/bin/python3 - <<'P'
import dbm.dumb, os, shelve, sqlite3
db = dbm.dumb.open('g.db', 'c')
for i in range(2000):
    db[f'k{i}'] = 'v' * (i % 50)
db.close()
db = dbm.dumb.open('g.db', 'r')
print(len(db.keys()), db[b'k77'])
db.close()
with shelve.open('sh') as s:
    s['a'] = list(range(100))
with shelve.open('sh') as s:
    print(sum(s['a']))
c = sqlite3.connect('w.db')
print(c.execute('pragma journal_mode=wal').fetchone(), c.execute('pragma mmap_size=1000000').fetchone())
c.execute('create table t(x)')
c.executemany('insert into t values (?)', [(i,) for i in range(5000)])
c.commit()
c2 = sqlite3.connect('w.db')
print(c2.execute('select count(*), sum(x) from t').fetchone())
c.execute('delete from t where x % 2')
c.commit()
print(c2.execute('select count(*) from t').fetchone())
c.execute('pragma wal_checkpoint(truncate)')
c.close()
c2.close()
print(sorted(f for f in os.listdir('.') if f.startswith('w.db')))
P
mkdir t && echo a > t/f && ln t/f t/g && tar -cf h.tar t && mkdir x && tar -xf h.tar -C x && stat -c '%h' x/t/f x/t/g
cp -a t ca && stat -c '%h' ca/f ca/g
/usr/bin/python3 -m venv --without-pip venv && ./venv/bin/python -c 'import sys; print(sys.prefix == sys.argv[1] + "/venv")' "$R"
printf '#!%s/venv/bin/python\\nprint("venv script")\\n' "$R" > vs && chmod +x vs && ./vs
node -e '
const fs = require("fs");
fs.writeFileSync("n.txt", "x".repeat(100000));
fs.copyFileSync("n.txt", "n2.txt");
const fd = fs.openSync("n2.txt", "r+");
fs.writeSync(fd, "Y", 5);
fs.closeSync(fd);
console.log(fs.readFileSync("n2.txt", "utf8").slice(0, 7), fs.statSync("n2.txt").size);
fs.renameSync("n2.txt", "n3.txt");
console.log(fs.readdirSync(".").filter((x) => x.startsWith("n")).sort().join(","));
fs.rmSync("t", { recursive: true });
console.log(fs.existsSync("t"));'`,
  );
  assert.match(out, /^\(5000, 12497500\)$/m);
  assert.match(out, /^venv script$/m);
});

test('npm: pack a package, install the tarball offline, run its bin through the node_modules/.bin symlink', async (t) => {
  const { out } = await sameOnTmpfsAndShim(
    t,
    'npm',
    `export npm_config_cache="$R/.npmcache" npm_config_update_notifier=false npm_config_audit=false npm_config_fund=false
mkdir pkg && cd pkg && printf '{"name":"h3pkg","version":"1.0.0","bin":{"h3pkg":"cli.js"},"main":"index.js"}' > package.json
printf 'module.exports = (a, b) => a + b;\\n' > index.js
printf '#!/usr/bin/env node\\nconsole.log("cli", require("./index.js")(2, 3));\\n' > cli.js && chmod +x cli.js
npm pack --silent 2>&1 | tail -1 && cd ..
mkdir app && cd app && printf '{"name":"app","version":"1.0.0"}' > package.json
npm install --offline --silent ../pkg/h3pkg-1.0.0.tgz 2>&1 | tail -2
node -e 'console.log(require("h3pkg")(40, 2))' && ./node_modules/.bin/h3pkg
find node_modules -type f | sort && cat package.json && readlink node_modules/.bin/h3pkg`,
  );
  assert.match(out, /^cli 5$/m);
});
