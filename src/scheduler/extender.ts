/**
 * Algorithm 1 as a kube-scheduler extender: pure handlers for `filter` and `prioritize`, speaking
 * `k8s.io/kube-scheduler/extender/v1` (the HTTP shell is `extender-routes.ts`).
 *
 * Wire format. The extender types have no JSON tags, so their keys are the Go field names (`Pod`,
 * `Nodes`, `NodeNames`, `FailedNodes`, `Host`, `Score`...); Go's decoder matches keys without regard
 * to case, and so do we on input. The `v1.Pod` and `v1.NodeList` inside are Kubernetes API objects
 * with their usual lower-case JSON keys (`metadata`, `items`...).
 *
 * Stateless: kube-scheduler combines our scores with its own plugins' and may bind the pod
 * elsewhere, so neither verb reserves anything; the node agent counts the pod when it starts.
 *
 * The pod's profile comes from its annotations ({@link POD_ANNOTATIONS}); `T_lim` from its memory
 * limits. A pod without `ephemera.dev/profile` is not ours: every node passes and scores 0.
 */
import { EphemeraError } from '../core/errors.js';
import { freeOf, gapOf, type Figures, type TaskProfile } from './algorithm.js';
import { estimateWith } from './estimator.js';
import { decodeProfile, profileMem, shown } from './profile.js';

/** A node's figures as the extender reads them (node-wide for the filter, per tenant for the score). */
export interface NodeFigures {
  readonly lim: number;
  readonly node: Figures;
  readonly tenants: ReadonlyMap<string, Figures>;
}

/** Where the extender reads node state: the node agents' reports (the `Scheduler` is one). */
export interface NodeStateSource {
  /** The named node's figures, or undefined when no agent reports it. */
  figures(node: string): NodeFigures | undefined;
}

/** The pod annotations the extender reads. */
export const POD_ANNOTATIONS = {
  /** The action's profile, the same JSON as the `ephemera.profile` action annotation (required for Ephemera pods). */
  profile: 'ephemera.dev/profile',
  /** The tenant whose figures the score uses; default: the pod's namespace. */
  tenant: 'ephemera.dev/tenant',
  /** `T_lim` in bytes or as a Kubernetes quantity; default: the sum of the containers' memory limits. */
  limit: 'ephemera.dev/memory-limit',
  /** The invocation's input size in bytes, for a profile with an input-sensitive `fit`. */
  inputBytes: 'ephemera.dev/input-bytes',
} as const;

/** `MaxExtenderPriority` in extender/v1. */
export const MAX_EXTENDER_PRIORITY = 10;

export type FailedNodesMap = Record<string, string>;

/** A `v1.NodeList` as it travels: we only read `items[].metadata.name` and echo the objects back. */
export interface NodeList {
  readonly items: readonly Record<string, unknown>[] | null;
  readonly [key: string]: unknown;
}

export interface ExtenderFilterResult {
  Nodes: NodeList | null;
  NodeNames: string[] | null;
  FailedNodes: FailedNodesMap;
  FailedAndUnresolvableNodes: FailedNodesMap;
  Error: string;
}

export interface HostPriority {
  Host: string;
  Score: number;
}

/** What a handler answers: the HTTP status and the JSON body. */
export interface ExtenderResponse<B> {
  readonly status: 200 | 400;
  readonly body: B;
}

/** The request, decoded. */
export interface ExtenderRequest {
  readonly podName: string;
  /** The task, or null when the pod is not Ephemera's. */
  readonly task: TaskProfile | null;
  readonly tenant: string;
  /** The candidate node names, in order. */
  readonly names: readonly string[];
  /** Set when the request came as a NodeList (not node-cache-capable): the objects by name. */
  readonly nodeList: NodeList | null;
}

