#!/usr/bin/env node
// The layers of a C directory (daemon/ by default): which file calls which, and whether that graph
// has a cycle.  `make lint` runs it and fails on a cycle.
//
//   node scripts/c-layers.mjs [--layers] [--self-test] [DIR]
//
// A file A depends on a file B of the same directory when A includes "B.h", or when A's object
// refers to a symbol that B's object defines (nm: A's undefined symbols against B's defined ones).
// Each .c is compiled on its own with the project's flags, so the graph is the linker's, not a
// guess from the text.  A call through a function pointer is no edge: that is how a lower layer
// reports up (a callback its user registers).  --layers prints each file's layer (0: depends on no
// other file of DIR; n: one more than the highest layer it depends on), the listing kept in
// docs/ARCHITECTURE.md.  --self-test checks the checker on two small made-up directories first.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';

const CC = process.env.CC ?? 'cc';
const CFLAGS = ['-std=gnu11', '-D_GNU_SOURCE', '-Iinclude', '-O0', '-c'];

/** { file: Map<dep, string[] reasons> } for every .c of dir. */
function graphOf(dir) {
  const files = readdirSync(dir).filter((f) => f.endsWith('.c')).sort();
  const names = new Set(files.map((f) => basename(f, '.c')));
  const work = mkdtempSync(join(tmpdir(), 'c-layers-'));
  const defined = new Map(); // symbol -> file
  const undef = new Map(); // file -> symbols
  try {
    for (const f of files) {
      const name = basename(f, '.c');
      const obj = join(work, `${name}.o`);
      execFileSync(CC, [...CFLAGS, '-I', dir, '-o', obj, join(dir, f)], { stdio: ['ignore', 'ignore', 'inherit'] });
      const syms = execFileSync('nm', ['-P', obj], { encoding: 'utf8' }).split('\n');
      const u = [];
      for (const line of syms) {
        const [sym, type] = line.split(' ');
        if (!sym || !type) continue;
        if (type === 'U') u.push(sym);
        else if (/^[A-TV-Z]$/.test(type)) defined.set(sym, name);
      }
      undef.set(name, u);
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  const graph = new Map();
  for (const name of names) graph.set(name, new Map());
  const add = (a, b, why) => {
    if (a === b) return;
    const deps = graph.get(a);
    deps.set(b, [...(deps.get(b) ?? []), why]);
  };
  for (const name of names) {
    const text = readFileSync(join(dir, `${name}.c`), 'utf8');
    for (const m of text.matchAll(/^\s*#\s*include\s+"([^"/]+)\.h"/gm)) {
      if (names.has(m[1])) add(name, m[1], `#include "${m[1]}.h"`);
    }
    for (const sym of undef.get(name) ?? []) {
      const owner = defined.get(sym);
      if (owner !== undefined) add(name, owner, sym);
    }
  }
  return graph;
}

/** The strongly connected components with more than one file (Tarjan). */
function cycles(graph) {
  let index = 0;
  const idx = new Map();
  const low = new Map();
  const stack = [];
  const on = new Set();
  const out = [];
  const visit = (v) => {
    idx.set(v, index);
    low.set(v, index++);
    stack.push(v);
    on.add(v);
    for (const w of graph.get(v).keys()) {
      if (!idx.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v), low.get(w)));
      } else if (on.has(w)) {
        low.set(v, Math.min(low.get(v), idx.get(w)));
      }
    }
    if (low.get(v) === idx.get(v)) {
      const scc = [];
      let w;
      do {
        w = stack.pop();
        on.delete(w);
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1) out.push(scc.sort());
    }
  };
  for (const v of [...graph.keys()].sort()) if (!idx.has(v)) visit(v);
  return out;
}

/** Layer of each file of an acyclic graph. */
function layers(graph) {
  const layer = new Map();
  const of = (v) => {
    if (!layer.has(v)) layer.set(v, Math.max(-1, ...[...graph.get(v).keys()].map(of)) + 1);
    return layer.get(v);
  };
  for (const v of graph.keys()) of(v);
  return layer;
}

/** Exit message for the cycles found, naming the edges that close them. */
function describe(dir, found, graph) {
  const lines = [`${dir}: the files that call each other in a circle (no layer order is possible):`];
  for (const scc of found) {
    lines.push(`  ${scc.join(', ')}`);
    const inside = new Set(scc);
    for (const a of scc) {
      for (const [b, why] of graph.get(a)) {
        if (inside.has(b)) lines.push(`    ${a}.c -> ${b}.c: ${why.slice(0, 4).join(', ')}${why.length > 4 ? ', ...' : ''}`);
      }
    }
  }
  lines.push('Break the back-edge: let the lower file take a callback that the higher one registers.');
  return lines.join('\n');
}

function selfTest() {
  const make = (files) => {
    const d = mkdtempSync(join(tmpdir(), 'c-layers-test-'));
    for (const [name, text] of Object.entries(files)) writeFileSync(join(d, name), text);
    return d;
  };
  const circle = make({
    'a.c': 'int b(void);\nint a(void) { return b(); }\n',
    'b.c': 'int c(void);\nint b(void) { return c(); }\n',
    'c.c': 'int a(void);\nint c(void) { return a(); }\n',
    'd.c': 'int a(void);\nint d(void) { return a(); }\n',
  });
  const line = make({
    'a.c': '#include "b.h"\nint a(void) { return 1; }\n',
    'b.h': 'int b(void);\n',
    'b.c': 'int (*hook)(void);\nint c(void);\nint b(void) { return hook() + c(); }\n',
    'c.c': 'int c(void) { return 2; }\n',
  });
  try {
    const g1 = graphOf(circle);
    const found = cycles(g1);
    if (found.length !== 1 || found[0].join() !== 'a,b,c') throw new Error(`self-test: expected the cycle a,b,c, got ${JSON.stringify(found)}`);
    const g2 = graphOf(line);
    if (cycles(g2).length !== 0) throw new Error('self-test: a line a -> b -> c was taken for a cycle');
    const l = layers(g2);
    if (l.get('c') !== 0 || l.get('b') !== 1 || l.get('a') !== 2) throw new Error(`self-test: wrong layers ${JSON.stringify([...l])}`);
  } finally {
    rmSync(circle, { recursive: true, force: true });
    rmSync(line, { recursive: true, force: true });
  }
}

const args = process.argv.slice(2);
const printLayers = args.includes('--layers');
if (args.includes('--self-test')) selfTest();
const dir = args.find((a) => !a.startsWith('--')) ?? 'daemon';
const graph = graphOf(dir);
const found = cycles(graph);
if (found.length > 0) {
  console.error(describe(dir, found, graph));
  process.exit(1);
}
const layer = layers(graph);
if (printLayers) {
  const top = Math.max(...layer.values());
  for (let n = top; n >= 0; n--) {
    const at = [...layer].filter(([, l]) => l === n).map(([f]) => f).sort();
    const deps = at.map((f) => `${f} -> ${[...graph.get(f).keys()].sort().join(', ') || '(nothing)'}`);
    console.log(`${n}: ${deps.join('; ')}`);
  }
} else {
  console.log(`${dir}: ${graph.size} files in ${Math.max(...layer.values()) + 1} layers, no cycle`);
}
