/**
 * The dashboard page (runs in the browser). It draws what the server computed (view.ts) and keeps
 * it live from one EventSource; it never reloads. Charts are Chart.js (loaded by the page from the
 * controller as a global).
 */
import type { Chart as ChartClass, ChartConfiguration, Plugin } from 'chart.js';

import type { DashboardView, LoanView, TenantView, NodeView } from '../view.js';
import type { ActivationSummary, ClusterEvent } from '../source.js';

declare const Chart: typeof ChartClass;

/** Activations kept for the latency chart; the table shows the newest TABLE_ROWS. */
const KEEP_ACTIVATIONS = 1000;
const TABLE_ROWS = 100;
const KEEP_MOVES = 20;
const POOL_MARK: Readonly<Record<string, string>> = { harvest: 'H', allocation: 'A', 'self-sufficient': 'S' };
const COLORS = ['#3b82f6', '#f59e0b', '#10b981', '#ef4444', '#8b5cf6', '#06b6d4', '#84cc16', '#ec4899'];

type MoveEvent = Extract<ClusterEvent, { type: 'move' }>;

/** A loan between two bars of one tenant's chart, by their indexes. */
interface LoanMark {
  readonly from: number;
  readonly to: number;
  readonly bytes: number;
}

/**
 * A Chart.js plugin that draws the tenant's current loans between its containers' bars: a curve
 * from the lender's row to the borrower's, an arrowhead at the borrower, the bytes beside it. It
 * reads `state.loans` at each draw, so an update of the chart redraws the loans of the new view.
 */
function loanArrows(state: { loans: readonly LoanMark[] }): Plugin<'bar'> {
  return {
    id: 'ephemeraLoans',
    afterDatasetsDraw(chart) {
      const y = chart.scales['y'];
      if (y === undefined || state.loans.length === 0) return;
      const { ctx, chartArea } = chart;
      ctx.save();
      ctx.strokeStyle = '#1d4ed8';
      ctx.fillStyle = '#1d4ed8';
      ctx.lineWidth = 2;
      ctx.font = '11px sans-serif';
      ctx.textAlign = 'right';
      state.loans.forEach((loan, i) => {
        const y1 = y.getPixelForValue(loan.from);
        const y2 = y.getPixelForValue(loan.to);
        const x = chartArea.right - 6 - i * 16;
        const bulge = Math.min(60, 16 + Math.abs(y2 - y1) / 2);
        ctx.beginPath();
        ctx.moveTo(x, y1);
        ctx.bezierCurveTo(x - bulge, y1, x - bulge, y2, x - 6, y2);
        ctx.stroke();
        ctx.beginPath();
        ctx.moveTo(x, y2);
        ctx.lineTo(x - 9, y2 - 5);
        ctx.lineTo(x - 9, y2 + 5);
        ctx.closePath();
        ctx.fill();
        ctx.fillText(`lends ${mib(loan.bytes)}`, x - bulge * 0.75 - 4, (y1 + y2) / 2 + 4);
      });
      ctx.restore();
    },
  };
}

function byId(id: string): HTMLElement {
  const found = document.getElementById(id);
  if (found === null) throw new Error(`dashboard page: #${id} is missing`);
  return found;
}

function canvas(id: string): HTMLCanvasElement {
  const found = byId(id);
  if (!(found instanceof HTMLCanvasElement)) throw new Error(`dashboard page: #${id} is not a canvas`);
  return found;
}

function el<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Readonly<Record<string, string>> = {}, ...children: (Node | string)[]): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  node.append(...children);
  return node;
}

function mib(bytes: number): string {
  return `${(bytes / 1048576).toFixed(bytes >= 1048576 * 100 ? 0 : 1)} MiB`;
}

/** Docker's 64-hex ids shortened as `docker ps` does; the full id stays in data attributes and titles. */
function short(id: string): string {
  return /^[0-9a-f]{64}$/.test(id) ? id.slice(0, 12) : id;
}

