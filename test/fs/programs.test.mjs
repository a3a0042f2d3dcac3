// Unmodified programs under the shim: coreutils, tar, gzip, the sqlite3 CLI, sh with redirections
// and pipelines, a static binary, Node.js itself.  Inputs come from an unmanaged directory, so the
// bytes the programs read from the root are bytes another program wrote there, in memory.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

import {
  TEST_BIN,
  assertServedFromMemory,
  describe,
  ephemeraRun,
  prandBytes,
  prandLines,
  scratch,
  sha256,
  treeDigest,
} from './lib/harness.mjs';

/** Run `sh -c SCRIPT` under the shim with R=root, IN=input dir, OUT=unmanaged output dir. */
async function shUnder(t, name, script, { prepare, budget, env = {} } = {}) {
  const sc = scratch(name);
  const root = sc.sub('root');
  const input = sc.sub('in');
  const out = sc.sub('out');
  if (prepare) prepare(input);
  const r = await ephemeraRun({
    root,
    budget,
    cmd: '/bin/sh',
    args: ['-c', `set -eu\n${script}`],
    env: { R: root, IN: input, OUT: out, STATIC_READER: join(TEST_BIN, 'static_reader'), ...env },
    statsDir: sc.dir,
  });
  assert.equal(r.status, 0, `${name}: sh script under the shim failed: ${describe(r)}\n(scratch kept in ${sc.dir})`);
  assertServedFromMemory(r.stats, name);
  t.diagnostic(`fast_reads=${r.stats.fast_reads} fast_writes=${r.stats.fast_writes} files_in_memory_peak=${r.stats.files_in_memory_peak} evictions=${r.stats.evictions}`);
  return { root, input, out, stdout: r.stdout.toString(), stats: r.stats, sc };
}

const LINES = prandLines(20000, 7);
const SORTED = [...LINES].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));

test('coreutils: cp, sort, cat, mv, mkdir, cmp between files in memory', async (t) => {
  const { root, out, stdout, sc } = await shUnder(
    t,
    'coreutils',
    `cp "$IN/lines.txt" "$R/a.txt"
     sort "$R/a.txt" > "$R/sorted.txt"
     sort -r "$R/sorted.txt" -o "$R/rsorted.txt"
     cat "$R/sorted.txt" "$R/rsorted.txt" > "$R/both.txt"
     mv "$R/both.txt" "$R/moved.txt"
     mkdir "$R/d"
     cp "$R/moved.txt" "$R/sorted.txt" "$R/d/"
     mv "$R/d" "$R/e"
     cmp "$R/e/sorted.txt" "$R/sorted.txt"
     sort -c "$R/e/sorted.txt"
     cp "$R/e/moved.txt" "$OUT/moved.txt"
     cat "$R/e/moved.txt" | wc -l
     ls "$R" "$R/e"`,
    { prepare: (dir) => writeFileSync(join(dir, 'lines.txt'), `${LINES.join('\n')}\n`) },
  );
  const expected = `${SORTED.join('\n')}\n${[...SORTED].reverse().join('\n')}\n`;
  assert.equal(sha256(readFileSync(join(out, 'moved.txt'))), sha256(Buffer.from(expected)), 'cp out of the root: wrong bytes');
  assert.equal(stdout, `${2 * LINES.length}\n${root}:\na.txt\ne\nmoved.txt\nrsorted.txt\nsorted.txt\n\n${root}/e:\nmoved.txt\nsorted.txt\n`);
  assert.equal(readFileSync(join(root, 'e', 'moved.txt'), 'utf8'), expected, 'after writeback');
  sc.done();
});

