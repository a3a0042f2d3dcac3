// test-tier: unit
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { FitIndex, type FitEntry } from './fit-index.js';
import { mulberry32 } from '../core/random.js';

const cmp = (a: FitEntry, b: FitEntry): number => a.key - b.key || a.ordinal - b.ordinal;

function naiveFirst(all: readonly FitEntry[], k: number, o: number, need: number): FitEntry | undefined {
  return [...all].sort(cmp).find((e) => (e.key > k || (e.key === k && e.ordinal >= o)) && e.free >= need);
}

function naiveLast(all: readonly FitEntry[], k: number, o: number, need: number): FitEntry | undefined {
  return [...all].sort(cmp).reverse().find((e) => (e.key < k || (e.key === k && e.ordinal <= o)) && e.free >= need);
}

test('FitIndex answers first/last-fit queries like a sorted scan under random inserts, removals and free changes', { timeout: 20_000 }, () => {
  for (let seed = 1; seed <= 20; seed++) {
    const rnd = mulberry32(seed);
    const idx = new FitIndex();
    const live = new Map<number, FitEntry>();
    let nextOrd = 0;
    for (let step = 0; step < 600; step++) {
      const op = rnd();
      const ords = [...live.keys()];
      if (op < 0.45 || ords.length === 0) {
        const e = { key: Math.floor(rnd() * 21) - 10, ordinal: nextOrd++, free: Math.floor(rnd() * 50) };
        idx.insert(e.key, e.ordinal, e.free);
        live.set(e.ordinal, e);
      } else if (op < 0.65) {
        const o = ords[Math.floor(rnd() * ords.length)] ?? 0;
        const e = live.get(o);
        assert.ok(e);
        assert.equal(idx.remove(e.key, e.ordinal), true);
        live.delete(o);
      } else if (op < 0.8) {
        const o = ords[Math.floor(rnd() * ords.length)] ?? 0;
        const e = live.get(o);
        assert.ok(e);
        const free = Math.floor(rnd() * 50);
        assert.equal(idx.setFree(e.key, e.ordinal, free), true);
        live.set(o, { ...e, free });
      } else {
        const all = [...live.values()];
        const k = Math.floor(rnd() * 25) - 12;
        const o = rnd() < 0.5 ? (rnd() < 0.5 ? -Infinity : Infinity) : Math.floor(rnd() * nextOrd);
        const need = Math.floor(rnd() * 55);
        assert.deepEqual(idx.firstFitFrom(k, o, need), naiveFirst(all, k, o, need), `seed ${seed} step ${step} first(${k}, ${o}, ${need})`);
        assert.deepEqual(idx.lastFitUpTo(k, o, need), naiveLast(all, k, o, need), `seed ${seed} step ${step} last(${k}, ${o}, ${need})`);
      }
      assert.equal(idx.size, live.size);
    }
    assert.deepEqual(idx.entries(), [...live.values()].sort(cmp));
  }
});

test('FitIndex stays an AVL tree: height ≤ 1.44 log2(n + 2) after 100,000 ordered inserts and half removed', { timeout: 20_000 }, () => {
  const idx = new FitIndex();
  const n = 100_000;
  for (let i = 0; i < n; i++) idx.insert(i, i, i % 7);
  assert.ok(idx.height <= 1.4405 * Math.log2(n + 2), `height ${idx.height}`);
  for (let i = 0; i < n; i += 2) idx.remove(i, i);
  assert.equal(idx.size, n / 2);
  assert.ok(idx.height <= 1.4405 * Math.log2(n / 2 + 2), `height ${idx.height}`);
  assert.equal(idx.remove(0, 0), false);
  assert.equal(idx.setFree(0, 0, 1), false);
});

test('FitIndex refuses a duplicate entry and finds nothing when nothing fits', { timeout: 5_000 }, () => {
  const idx = new FitIndex();
  idx.insert(3, 1, 10);
  assert.throws(() => idx.insert(3, 1, 5), /already present/);
  assert.equal(idx.firstFitFrom(-Infinity, -Infinity, 11), undefined);
  assert.equal(idx.lastFitUpTo(Infinity, Infinity, 11), undefined);
  assert.deepEqual(idx.firstFitFrom(-Infinity, -Infinity, 10), { key: 3, ordinal: 1, free: 10 });
});