function clock(ms: number): string {
  return new Date(ms).toLocaleTimeString([], { hour12: false });
}

function annotationText(a: ActivationSummary): string {
  if (a.ephemera === undefined) return '';
  return Object.entries(a.ephemera)
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
    .join(' ');
}

class Page {
  readonly #nodes = byId('nodes');
  readonly #loans = byId('loans');
  readonly #moves = byId('moves');
  readonly #rows = Page.#tbody();
  readonly #tenantCharts = new Map<string, { chart: ChartClass; box: HTMLDivElement; section: HTMLElement; state: { loans: readonly LoanMark[] } }>();
  #activations: ActivationSummary[] = [];
  #latency: ChartClass | undefined;
  #fastShare: ChartClass | undefined;
  #latencyDirty = false;
  #gotView = false;
  #gotActivations = false;

  static #tbody(): HTMLTableSectionElement {
    const table = byId('activations');
    if (!(table instanceof HTMLTableElement)) throw new Error('dashboard page: #activations is not a table');
    return table.tBodies[0] ?? table.createTBody();
  }

  view(view: DashboardView): void {
    byId('viewer').textContent = view.viewer.role === 'admin' ? 'operator (all tenants)' : `tenant ${view.viewer.tenant}`;
    byId('updated').textContent = `state at ${clock(view.at)}`;
    this.#drawNodes(view.nodes, view.loans);
    this.#drawLoans(view);
    this.#drawFastShare(view);
    this.#gotView = true;
    this.#maybeRendered();
  }

  activations(list: readonly ActivationSummary[]): void {
    this.#activations = list.slice(0, KEEP_ACTIVATIONS);
    this.#rows.replaceChildren(...this.#activations.slice(0, TABLE_ROWS).map((a) => this.#row(a)));
    this.#drawLatency();
    this.#gotActivations = true;
    this.#maybeRendered();
  }

  activation(a: ActivationSummary): void {
    this.#activations.unshift(a);
    if (this.#activations.length > KEEP_ACTIVATIONS) this.#activations.length = KEEP_ACTIVATIONS;
    this.#rows.prepend(this.#row(a));
    while (this.#rows.rows.length > TABLE_ROWS) this.#rows.deleteRow(-1);
    this.#scheduleLatency();
  }

  move(m: MoveEvent): void {
    const item = el('li', { 'data-move': String(m.seq) }, `${clock(m.at)} ${m.reason.padEnd(9)} ${short(m.from)} `, el('span', { class: 'arrow' }, '→'), ` ${short(m.to)} ${mib(m.bytes)} (${(m.durationSeconds * 1000).toFixed(1)} ms)`);
    document.getElementById('no-moves')?.remove();
    this.#moves.prepend(item);
    while (this.#moves.children.length > KEEP_MOVES) this.#moves.lastElementChild?.remove();
  }

  #maybeRendered(): void {
    if (!this.#gotView || !this.#gotActivations || document.body.dataset['rendered'] === '1') return;
    document.body.dataset['rendered'] = '1';
    performance.mark('ephemera-first-render');
  }

  #row(a: ActivationSummary): HTMLTableRowElement {
    const ok = a.status === 'success';
    return el(
      'tr',
      { 'data-activation': a.activationId },
      el('td', {}, clock(a.start)),
      el('td', {}, a.action),
      el('td', { class: 'annotation' }, a.activationId),
      el('td', { class: ok ? 'status-success' : 'status-error' }, a.status),
      el('td', { class: 'num' }, `${a.durationMs} ms`),
      el('td', { class: 'annotation' }, annotationText(a)),
    );
  }

  #drawNodes(nodes: readonly NodeView[], loans: readonly LoanView[]): void {
    const seen = new Set<string>();
    const sections: HTMLElement[] = [];
    for (const node of nodes) {
      const totals = node.memory === null ? '' : ` · N_lim ${mib(node.memory.limit)} · N_alloc ${mib(node.memory.allocated)} · N_req ${mib(node.memory.requested)}`;
      const section = el('section', { class: 'node', 'data-node': node.name }, el('h3', {}, `node ${node.name}`, el('span', { class: 'totals' }, `${node.sharing ? ' · sharing on' : ' · sharing off'}${totals}`)));
      for (const tenant of node.tenants) {
        const key = `${node.name}\u0000${tenant.tenant}`;
        seen.add(key);
        section.append(this.#tenant(key, tenant, loans.filter((l) => l.node === node.name && l.tenant === tenant.tenant)));
      }
      sections.push(section);
    }
    for (const [key, entry] of this.#tenantCharts) {
      if (!seen.has(key)) {
        entry.chart.destroy();
        this.#tenantCharts.delete(key);
      }
    }
    this.#nodes.replaceChildren(...sections);
  }

  #tenant(key: string, tenant: TenantView, loans: readonly LoanView[]): HTMLElement {
    const row = new Map(tenant.containers.map((c, i) => [c.id, i]));
    const marks: LoanMark[] = [];
    for (const l of loans) {
      const from = row.get(l.from);
      const to = row.get(l.to);
      if (from !== undefined && to !== undefined) marks.push({ from, to, bytes: l.bytes });
    }
    const labels = tenant.containers.map((c) => `${short(c.id)} [${POOL_MARK[c.pool] ?? '?'}] ${c.action}`);
    const mibOf = (f: (c: TenantView['containers'][number]) => number): number[] => tenant.containers.map((c) => f(c) / 1048576);
    const datasets = [
      { label: 'initial quota', data: mibOf((c) => c.initial), backgroundColor: '#9aa5b1' },
      { label: 'granted limit', data: mibOf((c) => c.granted), backgroundColor: '#3b82f6' },
      { label: 'memory used', data: mibOf((c) => c.usage), backgroundColor: '#f59e0b' },
      { label: 'files in memory', data: mibOf((c) => c.fileBytes), backgroundColor: '#10b981' },
    ];
    const height = `${40 + tenant.containers.length * 44}px`;
    let entry = this.#tenantCharts.get(key);
    if (entry === undefined) {
      const chartCanvas = el('canvas');
      const box = el('div', { class: 'chartbox' }, chartCanvas);
      box.style.height = height;
      const section = el('div', { class: 'tenant', 'data-tenant': tenant.tenant });
      const state = { loans: marks };
      const config: ChartConfiguration<'bar', number[], string> = {
        type: 'bar',
        data: { labels, datasets },
        plugins: [loanArrows(state)],
        options: {
          indexAxis: 'y',
          animation: false,
          responsive: true,
          maintainAspectRatio: false,
          plugins: { legend: { display: false } },
          // Room on the right for the loans' arrows.
          scales: { x: { title: { display: true, text: 'MiB' }, beginAtZero: true, grace: '30%' } },
        },
      };
      entry = { chart: new Chart(chartCanvas, config), box, section, state };
      this.#tenantCharts.set(key, entry);
    } else {
      entry.box.style.height = height;
      entry.state.loans = marks;
      entry.chart.data.labels = labels;
      entry.chart.data.datasets = datasets;
      entry.chart.update('none');
    }
    const memory = tenant.memory === null ? '' : ` · limit ${mib(tenant.memory.limit)} · allocated ${mib(tenant.memory.allocated)} · requested ${mib(tenant.memory.requested)}`;
    const table = el(
      'table',
      { class: 'containers' },
      el('thead', {}, el('tr', {}, ...['container', 'pool', 'action', 'quota', 'granted', 'used', 'files in memory', 'evictions', 'fast r/w', 'slow ops', 'lent', 'borrowed'].map((h) => el('th', {}, h)))),
      el(
        'tbody',
        {},
        ...tenant.containers.map((c) =>
          el(
            'tr',
            { 'data-container': c.id, 'data-pool': c.pool },
            el('td', { title: c.id }, short(c.id)),
            el('td', {}, el('b', { class: `pool ${c.pool}`, title: c.pool }, POOL_MARK[c.pool] ?? '?'), ` ${c.pool}`),
            el('td', {}, c.action),
            el('td', { class: 'num' }, mib(c.initial)),
            el('td', { class: 'num' }, mib(c.granted)),
            el('td', { class: 'num' }, mib(c.usage)),
            el('td', { class: 'num' }, `${mib(c.fileBytes)} (${c.files})`),
            el('td', { class: 'num' }, String(c.evictions)),
            el('td', { class: 'num' }, `${c.fastReads}/${c.fastWrites}`),
            el('td', { class: 'num' }, String(c.slowOps)),
            el('td', { class: 'num' }, c.lentBytes > 0 ? mib(c.lentBytes) : ''),
            el('td', { class: 'num' }, c.borrowedBytes > 0 ? mib(c.borrowedBytes) : ''),
          ),
        ),
      ),
    );
    entry.section.replaceChildren(el('h4', {}, `tenant ${tenant.tenant}`, el('span', { class: 'totals' }, memory)), entry.box, table);
    return entry.section;
  }

  #drawLoans(view: DashboardView): void {
    const items = view.loans.map((l) =>
      el(
        'li',
        { 'data-loan': '', 'data-from': l.from, 'data-to': l.to, 'data-bytes': String(l.bytes) },
        `${l.node}/${l.tenant}: ${short(l.from)} `,
        el('span', { class: 'arrow' }, `══ ${mib(l.bytes)} ══▶`),
        ` ${short(l.to)}`,
      ),
    );
    this.#loans.replaceChildren(...(items.length > 0 ? items : [el('li', {}, 'no memory is lent right now')]));
  }

  #drawFastShare(view: DashboardView): void {
    // The platform's actions are already qualified (`tenant/name`), as its containers name them.
    const labels = view.actions.map((a) => (view.viewer.role === 'admin' && !a.action.startsWith(`${a.tenant}/`) ? `${a.tenant}/${a.action}` : a.action));
    const data = view.actions.map((a) => (a.fastShare === null ? 0 : Math.round(a.fastShare * 1000) / 10));
    if (this.#fastShare === undefined) {
      const config: ChartConfiguration<'bar', number[], string> = {
        type: 'bar',
        data: { labels, datasets: [{ label: '% of file operations served from memory', data, backgroundColor: '#10b981' }] },
        options: { animation: false, responsive: true, maintainAspectRatio: false, scales: { y: { min: 0, max: 100, title: { display: true, text: '%' } } } },
      };
      this.#fastShare = new Chart(canvas('fastshare'), config);
    } else {
      this.#fastShare.data.labels = labels;
      const first = this.#fastShare.data.datasets[0];
      if (first !== undefined) first.data = data;
      this.#fastShare.update('none');
    }
  }

  #scheduleLatency(): void {
    if (this.#latencyDirty) return;
    this.#latencyDirty = true;
    requestAnimationFrame(() => {
      this.#latencyDirty = false;
      this.#drawLatency();
    });
  }

  #drawLatency(): void {
    const series = new Map<string, { x: number; y: number }[]>();
    let first = Infinity;
    let last = -Infinity;
    for (let i = this.#activations.length - 1; i >= 0; i--) {
      const a = this.#activations[i];
      if (a === undefined) continue;
      first = Math.min(first, a.start);
      last = Math.max(last, a.start);
      const name = a.action;
      const points = series.get(name) ?? [];
      series.set(name, points);
      points.push({ x: a.start, y: a.durationMs });
    }
    const datasets = [...series.entries()]
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([label, data], i) => ({ label, data, borderColor: COLORS[i % COLORS.length] ?? '#3b82f6', backgroundColor: COLORS[i % COLORS.length] ?? '#3b82f6', pointRadius: 2, borderWidth: 1 }));
    // A few points close together would get an axis of hours: show at least a minute.
    const pad = Math.max(30_000 - (last - first) / 2, (last - first) * 0.02);
    const range = Number.isFinite(first) ? { min: first - pad, max: last + pad } : {};
    if (this.#latency === undefined) {
      const config: ChartConfiguration<'line', { x: number; y: number }[]> = {
        type: 'line',
        data: { datasets },
        options: {
          animation: false,
          responsive: true,
          maintainAspectRatio: false,
          parsing: false,
          scales: {
            x: { type: 'linear', ...range, ticks: { callback: (v) => clock(Number(v)) } },
            y: { beginAtZero: true, title: { display: true, text: 'ms' } },
          },
        },
      };
      this.#latency = new Chart(canvas('latency'), config);
    } else {
      this.#latency.data.datasets = datasets;
      const x = this.#latency.options.scales?.['x'];
      if (x !== undefined) Object.assign(x, range);
      this.#latency.update('none');
    }
  }
}

