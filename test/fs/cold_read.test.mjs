// A read of pages the reading process never copied through its mapping of the memfd goes through
// the kernel (docs/ARCHITECTURE.md, "Reads of pages not yet mapped"): a fault per 64 KiB (the
// kernel's fault-around) and the page-table entries it makes cost more here than the pread that
// copies the same bytes, as tmpfs's read does.  test/fs/c/cold_read.c reads a 4 MiB file another
// process wrote, twice: the first pass takes no page fault and makes tmpfs's read calls, the
// second (a file read again) is served by memcpy through the mapping without a call.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { REPO, compileProgram, describe, ephemeraRun, run, scratch, tmpfsScratch, cleanEnv } from './lib/harness.mjs';

function passes(out) {
  const p = {};
  for (const m of out.matchAll(/^pass (\d) faults (-?\d+) calls (-?\d+)$/gm)) p[m[1]] = { faults: Number(m[2]), calls: Number(m[3]) };
  return p;
}

test('a file read once is read through the kernel, without page faults; read again, from the mapping without calls', { timeout: 60_000 }, async (t) => {
  const sc = scratch('cold-read');
  const prog = await compileProgram(sc, 'cold_read', readFileSync(join(REPO, 'test/fs/c/cold_read.c'), 'utf8'), { flags: ['-O1', '-Wall', '-Wextra', '-Werror'] });
  const ref = tmpfsScratch('cold-read');
  let plain;
  try {
    plain = await run(prog, [ref.dir], { env: cleanEnv(), timeoutMs: 30_000 });
  } finally {
    ref.done();
  }
  assert.equal(plain.status, 0, describe(plain));
  const tmpfs = passes(plain.stdout.toString());
  const root = sc.sub('root');
  const shim = await ephemeraRun({ root, cmd: prog, args: [root], statsDir: sc.dir, timeoutMs: 30_000 });
  assert.equal(shim.status, 0, describe(shim));
  const got = passes(shim.stdout.toString());
  t.diagnostic(`tmpfs ${JSON.stringify(tmpfs)}, shim ${JSON.stringify(got)}`);
  assert.ok(tmpfs[1] && got[1] && got[2], `no pass lines: ${describe(shim)}`);
  // main: 66 faults (4 MiB / 64 KiB of fault-around, and the first) and no call
  assert.ok(got[1].faults <= 8, `the first read of the file took ${got[1].faults} page faults (tmpfs: ${tmpfs[1].faults})`);
  assert.ok(got[1].calls <= tmpfs[1].calls, `the first read made ${got[1].calls} read calls, tmpfs ${tmpfs[1].calls}`);
  assert.ok(got[2].calls <= 16, `the second read made ${got[2].calls} read calls: a file read again should come from the mapping`);
  assert.ok(shim.stats.fast_reads >= 1024, `fast_reads is ${shim.stats.fast_reads}`);
  sc.done();
});
