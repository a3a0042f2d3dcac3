/**
 * `ephemera status`'s picture: the dashboard's view as a terminal table (pure, no I/O).
 */
import type { ActivationSummary } from './source.js';
import type { DashboardView } from './view.js';

const POOL_MARK: Readonly<Record<string, string>> = { harvest: 'H', allocation: 'A', 'self-sufficient': 'S' };

/** Bytes as the shortest of B, KiB, MiB, GiB with at most one decimal. */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = bytes;
  let i = 0;
  while (Math.abs(v) >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  const text = i === 0 || Number.isInteger(v) ? String(Math.round(v)) : v.toFixed(1);
  return `${text} ${units[i] ?? 'B'}`;
}

/** Columns padded to their widest cell; `right` columns (by index) are right-aligned. */
export function columns(rows: readonly (readonly string[])[], right: ReadonlySet<number> = new Set()): string[] {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return rows.map((row) =>
    row
      .map((cell, i) => (right.has(i) ? cell.padStart(widths[i] ?? 0) : i === row.length - 1 ? cell : cell.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd(),
  );
}

/** Docker's 64-hex ids shortened as `docker ps` does. */
function short(id: string): string {
  return /^[0-9a-f]{64}$/.test(id) ? id.slice(0, 12) : id;
}

function clock(ms: number): string {
  return new Date(ms).toISOString().slice(11, 19);
}

function median(values: number[]): number | undefined {
  if (values.length === 0) return undefined;
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[mid] : ((s[mid - 1] ?? 0) + (s[mid] ?? 0)) / 2;
}

export interface StatusOptions {
  /** How many recent activations to list. @default 10 */
  readonly recent?: number;
}

/** The whole picture: nodes → tenants → containers, loans, per-action figures, recent activations. */
export function renderStatus(view: DashboardView, activations: readonly ActivationSummary[], options: StatusOptions = {}): string {
  const out: string[] = [];
  const who = view.viewer.role === 'admin' ? 'operator (all tenants)' : `tenant ${view.viewer.tenant}`;
  out.push(`ephemera status · ${who} · state at ${clock(view.at)} UTC`);
  if (view.nodes.length === 0) out.push('', 'no nodes and no containers yet');
  for (const node of view.nodes) {
    const totals = node.memory === null ? '' : `  N_lim ${formatBytes(node.memory.limit)}  N_alloc ${formatBytes(node.memory.allocated)}  N_req ${formatBytes(node.memory.requested)}`;
    out.push('', `NODE ${node.name}  sharing ${node.sharing ? 'on' : 'off'}${totals}`);
    for (const tenant of node.tenants) {
      const t = tenant.memory === null ? '' : `  limit ${formatBytes(tenant.memory.limit)}  allocated ${formatBytes(tenant.memory.allocated)}  requested ${formatBytes(tenant.memory.requested)}`;
      out.push(`  TENANT ${tenant.tenant}${t}`);
      if (tenant.containers.length === 0) {
        out.push('    no containers');
        continue;
      }
      const rows = [
        ['CONTAINER', 'POOL', 'ACTION', 'QUOTA', 'GRANTED', 'USED', 'FILES IN MEMORY', 'EVICTIONS', 'FAST R/W', 'SLOW OPS', 'LENT', 'BORROWED'],
        ...tenant.containers.map((c) => [
          short(c.id),
          POOL_MARK[c.pool] ?? '?',
          c.action,
          formatBytes(c.initial),
          formatBytes(c.granted),
          formatBytes(c.usage),
          `${formatBytes(c.fileBytes)} (${c.files})`,
          String(c.evictions),
          `${c.fastReads}/${c.fastWrites}`,
          String(c.slowOps),
          c.lentBytes > 0 ? formatBytes(c.lentBytes) : '-',
          c.borrowedBytes > 0 ? formatBytes(c.borrowedBytes) : '-',
        ]),
      ];
      for (const line of columns(rows, new Set([3, 4, 5, 6, 7, 8, 9, 10, 11]))) out.push(`    ${line}`);
    }
  }
  out.push('', 'POOLS  H harvest · A allocation · S self-sufficient');

  out.push('', 'LOANS');
  if (view.loans.length === 0) out.push('  none');
  for (const l of view.loans) out.push(`  ${l.node}/${l.tenant}  ${short(l.from)} ── ${formatBytes(l.bytes)} ──▶ ${short(l.to)}`);

  const latencies = new Map<string, number[]>();
  for (const a of activations) {
    const key = `${a.tenant}/${a.action}`;
    const list = latencies.get(key) ?? [];
    latencies.set(key, list);
    list.push(a.durationMs);
  }
  out.push('', 'ACTIONS');
  if (view.actions.length === 0) out.push('  none');
  else {
    const rows = [
      ['TENANT', 'ACTION', 'CONTAINERS', 'FILE OPS FROM MEMORY', 'ACTIVATIONS', 'P50 LATENCY'],
      ...view.actions.map((a) => {
        const lat = latencies.get(`${a.tenant}/${a.action}`) ?? [];
        const p50 = median(lat);
        return [
          a.tenant,
          a.action,
          String(a.containers),
          a.fastShare === null ? '-' : `${(a.fastShare * 100).toFixed(1)}% (${a.fastOps} of ${a.fastOps + a.slowOps})`,
          String(lat.length),
          p50 === undefined ? '-' : `${Math.round(p50)} ms`,
        ];
      }),
    ];
    for (const line of columns(rows, new Set([2, 3, 4, 5]))) out.push(`  ${line}`);
  }

  const recent = activations.slice(0, options.recent ?? 10);
  out.push('', `RECENT ACTIVATIONS (${recent.length} of ${activations.length})`);
  if (recent.length === 0) out.push('  none');
  else {
    const rows = [
      ['START', 'TENANT', 'ACTION', 'ACTIVATION', 'STATUS', 'DURATION'],
      ...recent.map((a) => [clock(a.start), a.tenant, a.action, a.activationId, a.status, `${a.durationMs} ms`]),
    ];
    for (const line of columns(rows, new Set([5]))) out.push(`  ${line}`);
  }
  return `${out.join('\n')}\n`;
}