test('tar: create and extract (plain and gzip through a child), trees identical', async (t) => {
  const files = { 'src/a.bin': prandBytes(300000, 1), 'src/b/c.txt': Buffer.from(LINES.join('\n')), 'src/b/d/e.bin': prandBytes(70000, 2), 'src/empty': Buffer.alloc(0) };
  const { root, out, sc } = await shUnder(
    t,
    'tar',
    `cp -r "$IN/src" "$R/src"
     tar -cf "$R/a.tar" -C "$R" src
     mkdir "$R/x" "$R/y"
     tar -xf "$R/a.tar" -C "$R/x"
     tar -czf "$R/a.tgz" -C "$R" src
     tar -xzf "$R/a.tgz" -C "$R/y"
     diff -r "$R/src" "$R/x/src"
     diff -r "$R/src" "$R/y/src"
     tar -tzf "$R/a.tgz" | sort > "$OUT/list.txt"
     tar -xzf "$R/a.tgz" -C "$OUT"`,
    {
      prepare: (dir) => {
        for (const [rel, data] of Object.entries(files)) {
          const p = join(dir, rel);
          mkdirSync(dirname(p), { recursive: true });
          writeFileSync(p, data);
        }
      },
    },
  );
  const want = Object.fromEntries(Object.entries(files).map(([k, v]) => [k, sha256(v)]));
  assert.deepEqual(treeDigest(join(out)), { ...want, 'list.txt': treeDigest(out)['list.txt'] }, 'extracted outside the root');
  assert.deepEqual(
    readFileSync(join(out, 'list.txt'), 'utf8').trim().split('\n'),
    ['src/', 'src/a.bin', 'src/b/', 'src/b/c.txt', 'src/b/d/', 'src/b/d/e.bin', 'src/empty'],
  );
  const x = treeDigest(join(root, 'x'));
  assert.deepEqual(x, want, 'tar -x into the root, after writeback');
  sc.done();
});

test('gzip/gunzip/zcat on files in memory', async (t) => {
  const big = prandBytes(2_000_000, 3);
  const { out, sc } = await shUnder(
    t,
    'gzip',
    `cp "$IN/big" "$R/big"
     gzip -k "$R/big"
     gunzip -c "$R/big.gz" > "$R/big2"
     cmp "$R/big" "$R/big2"
     gzip -9 < "$R/big" > "$R/big3.gz"
     zcat "$R/big3.gz" > "$OUT/big3"
     mv "$R/big.gz" "$R/again.gz"
     gunzip "$R/again.gz"
     cmp "$R/again" "$R/big"
     cp "$R/again" "$OUT/again"`,
    { prepare: (dir) => writeFileSync(join(dir, 'big'), big) },
  );
  assert.equal(sha256(readFileSync(join(out, 'big3'))), sha256(big));
  assert.equal(sha256(readFileSync(join(out, 'again'))), sha256(big));
  sc.done();
});

test('sqlite3 CLI: a database in memory, used by two processes in turn', async (t) => {
  const sql = ['CREATE TABLE t(id INTEGER PRIMARY KEY, v INTEGER, s TEXT);', 'BEGIN;'];
  let sum = 0;
  for (let i = 0; i < 5000; i++) {
    const v = (i * 7919) % 10007;
    sum += v;
    sql.push(`INSERT INTO t VALUES (${i}, ${v}, 'row ${i}');`);
  }
  sql.push('COMMIT;', 'CREATE INDEX iv ON t(v);');
  const { stdout, sc } = await shUnder(
    t,
    'sqlite3',
    `sqlite3 "$R/db.sqlite" < "$IN/load.sql"
     sqlite3 "$R/db.sqlite" 'SELECT count(*), sum(v) FROM t;'
     sqlite3 "$R/db.sqlite" 'PRAGMA journal_mode=WAL; UPDATE t SET v = v + 1; SELECT sum(v) FROM t; PRAGMA integrity_check;'
     sqlite3 "$R/db.sqlite" 'SELECT s FROM t WHERE v = (SELECT max(v) FROM t) ORDER BY id LIMIT 1;'
     sqlite3 "$R/db.sqlite" .dump | sqlite3 "$R/copy.sqlite"
     sqlite3 "$R/copy.sqlite" 'SELECT count(*), sum(v) FROM t;'`,
    { prepare: (dir) => writeFileSync(join(dir, 'load.sql'), sql.join('\n')) },
  );
  let maxId = 0;
  let maxV = -1;
  for (let i = 0; i < 5000; i++) {
    const v = (i * 7919) % 10007;
    if (v > maxV) {
      maxV = v;
      maxId = i;
    }
  }
  assert.equal(stdout, `5000|${sum}\nwal\n${sum + 5000}\nok\nrow ${maxId}\n5000|${sum + 5000}\n`);
  sc.done();
});