function showProblem(text: string | undefined): void {
  const p = byId('problem');
  p.hidden = text === undefined;
  p.textContent = text ?? '';
}

function connect(page: Page): void {
  const conn = byId('conn');
  const source = new EventSource('/dashboard/events');
  const on = (event: string, handle: (data: unknown) => void): void => {
    source.addEventListener(event, (e) => {
      handle(JSON.parse((e as MessageEvent<string>).data));
    });
  };
  source.onopen = () => {
    conn.textContent = 'live';
    conn.className = 'conn live';
  };
  source.onerror = () => {
    conn.textContent = source.readyState === EventSource.CLOSED ? 'disconnected' : 'reconnecting';
    conn.className = 'conn down';
    // A closed stream may mean the session ended: ask, and sign in again if so.
    if (source.readyState === EventSource.CLOSED) void start(page);
  };
  // The server is the other half of this protocol (hub.ts): its messages are trusted as typed.
  on('view', (v) => {
    showProblem(undefined);
    page.view(v as DashboardView);
  });
  on('activations', (list) => page.activations(list as ActivationSummary[]));
  on('activation', (a) => page.activation(a as ActivationSummary));
  on('move', (m) => page.move(m as MoveEvent));
  on('problem', (p) => showProblem((p as { error: string }).error));
}

