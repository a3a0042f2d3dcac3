/**
 * The two OpenWhisk actions of Figs. 14 and 15, deployed through the node agent's `/init` as a
 * user would deploy them:
 *
 * - `factorial`: the CPU-bound task, a large-integer factorial in pure Python (the loop of
 *   workloads/factorial.py), timed inside the action;
 * - `microbench`: the I/O-bound task, a zip action whose `__main__.py` runs the paper's micro
 *   benchmark (build/microbench, bench/native/microbench.c, shipped inside the zip) on two files,
 *   random 8 KiB operations. With `{"fs": "ephemera"}` the files go to /tmp, the managed root, with
 *   the shim the runtime preloads; with `{"fs": "overlay"}` they go to /var/tmp, the container's
 *   OverlayFS upper layer, and the program runs without the shim (no Ephemera on its path).
 */
import { execFileSync } from 'node:child_process';
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { EphemeraError } from '../../core/errors.js';

export const FACTORIAL_ACTION = `import time

def main(args):
    n = int(args["n"])
    t0 = time.perf_counter_ns()
    acc = 1
    for i in range(2, n + 1):
        acc *= i
    ns = time.perf_counter_ns() - t0
    return {"ns": ns, "bits": acc.bit_length()}
`;

const MICROBENCH_MAIN = `import json, os, shutil, subprocess

HERE = os.path.dirname(os.path.abspath(__file__))

def main(args):
    exe = os.path.join(HERE, "microbench")
    os.chmod(exe, 0o755)
    env = dict(os.environ)
    if args["fs"] == "overlay":
        where = "/var/tmp/microbench"
        for k in ("LD_PRELOAD", "EPHEMERA_LIB", "EPHEMERA_SOCK", "EPHEMERA_ROOTS"):
            env.pop(k, None)
    else:
        where = "/tmp/microbench"
    os.makedirs(where, exist_ok=True)
    argv = [exe, "--dir", where, "--file-size", str(int(args["fileBytes"])), "--ops", str(int(args["ops"])),
            "--block", "8192", "--seed", str(int(args.get("seed", 1)))]
    p = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=float(args.get("timeoutS", 600)))
    shutil.rmtree(where, ignore_errors=True)
    if p.returncode != 0:
        raise RuntimeError(f"microbench exited with {p.returncode}: {p.stderr.strip()[-400:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])
`;

/** The micro benchmark as a base64 zip action (OpenWhisk's `binary: true`), built with Python's zipfile. */
export async function microbenchActionZip(microbench: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'eph-sharing-action-'));
  try {
    await writeFile(join(dir, '__main__.py'), MICROBENCH_MAIN);
    await copyFile(microbench, join(dir, 'microbench'));
    const zip = join(dir, 'action.zip');
    try {
      execFileSync('python3', ['-m', 'zipfile', '-c', zip, join(dir, '__main__.py'), join(dir, 'microbench')], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 30_000 });
    } catch (err) {
      throw new EphemeraError('EPH_BENCH_FAILED', `cannot zip the micro benchmark action with python3 -m zipfile: ${(err as Error).message}; install python3 (scripts/deps.sh)`, { cause: err });
    }
    return (await readFile(zip)).toString('base64');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** What the micro benchmark action answers (microbench's JSON line). */
export interface MicrobenchReply {
  readonly create_ns: number;
  readonly ops_ns: number;
  readonly total_ns: number;
}

/** What the factorial action answers. */
export interface FactorialReply {
  readonly ns: number;
}

function numberField(body: unknown, key: string, what: string): number {
  const v = typeof body === 'object' && body !== null ? (body as Record<string, unknown>)[key] : undefined;
  if (typeof v !== 'number' || !Number.isFinite(v)) {
    throw new EphemeraError('EPH_BENCH_FAILED', `the ${what} action answered without a numeric ${key}: ${JSON.stringify(body).slice(0, 300)}`);
  }
  return v;
}

/** The action's own time of one activation, in ms. */
export function actionMs(kind: 'io' | 'cpu', statusCode: number, body: unknown): number {
  const what = kind === 'io' ? 'microbench' : 'factorial';
  if (statusCode !== 200) throw new EphemeraError('EPH_BENCH_FAILED', `the ${what} action failed with status ${String(statusCode)}: ${JSON.stringify(body).slice(0, 400)}`);
  return numberField(body, kind === 'io' ? 'total_ns' : 'ns', what) / 1e6;
}
