// The `ephemera` entry point as a user meets it: a real process, its stderr and exit status.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const MAIN = fileURLToPath(new URL('./main.js', import.meta.url));

function cli(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [MAIN, ...args], { encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('help lists the commands and exits 0; no command exits 2', () => {
  const h = cli('help');
  assert.equal(h.status, 0);
  for (const c of ['run', 'ctl', 'bench', 'help']) assert.match(h.stdout, new RegExp(`^  ${c} `, 'm'));
  assert.equal(cli().status, 2);
  const r = cli('help', 'run');
  assert.equal(r.status, 0);
  assert.match(r.stdout, /usage: ephemera run/);
  assert.equal(cli('run', '--help').status, 0);
});

test('unknown command and bad flags: code on stderr, status 2, nothing on stdout', () => {
  for (const args of [['frob'], ['run', 'python3'], ['run', '--budget', 'lots', '--', 'true'], ['run', '--root', '/nonexistent-dir', '--', 'true'], ['bench', 'nope'], ['help', 'frob']]) {
    const r = cli(...args);
    assert.equal(r.status, 2, args.join(' '));
    assert.match(r.stderr, /^ephemera: EPH_CLI_[A-Z_]+: /, args.join(' '));
    assert.equal(r.stdout, '', args.join(' '));
  }
});
