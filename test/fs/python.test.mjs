// Unmodified Python (Debian's /usr/bin/python3) under the shim.  Each workload in test/fs/py checks
// its own results against an in-process model and prints one RESULT line of digests; here we check
// it passed, that its data was served from memory, and that after the daemon wrote the files back
// the disk holds exactly the bytes the workload reported.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { PYTHON, REPO, TEST_BIN, assertServedFromMemory, describe, ephemeraRun, requireBuilt, scratch, sha256 } from './lib/harness.mjs';

const PY = join(REPO, 'test', 'fs', 'py');
const STATIC_READER = join(TEST_BIN, 'static_reader');

async function pyWorkload(t, script, { extraArgs = () => [], verify, budget } = {}) {
  const sc = scratch(`py-${script}`);
  const root = sc.sub('root');
  const outside = sc.sub('outside');
  const r = await ephemeraRun({
    root,
    budget,
    cmd: PYTHON,
    args: [join(PY, `${script}.py`), root, ...extraArgs({ outside })],
    env: { TMPDIR: root, PYTHONDONTWRITEBYTECODE: '1' },
    statsDir: sc.dir,
    cwd: PY,
  });
  assert.equal(r.status, 0, `python ${script}.py under the shim: ${describe(r)}\n(scratch kept in ${sc.dir})`);
  const line = r.stdout.toString().split('\n').find((l) => l.startsWith('RESULT '));
  assert.ok(line, `${script}.py printed no RESULT line: ${describe(r)}`);
  const result = JSON.parse(line.slice('RESULT '.length));
  assertServedFromMemory(r.stats, `python ${script}.py`, { evicting: budget !== undefined });
  t.diagnostic(`fast_reads=${r.stats.fast_reads} fast_writes=${r.stats.fast_writes} files_in_memory_peak=${r.stats.files_in_memory_peak} evictions=${r.stats.evictions}`);
  if (budget !== undefined) assert.ok(r.stats.evictions > 0, `${script}.py with a ${budget}-byte budget evicted nothing: ${JSON.stringify(r.stats)}`);
  if (verify) verify(result, root, r.stats);
  sc.done();
}

/** After writeback, the file on disk must have the digest the workload computed from its model. */
function onDisk(root, rel, digest) {
  assert.equal(sha256(readFileSync(join(root, rel))), digest, `${rel} on disk after writeback differs from what the program wrote`);
}

test('python: open/read/write/seek/truncate/append, text mode', async (t) => {
  requireBuilt(PYTHON);
  await pyWorkload(t, 'basic_io', {
    verify: (res, root) => {
      onDisk(root, 'data.bin', res['data.bin']);
      onDisk(root, 'text.txt', res['text.txt']);
    },
  });
});

test('python: os.stat/listdir/scandir/walk/rename/replace/remove/makedirs and fd calls', async (t) => {
  await pyWorkload(t, 'os_ops', {
    verify: (res, root) => {
      onDisk(root, 'x3', res.x3);
      assert.deepEqual(res.walk, [
        ['.', ['a'], ['top']],
        ['a', ['b'], ['x']],
        ['a/b', ['c'], ['y']],
        ['a/b/c', [], ['z']],
      ]);
    },
  });
});

test('python: tempfile (TemporaryFile, NamedTemporaryFile, mkstemp, mkdtemp, TemporaryDirectory)', async (t) => {
  await pyWorkload(t, 'tempfile_ops');
});

test('python: shutil copy/copy2/copyfile/copytree/move/rmtree/archives', async (t) => {
  await pyWorkload(t, 'shutil_ops', {
    extraArgs: ({ outside }) => [outside],
    verify: (res, root) => {
      for (const [rel, digest] of Object.entries(res)) onDisk(root, rel, digest);
    },
  });
});

test('python: gzip and zipfile', async (t) => {
  await pyWorkload(t, 'gzip_zip_ops');
});

test('python: sqlite3 (rollback journal and WAL)', async (t) => {
  await pyWorkload(t, 'sqlite_ops', {
    verify: (res) => assert.deepEqual(res, { DELETE: 6693055123, WAL: 6693055123 }),
  });
});

test('python: subprocess gzip of a file Python wrote, children on inherited fds, static binary, env={}', async (t) => {
  requireBuilt(STATIC_READER);
  await pyWorkload(t, 'subprocess_ops', {
    extraArgs: () => [STATIC_READER],
    verify: (res, root) => onDisk(root, 'a', res.a),
  });
});

// Python's vfork child changes into a directory in memory (subprocess.run(cwd=)) before its exec:
// a program that loads the shim again reads the files from memory, so none goes to disk (each
// spawn used to send every in-memory file there, MATERIALISE_ALL); one that cannot load the shim
// (static, EPHEMERA_NO_PRELOAD) still finds them on disk.
test('python: subprocess with cwd= in memory keeps the files in memory', async (t) => {
  await pyWorkload(t, 'subprocess_cwd', {
    extraArgs: () => ['memory'],
    verify: (res, root, stats) => {
      for (const [name, digest] of Object.entries(res)) onDisk(root, `sub/${name}`, digest);
      assert.equal(stats.materialisations, 0, `spawns with cwd= in memory put the files on disk: ${JSON.stringify(stats)}`);
      assert.equal(stats.evictions, 0, `spawns with cwd= in memory evicted files: ${JSON.stringify(stats)}`);
      assert.ok(stats.files_in_memory >= 20, `only ${stats.files_in_memory} files left in memory: ${JSON.stringify(stats)}`);
    },
  });
});

test('python: subprocess with cwd= in memory, programs that cannot load the shim read the bytes', async (t) => {
  requireBuilt(STATIC_READER);
  await pyWorkload(t, 'subprocess_cwd', {
    extraArgs: () => ['disk', STATIC_READER],
    verify: (res, root, stats) => {
      for (const [name, digest] of Object.entries(res)) onDisk(root, `sub/${name}`, digest);
      assert.ok(stats.materialisations > 0, `a static child read files never put on disk: ${JSON.stringify(stats)}`);
    },
  });
});

test('python: threads doing file I/O at once', async (t) => {
  await pyWorkload(t, 'threads_ops', {
    verify: (res, root) => onDisk(root, 'shared.bin', res.shared),
  });
});

// The same workloads with a budget far below what they write: files move to disk while open, and
// nothing may be lost or differ.
const SMALL = 1024 * 1024;

test('python, 1 MiB budget (evictions): open/read/write/seek/truncate/append', async (t) => {
  await pyWorkload(t, 'basic_io', {
    budget: SMALL,
    verify: (res, root) => {
      onDisk(root, 'data.bin', res['data.bin']);
      onDisk(root, 'text.txt', res['text.txt']);
    },
  });
});

test('python, 1 MiB budget (evictions): sqlite3', async (t) => {
  await pyWorkload(t, 'sqlite_ops', { budget: SMALL, verify: (res) => assert.deepEqual(res, { DELETE: 6693055123, WAL: 6693055123 }) });
});

test('python, 1 MiB budget (evictions): subprocess gzip, static binary, env={}', async (t) => {
  await pyWorkload(t, 'subprocess_ops', { budget: SMALL, extraArgs: () => [STATIC_READER], verify: (res, root) => onDisk(root, 'a', res.a) });
});

test('python, 1 MiB budget (evictions): threads', async (t) => {
  await pyWorkload(t, 'threads_ops', { budget: SMALL, verify: (res, root) => onDisk(root, 'shared.bin', res.shared) });
});