async function start(page: Page): Promise<void> {
  const res = await fetch('/dashboard/session', { credentials: 'same-origin' });
  if (res.ok) {
    byId('login').hidden = true;
    byId('main').hidden = false;
    byId('logout').hidden = false;
    connect(page);
    return;
  }
  byId('main').hidden = true;
  byId('login').hidden = false;
}

function setup(): void {
  const page = new Page();
  byId('login').addEventListener('submit', (e) => {
    e.preventDefault();
    const input = byId('key');
    if (!(input instanceof HTMLInputElement)) return;
    const key = input.value.trim();
    void (async () => {
      // The key goes to the server once; the browser keeps only the HttpOnly session cookie.
      const res = await fetch('/dashboard/session', { method: 'POST', credentials: 'same-origin', headers: { authorization: `Basic ${btoa(key)}` } });
      input.value = '';
      if (!res.ok) {
        const body = (await res.json().catch(() => ({ error: res.statusText }))) as { error?: string };
        byId('login-error').textContent = body.error ?? `sign-in failed (${res.status})`;
        return;
      }
      byId('login-error').textContent = '';
      await start(page);
    })();
  });
  byId('logout').addEventListener('click', () => {
    void fetch('/dashboard/session', { method: 'DELETE', credentials: 'same-origin' }).then(() => {
      location.replace('/dashboard');
    });
  });
  void start(page);
}

setup();
