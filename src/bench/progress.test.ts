// test-tier: unit
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { Progress, formatDuration } from './progress.js';

function sink(isTTY: boolean): { out: { isTTY: boolean; write(t: string): boolean }; text: () => string } {
  let text = '';
  return {
    out: {
      isTTY,
      write(t: string) {
        text += t;
        return true;
      },
    },
    text: () => text,
  };
}

test('Progress: one plain line per finished run off a terminal, counted against the total', () => {
  const s = sink(false);
  const p = new Progress(0, s.out);
  p.begin(2);
  p.start('a');
  p.finish('a', '1.000s');
  p.note('a note');
  p.finish('b', 'done');
  p.end();
  const lines = s.text().split('\n');
  assert.match(lines[0] ?? '', /^\[1\/2\] \d+s elapsed, ETA \d+s {2}a: 1\.000s$/);
  assert.equal(lines[1], 'a note');
  assert.match(lines[2] ?? '', /^\[2\/2\] .* {2}b: done$/);
  assert.equal(lines[3], '');
  assert.ok(!s.text().includes('\r'));
});

test('Progress: on a terminal the line is redrawn in place and cleared at the end', () => {
  const s = sink(true);
  const p = new Progress(3, s.out);
  p.start('x');
  assert.match(s.text(), /^\r\x1b\[2K\[0\/3\] \d+s elapsed, ETA \? {2}x$/);
  p.finish('x', 'ok');
  p.end();
  assert.ok(s.text().endsWith('\r\x1b[2K'));
  assert.ok(!s.text().includes('\n'));
});

test('formatDuration: seconds, minutes, hours', () => {
  assert.equal(formatDuration(5), '5s');
  assert.equal(formatDuration(125), '2m05s');
  assert.equal(formatDuration(3 * 3600 + 7 * 60), '3h07m');
});