function bad(message: string): EphemeraError {
  return new EphemeraError('EPH_EXTENDER_BAD_REQUEST', message);
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The value under `key`, matched without regard to case as Go's encoding/json does (exact match first). */
function goField(obj: Record<string, unknown>, key: string): unknown {
  if (Object.hasOwn(obj, key)) return obj[key];
  const lower = key.toLowerCase();
  for (const k of Object.keys(obj)) if (k.toLowerCase() === lower) return obj[k];
  return undefined;
}

const QUANTITY_RE = /^([+-]?(?:\d+\.?\d*|\.\d+))(Ki|Mi|Gi|Ti|Pi|Ei|[eE][+-]?\d+|[numkMGTPE])?$/;
const SUFFIX: Readonly<Record<string, number>> = {
  Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60,
  n: 1e-9, u: 1e-6, m: 1e-3, '': 1, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18,
};

/** A Kubernetes resource quantity (`256Mi`, `1G`, `1e9`, `134217728`) as whole bytes, rounded up like `Quantity.Value()`. */
export function parseQuantity(text: string, what: string): number {
  const m = QUANTITY_RE.exec(text.trim());
  const suffix = m?.[2] ?? '';
  const mult = /^[eE][+-]?\d+$/.test(suffix) ? 10 ** Number(suffix.slice(1)) : SUFFIX[suffix];
  if (m === null || mult === undefined) throw bad(`${what}: ${JSON.stringify(text)} is not a Kubernetes quantity; write e.g. 256Mi, 1Gi, 500M or 134217728`);
  const bytes = Math.ceil(Number(m[1]) * mult);
  if (!Number.isSafeInteger(bytes) || bytes < 0) throw bad(`${what}: ${JSON.stringify(text)} is out of range for a memory size in bytes`);
  return bytes;
}

function memoryOf(container: unknown, podName: string, i: number): number {
  const c = isObject(container) ? container : {};
  const name = typeof c['name'] === 'string' ? c['name'] : `#${i}`;
  const res = isObject(c['resources']) ? c['resources'] : {};
  for (const field of ['limits', 'requests'] as const) {
    const list = res[field];
    if (isObject(list) && typeof list['memory'] === 'string') return parseQuantity(list['memory'], `pod ${podName} container ${name} resources.${field}.memory`);
    if (isObject(list) && typeof list['memory'] === 'number') return parseQuantity(String(list['memory']), `pod ${podName} container ${name} resources.${field}.memory`);
  }
  throw bad(`pod ${podName} has ${POD_ANNOTATIONS.profile} but container ${name} has no memory limit (or request); give every container resources.limits.memory, or set ${POD_ANNOTATIONS.limit}`);
}

function taskOfPod(podName: string, meta: Record<string, unknown>, spec: Record<string, unknown>): TaskProfile | null {
  const ann = isObject(meta['annotations']) ? meta['annotations'] : {};
  const raw = ann[POD_ANNOTATIONS.profile];
  if (raw === undefined) return null;
  if (typeof raw !== 'string') throw bad(`pod ${podName}: annotation ${POD_ANNOTATIONS.profile} must be a string`);
  let profile;
  try {
    profile = decodeProfile(raw);
  } catch (e) {
    throw bad(`pod ${podName}: annotation ${POD_ANNOTATIONS.profile}: ${e instanceof Error ? e.message : String(e)}`);
  }
  const limitText = ann[POD_ANNOTATIONS.limit];
  let limit: number;
  if (typeof limitText === 'string') limit = parseQuantity(limitText, `pod ${podName} annotation ${POD_ANNOTATIONS.limit}`);
  else {
    const containers = Array.isArray(spec['containers']) ? (spec['containers'] as unknown[]) : [];
    if (containers.length === 0) throw bad(`pod ${podName} has no spec.containers`);
    limit = containers.reduce<number>((sum, c, i) => sum + memoryOf(c, podName, i), 0);
  }
  if (limit <= 0) throw bad(`pod ${podName}: memory limit (T_lim) is 0; give a positive limit`);
  let mem = profileMem(profile);
  const inputText = ann[POD_ANNOTATIONS.inputBytes];
  if (profile.fit !== undefined && typeof inputText === 'string') {
    const x = Number(inputText);
    if (!Number.isSafeInteger(x) || x < 0) throw bad(`pod ${podName}: annotation ${POD_ANNOTATIONS.inputBytes} must be whole bytes, got ${JSON.stringify(inputText)}`);
    mem = estimateWith(profile.fit, x, mem);
  }
  return { limit, mem };
}

/**
 * Decodes `ExtenderArgs` JSON (already parsed).
 * @throws {EphemeraError} `EPH_EXTENDER_BAD_REQUEST` saying what is wrong
 */
export function decodeExtenderArgs(body: unknown): ExtenderRequest {
  if (!isObject(body)) throw bad(`expected ExtenderArgs, a JSON object with Pod and Nodes or NodeNames, got ${shown(body)}`);
  const pod = goField(body, 'Pod');
  if (!isObject(pod)) throw bad('ExtenderArgs.Pod is missing or not an object (a v1.Pod)');
  const meta = isObject(pod['metadata']) ? pod['metadata'] : {};
  const spec = isObject(pod['spec']) ? pod['spec'] : {};
  const namespace = typeof meta['namespace'] === 'string' && meta['namespace'] !== '' ? meta['namespace'] : 'default';
  const podName = `${namespace}/${typeof meta['name'] === 'string' ? meta['name'] : '?'}`;
  const ann = isObject(meta['annotations']) ? meta['annotations'] : {};
  const tenantAnn = ann[POD_ANNOTATIONS.tenant];
  const tenant = typeof tenantAnn === 'string' && tenantAnn !== '' ? tenantAnn : namespace;

  const nodes = goField(body, 'Nodes');
  const nodeNames = goField(body, 'NodeNames');
  let names: string[];
  let nodeList: NodeList | null = null;
  if (nodeNames !== undefined && nodeNames !== null) {
    if (!Array.isArray(nodeNames) || !nodeNames.every((n) => typeof n === 'string')) throw bad('ExtenderArgs.NodeNames must be a list of node names');
    names = nodeNames;
  } else if (nodes !== undefined && nodes !== null) {
    if (!isObject(nodes)) throw bad('ExtenderArgs.Nodes must be a v1.NodeList object');
    const items = nodes['items'] ?? null;
    if (items !== null && !Array.isArray(items)) throw bad('ExtenderArgs.Nodes.items must be a list of v1.Node');
    const list = (items ?? []) as unknown[];
    names = list.map((n, i) => {
      const name = isObject(n) && isObject(n['metadata']) ? n['metadata']['name'] : undefined;
      if (typeof name !== 'string' || name === '') throw bad(`ExtenderArgs.Nodes.items[${i}] has no metadata.name`);
      return name;
    });
    nodeList = { ...nodes, items: list as Record<string, unknown>[] };
  } else {
    throw bad('ExtenderArgs has neither Nodes (a v1.NodeList) nor NodeNames; check nodeCacheCapable in the scheduler configuration');
  }
  let task: TaskProfile | null;
  try {
    task = taskOfPod(podName, meta, spec);
  } catch (e) {
    // A well-formed request about a pod we cannot schedule: see extenderFilter.
    if (e instanceof EphemeraError) throw new EphemeraError(e.code, e.message, { detail: { scope: 'pod' } });
    throw e;
  }
  return { podName, task, tenant, names, nodeList };
}

const MiB = 1024 * 1024;
const mib = (b: number): string => `${(b / MiB).toFixed(1)} MiB`;

function emptyFilterResult(): ExtenderFilterResult {
  return { Nodes: null, NodeNames: null, FailedNodes: {}, FailedAndUnresolvableNodes: {}, Error: '' };
}

/** `POST /extender/filter`: the nodes where the pod's `T_lim` fits (`N_alloc + T_lim ≤ N_lim`). */
export function extenderFilter(body: unknown, source: NodeStateSource): ExtenderResponse<ExtenderFilterResult> {
  let req: ExtenderRequest;
  try {
    req = decodeExtenderArgs(body);
  } catch (e) {
    // A malformed request is a 400. A well-formed one whose pod has bad annotations or limits is
    // answered 200 with Error set: kube-scheduler drops the body of any non-200 answer and logs only
    // the status, but it reports a filter result's Error on the pod, where its owner sees it.
    const status = e instanceof EphemeraError && e.detail['scope'] === 'pod' ? 200 : 400;
    return { status, body: { ...emptyFilterResult(), Error: e instanceof Error ? e.message : String(e) } };
  }
  const result = emptyFilterResult();
  const passed: string[] = [];
  const task = req.task;
  for (const name of req.names) {
    if (task === null) {
      passed.push(name);
      continue;
    }
    const f = source.figures(name);
    if (f === undefined) {
      result.FailedAndUnresolvableNodes[name] = `no Ephemera node agent reports node ${name}; run \`ephemera node\` there`;
      continue;
    }
    const free = freeOf(f.lim, f.node);
    if (f.node.alloc + task.limit <= f.lim) passed.push(name);
    else result.FailedNodes[name] = `pod ${req.podName} needs ${mib(task.limit)} (T_lim); node ${name} has ${mib(free)} free of ${mib(f.lim)}`;
  }
  if (req.nodeList !== null) {
    const keep = new Set(passed);
    const items = (req.nodeList.items ?? []).filter((n) => {
      const meta = n['metadata'];
      return isObject(meta) && typeof meta['name'] === 'string' && keep.has(meta['name']);
    });
    result.Nodes = { ...req.nodeList, items };
  } else result.NodeNames = passed;
  return { status: 200, body: result };
}

/**
 * `POST /extender/prioritize`: Algorithm 1's score `−|N_req + T_mem − N_alloc − T_lim|` (tenant
 * figures), scaled to 0..10 over the candidates: the best 10, the worst 0 (all 10 when equal). A
 * node where the pod does not fit or that no agent reports scores 0.
 */
export function extenderPrioritize(body: unknown, source: NodeStateSource): ExtenderResponse<HostPriority[] | { Error: string }> {
  let req: ExtenderRequest;
  try {
    req = decodeExtenderArgs(body);
  } catch (e) {
    return { status: 400, body: { Error: e instanceof Error ? e.message : String(e) } };
  }
  const task = req.task;
  if (task === null) return { status: 200, body: req.names.map((Host) => ({ Host, Score: 0 })) };
  const c = task.mem - task.limit;
  const dist = req.names.map((name) => {
    const f = source.figures(name);
    if (f === undefined || f.node.alloc + task.limit > f.lim) return undefined;
    return Math.abs(gapOf(f.tenants.get(req.tenant) ?? { alloc: 0, req: 0 }) - c);
  });
  const known = dist.filter((d): d is number => d !== undefined);
  const best = Math.min(...known);
  const worst = Math.max(...known);
  const scores = req.names.map((Host, i) => {
    const d = dist[i];
    if (d === undefined) return { Host, Score: 0 };
    const Score = worst === best ? MAX_EXTENDER_PRIORITY : Math.round((MAX_EXTENDER_PRIORITY * (worst - d)) / (worst - best));
    return { Host, Score };
  });
  return { status: 200, body: scores };
}
