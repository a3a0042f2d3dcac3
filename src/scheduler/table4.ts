/**
 * Table 4 of the paper as a pure model: six tasks of one tenant arrive one per second (C, I, I, C,
 * I, I) on two nodes of 1024 MB and all keep running; where does each land, and what does each node
 * end up with? The task sizes are the ones Table 4's baseline rows imply: I/O tasks `T_lim` 150 MB
 * and `T_mem` 258 MB, CPU tasks 300 MB and 4 MB.
 *
 * This is the allocation only, through the real scheduler code; the latencies need the real
 * containers (`bench table4`, not part of this model).
 */
import { algorithm1, type NodeView, type Reading, type SchedulerPolicy, type TaskProfile } from './algorithm.js';
import { Scheduler } from './scheduler.js';

const MiB = 1024 * 1024;

export const TABLE4_TASKS: Readonly<Record<'io' | 'cpu', TaskProfile>> = {
  io: { limit: 150 * MiB, mem: 258 * MiB },
  cpu: { limit: 300 * MiB, mem: 4 * MiB },
};

export const TABLE4_ARRIVALS: readonly ('io' | 'cpu')[] = ['cpu', 'io', 'io', 'cpu', 'io', 'io'];

export const TABLE4_NODE_MEMORY = 1024 * MiB;

/** One node's row, in MiB: requested (`N_req`), allocated (`N_alloc`), and used when the tenant's memory is shared on the node. */
export interface Table4Row {
  readonly node: string;
  readonly reqMiB: number;
  readonly allocMiB: number;
  /** min(requested, allocated): what the tasks can use when the Manager lends spare memory inside the node. */
  readonly usedMiB: number;
  /** The task kinds placed on the node, in arrival order. */
  readonly tasks: readonly string[];
}

/** The paper's Table 4 (MB), for side-by-side output. Its node labels are its own: compare rows as a set. */
export const TABLE4_PAPER: Readonly<Record<SchedulerPolicy, readonly { req: number; alloc: number; used: number }[]>> = {
  ephemera: [
    { req: 778, alloc: 750, used: 748 },
    { req: 262, alloc: 450, used: 262 },
  ],
  'most-free': [
    { req: 1032, alloc: 600, used: 600 },
    { req: 8, alloc: 600, used: 8 },
  ],
};

const TENANT = 'tenant';

function rows(byNode: ReadonlyMap<string, { req: number; alloc: number; tasks: string[] }>): Table4Row[] {
  return [...byNode].map(([node, f]) => ({ node, reqMiB: f.req / MiB, allocMiB: f.alloc / MiB, usedMiB: Math.min(f.req, f.alloc) / MiB, tasks: f.tasks }));
}

/** Runs the arrivals through the scheduler (`ephemera` or `most-free`) and returns each node's row. */
export function simulateTable4(policy: SchedulerPolicy): Table4Row[] {
  const s = new Scheduler({ policy });
  const names = ['node1', 'node2'];
  for (const node of names) s.report({ node, seq: 1, lim: TABLE4_NODE_MEMORY, alloc: 0, req: 0, tenants: {}, running: [] }, 0);
  const byNode = new Map(names.map((n) => [n, { req: 0, alloc: 0, tasks: [] as string[] }]));
  TABLE4_ARRIVALS.forEach((kind, i) => {
    const task = TABLE4_TASKS[kind];
    const p = s.schedule({ id: `task${i + 1}-${kind}`, tenant: TENANT, task }, i * 1000);
    if (p === null) throw new Error(`Table 4 model: task ${i + 1} (${kind}) found no node`);
    const row = byNode.get(p.node);
    if (row === undefined) throw new Error(`Table 4 model: unknown node ${p.node}`);
    row.req += task.mem;
    row.alloc += task.limit;
    row.tasks.push(kind);
  });
  return rows(byNode);
}

/**
 * The same arrivals through the linear Algorithm 1 under a given reading (the printed filter or
 * score, or the intended one). Tasks that find no node are left out of the rows.
 */
export function simulateTable4Reading(reading: Reading): { rows: Table4Row[]; unplaced: number } {
  const nodes: NodeView[] = ['node1', 'node2'].map((name, ordinal) => ({ name, ordinal, lim: TABLE4_NODE_MEMORY, node: { alloc: 0, req: 0 }, tenant: { alloc: 0, req: 0 } }));
  const byNode = new Map(nodes.map((n) => [n.name, { req: 0, alloc: 0, tasks: [] as string[] }]));
  let unplaced = 0;
  for (const kind of TABLE4_ARRIVALS) {
    const task = TABLE4_TASKS[kind];
    const i = algorithm1(nodes, task, reading);
    const v = nodes[i];
    if (v === undefined) {
      unplaced++;
      continue;
    }
    const node = { alloc: v.node.alloc + task.limit, req: v.node.req + task.mem };
    nodes[i] = { ...v, node, tenant: node };
    const row = byNode.get(v.name);
    if (row !== undefined) {
      row.req += task.mem;
      row.alloc += task.limit;
      row.tasks.push(kind);
    }
  }
  return { rows: rows(byNode), unplaced };
}

/** Ours and the baseline side by side with the paper's rows, and the memory each wastes. */
export function formatTable4Model(): { text: string; result: Record<SchedulerPolicy, Table4Row[]> } {
  const result: Record<SchedulerPolicy, Table4Row[]> = { ephemera: simulateTable4('ephemera'), 'most-free': simulateTable4('most-free') };
  const lines = [
    'Table 4 (allocation model): C, I, I, C, I, I on two 1024 MB nodes; I/O tasks T_lim 150 / T_mem 258 MB, CPU tasks 300 / 4 MB',
    'pure model through the real scheduler code: placement and memory per node; latencies need the real containers (not part of this run)',
    '',
    `${'policy'.padEnd(10)} ${'node'.padEnd(6)} ${'req MB'.padStart(7)} ${'alloc MB'.padStart(9)} ${'used MB'.padStart(8)}   ${'paper req/alloc/used'.padEnd(21)} tasks`,
  ];
  for (const policy of ['ephemera', 'most-free'] as const) {
    const rowsOf = result[policy];
    // The paper's node labels are its own: pair each row with the paper row of the same requested memory.
    const paper = [...TABLE4_PAPER[policy]];
    for (const r of rowsOf) {
      const i = paper.findIndex((p) => p.req === r.reqMiB);
      const p = i >= 0 ? paper.splice(i, 1)[0] : undefined;
      lines.push(
        `${policy.padEnd(10)} ${r.node.padEnd(6)} ${String(r.reqMiB).padStart(7)} ${String(r.allocMiB).padStart(9)} ${String(r.usedMiB).padStart(8)}   ${(p === undefined ? '-' : `${p.req}/${p.alloc}/${p.used}`).padEnd(21)} ${r.tasks.join(',')}`,
      );
    }
    const waste = rowsOf.reduce((s, r) => s + r.allocMiB - r.usedMiB, 0);
    const paperWaste = TABLE4_PAPER[policy].reduce((s, r) => s + r.alloc - r.used, 0);
    lines.push(`${policy.padEnd(10)} wasted (alloc - used) over the nodes: ${waste} MB (paper: ${paperWaste} MB)`);
  }
  lines.push('', 'used = min(requested, allocated): the Manager lends a node\'s spare memory within the tenant; the paper\'s 748 MB is 2 MB lower because Docker gives a CPU task at least 6 MB');
  return { text: lines.join('\n'), result };
}