test('sh: redirections (> >> < <> 2>&1, here-docs, exec fds) and pipelines', async (t) => {
  const { root, stdout, sc } = await shUnder(
    t,
    'sh-redirections',
    `cd "$R"
     echo one > f
     echo two >> f
     printf 'three\\n' >> f
     cat f | tr a-z A-Z > g
     wc -l < g
     ( cat f; cat g ) > h 2>&1
     sort < h | uniq -c | sed 's/^ *//' > i
     cat i
     exec 3> fd3
     echo via-fd3 >&3
     echo more >&3
     exec 3>&-
     cat fd3
     exec 4< f
     read first <&4
     read second <&4
     exec 4<&-
     echo "$first/$second"
     cat <<EOF > heredoc
line a
line b
EOF
     cat heredoc
     echo replaced > f
     cat f
     echo xy 1<> rw
     echo A 1<> rw  # no truncation: A and a newline over x and y
     cat rw
     ls /nonexistent-dir 2> err || true
     grep -c 'nonexistent' err
     echo gone > tmp; rm tmp; test ! -e tmp && echo removed
     $STATIC_READER g`,
  );
  const fnv = (s) => {
    let h = 0xcbf29ce484222325n;
    for (const b of Buffer.from(s)) h = ((h ^ BigInt(b)) * 0x100000001b3n) & 0xffffffffffffffffn;
    return h.toString(16).padStart(16, '0');
  };
  assert.equal(
    stdout,
    '3\n1 ONE\n1 THREE\n1 TWO\n1 one\n1 three\n1 two\nvia-fd3\nmore\none/two\nline a\nline b\nreplaced\nA\n\n1\nremoved\n' +
      `bytes=14 fnv=${fnv('ONE\nTWO\nTHREE\n')}\n`,
  );
  assert.equal(readFileSync(join(root, 'heredoc'), 'utf8'), 'line a\nline b\n');
  assert.equal(readFileSync(join(root, 'g'), 'utf8'), 'ONE\nTWO\nTHREE\n');
  sc.done();
});

test('node: fs.promises in parallel (libuv thread pool) on files in memory', async (t) => {
  const script = `
    const fs = require('node:fs/promises'); const crypto = require('node:crypto');
    const root = process.env.R;
    (async () => {
      const datas = Array.from({ length: 32 }, (_, i) => crypto.createHash('sha256').update('x' + i).digest().toString('hex').repeat(500 + i * 37));
      await Promise.all(datas.map((d, i) => fs.writeFile(root + '/n' + i, d)));
      const back = await Promise.all(datas.map((_, i) => fs.readFile(root + '/n' + i, 'utf8')));
      back.forEach((b, i) => { if (b !== datas[i]) throw new Error('file n' + i + ' differs'); });
      const fh = await fs.open(root + '/handle', 'w+');
      await Promise.all(datas.map((d, i) => fh.write(Buffer.from(d.slice(0, 100)), 0, 100, i * 100)));
      const buf = Buffer.alloc(3200); await fh.read(buf, 0, 3200, 0); await fh.close();
      for (let i = 0; i < 32; i++) if (buf.toString('utf8', i * 100, i * 100 + 100) !== datas[i].slice(0, 100)) throw new Error('region ' + i);
      const names = (await fs.readdir(root)).sort();
      console.log(names.length, (await fs.stat(root + '/n31')).size);
    })().catch((e) => { console.error(e); process.exit(1); });`;
  const { stdout, sc } = await shUnder(t, 'node-fs', `${process.execPath} -e "$SCRIPT"`, { env: { SCRIPT: script } });
  assert.equal(stdout, `33 ${64 * (500 + 31 * 37)}\n`);
  sc.done();
});

test('the memory check rejects a run the shim did not serve (what a pass-through shim would give)', async () => {
  const sc = scratch('passthrough');
  const root = sc.sub('root');
  const other = sc.sub('unmanaged');
  const r = await ephemeraRun({ root, cmd: '/bin/sh', args: ['-c', `echo data > ${other}/f && cat ${other}/f`], statsDir: sc.dir });
  assert.equal(r.status, 0, describe(r));
  assert.equal(r.stdout.toString(), 'data\n');
  assert.throws(() => assertServedFromMemory(r.stats, 'pass-through'), /fast_reads is 0/);
  sc.done();
});

test('the memory check also rejects a run whose I/O went to the kernel after a little was served from memory', async () => {
  const sc = scratch('mostly-kernel');
  const root = sc.sub('root');
  // The small file is served from memory; big outgrows the 64 KiB budget and goes to disk (hard
  // links no longer move a file there since they stay in memory), so dd's 2,000 reads on the open
  // descriptor go to the kernel: slow_ops about 2,000 against some 30 fast operations.
  const script = `echo x > "$R/small" && cat "$R/small" >/dev/null && head -c 200000 /dev/zero > "$R/big" && exec 3<"$R/big" && dd of=/dev/null bs=100 <&3 2>/dev/null`;
  const r = await ephemeraRun({ root, budget: '64K', cmd: '/bin/sh', args: ['-c', script], env: { R: root }, statsDir: sc.dir });
  assert.equal(r.status, 0, describe(r));
  assert.ok(r.stats.fast_reads > 0 && r.stats.fast_writes > 0 && r.stats.files_in_memory_peak > 0, `the fast counters alone would pass this run: ${JSON.stringify(r.stats)}`);
  assert.throws(() => assertServedFromMemory(r.stats, 'mostly kernel'), /slow_ops is \d+, not fewer than/);
  sc.done();
});

test('the fast path makes no syscall: strace sees almost none of 20000 preads/pwrites', async (t) => {
  const sc = scratch('strace');
  const root = sc.sub('root');
  const trace = join(sc.dir, 'strace.txt');
  const py = [
    'import os, sys',
    `fd = os.open(${JSON.stringify(`${root}/f`)}, os.O_RDWR | os.O_CREAT, 0o644)`,
    "os.write(fd, b'x' * 65536)",
    'for i in range(10000):',
    "    os.pwrite(fd, b'y' * 512, (i * 4096) % 65536)",
    '    assert len(os.pread(fd, 512, (i * 8192) % 65536)) == 512',
    'os.close(fd)',
  ].join('\n');
  const r = await ephemeraRun({
    root,
    cmd: 'strace',
    args: ['-f', '-qq', '-e', 'trace=pread64,pwrite64,read,write,lseek', '-o', trace, '/usr/bin/python3', '-c', py],
    statsDir: sc.dir,
  });
  assert.equal(r.status, 0, describe(r));
  assertServedFromMemory(r.stats, 'strace workload');
  const calls = readFileSync(trace, 'utf8').split('\n').filter((l) => /\b(pread64|pwrite64)\(/.test(l));
  t.diagnostic(`pread64/pwrite64 syscalls seen by strace: ${calls.length} for 20000 calls by the program`);
  assert.ok(calls.length < 200, `${calls.length} pread64/pwrite64 syscalls reached the kernel for 20000 calls on an in-memory file (first: ${calls.slice(0, 3).join(' | ')})`);
  sc.done();
});
