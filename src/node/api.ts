/**
 * The node agent's local API, version 1: the shapes that travel over `<state-dir>/node.sock`
 * (HTTP/1.1, JSON) between `ephemera node` and its callers (the platform, the profiler, the
 * benchmarks). Types only, plus the JSON schemas the server checks requests against at the edge.
 * docs/PROTOCOL.md ("Node agent API") is the prose version of this file.
 */
import type { PoolName, SharingScope, Usage } from '../manager/types.js';

export const NODE_API_VERSION = 1;
/** Every route lives under this prefix. */
export const API_PREFIX = '/v1';

/** Memory figures of Algorithm 1, in bytes. */
export interface MemoryFigures {
  /** N_lim (node) or the sum of the tenant's initial quotas (tenant). */
  readonly limit: number;
  /** N_alloc: the sum of the limits in force now. */
  readonly allocated: number;
  /** N_req: the sum of T_mem (profile, or the quota when there is none) of the containers. */
  readonly requested: number;
}

export interface NodeInfo {
  readonly version: number;
  readonly node: string;
  readonly sharing: SharingScope;
  readonly cgroupVersion: 1 | 2;
  readonly memory: MemoryFigures;
  readonly tenants: Readonly<Record<string, MemoryFigures>>;
}

export interface CreateContainerRequest {
  readonly tenant: string;
  readonly function: string;
  readonly workflow?: string;
  /** @default the function image the agent was started with */
  readonly image?: string;
  readonly memoryBytes: number;
  readonly cpus?: number;
  readonly env?: Readonly<Record<string, string>>;
  readonly labels?: Readonly<Record<string, string>>;
  readonly profile?: Usage;
}

export interface ContainerCreated {
  readonly id: string;
  readonly tenant: string;
  readonly function: string;
  readonly memoryBytes: number;
  readonly createdMs: number;
}

/** OpenWhisk's `/init` body, forwarded as it is. */
export interface InitRequest {
  readonly value: {
    readonly name?: string;
    readonly main?: string;
    readonly code: string;
    readonly binary?: boolean;
    readonly env?: Readonly<Record<string, string>>;
  };
}

/** What the action runtime answered. */
export interface ActionReply {
  readonly statusCode: number;
  readonly body: unknown;
}

/** OpenWhisk's `/run` body plus how long the agent lets it run. */
export interface RunRequest {
  readonly value: unknown;
  readonly namespace?: string;
  readonly action_name?: string;
  readonly action_version?: string;
  readonly activation_id?: string;
  readonly transaction_id?: string;
  readonly deadline?: string;
  /** @default 60000 (OpenWhisk's default action timeout) */
  readonly timeoutMs?: number;
}

export interface RunStats {
  readonly fast_reads: number;
  readonly fast_writes: number;
  readonly slow_ops: number;
  readonly evictions: number;
  readonly bytes_in_memory_peak: number;
  readonly ownPeakBytes?: number;
  readonly filePeakBytes?: number;
  /**
   * Where the peaks come from: `daemon`, the run's own window of the daemon's `peaks`;
   * `counters`, a daemon without `peaks` (its counters before and after and the cgroup's peak).
   */
  readonly peaks?: 'daemon' | 'counters';
}

export interface RunReply extends ActionReply {
  /** Each line as OpenWhisk records it: `<ISO time> stdout|stderr: <text>`. */
  readonly logs: readonly string[];
  readonly durationMs: number;
  readonly ephemera: {
    /** The container's pool when the invocation started. */
    readonly pool: PoolName;
    /** T_lim. */
    readonly initialBytes: number;
    /** The highest limit it ran under during the invocation. */
    readonly grantedBytes: number;
    readonly node: string;
    readonly stats: RunStats;
  };
  /** The run outlived `timeoutMs`: the container was removed (as OpenWhisk's invoker does). */
  readonly timedOut?: true;
  /** The kernel's OOM killer struck inside the container during the run. */
  readonly oom?: true;
}

export interface Loan {
  readonly id: string;
  readonly bytes: number;
}

export interface ContainerView {
  readonly id: string;
  readonly name: string;
  readonly tenant: string;
  readonly function: string;
  readonly workflow?: string;
  /** Created by this agent (`created`) or registered from outside (`registered`). */
  readonly origin: 'created' | 'registered';
  readonly pool: PoolName;
  readonly running: boolean;
  readonly initialBytes: number;
  /** The limit in force (the cgroup file). */
  readonly grantedBytes: number;
  /** cgroup usage now. */
  readonly usageBytes: number;
  readonly filesInMemory: number;
  readonly fileBytesInMemory: number;
  readonly lentTo: readonly Loan[];
  readonly borrowedFrom: readonly Loan[];
}

export interface RegisterRequest {
  readonly tenant: string;
  readonly function: string;
  readonly workflow?: string;
  readonly memoryBytes: number;
  readonly profile?: Usage;
  /** The container's ephemerad control socket, as this host sees it. */
  readonly controlSocket: string;
}

export interface InvocationEndRequest {
  /** What the invocation used; @default what the agent measures (daemon stats, cgroup peak). */
  readonly used?: Usage;
}

/** One memory move as the agent carried it out (an invocation event's answer). */
export interface MoveReport {
  readonly from: string | null;
  readonly to: string | null;
  readonly bytes: number;
  readonly reason: string;
  readonly durationUs: number;
}

/** A move of the Manager's that the agent did not carry out (nothing of it was applied). */
export interface RefusedMoveReport {
  readonly move: { readonly from: string | null; readonly to: string | null; readonly bytes: number; readonly reason: string };
  /** `EPH_NODE_CROSS_TENANT` or `EPH_NODE_MOVE_FAILED`. */
  readonly code: string;
  readonly message: string;
}

export interface EventReply {
  readonly moves: readonly MoveReport[];
  readonly refused: readonly RefusedMoveReport[];
}

/** Something that happened on the node (`GET /v1/events`), without its number and time. */
export type NodeEventBody =
  | {
      readonly type: 'move';
      readonly tenant: string;
      /** null only in recovery's restoring moves (`reason` `restore`). */
      readonly from: string | null;
      readonly to: string | null;
      readonly bytes: number;
      readonly reason: 'lend' | 'return' | 'reclaim' | 'safeguard' | 'restore';
      readonly durationUs: number;
    }
  | { readonly type: 'shortfall'; readonly tenant: string; readonly container: string; readonly bytes: number }
  | { readonly type: 'oom-kill'; readonly tenant: string; readonly container: string };

/** A journal entry: numbered from 1 for the agent's lifetime, `at` in epoch ms. */
export type NodeEvent = NodeEventBody & { readonly seq: number; readonly at: number };

export interface NodeEventsReply {
  /** Oldest first. */
  readonly events: readonly NodeEvent[];
  /** The `after` to ask with next time. */
  readonly next: number;
  /** Events after the requested `after` that the agent no longer keeps. */
  readonly missed: number;
}

/** Every error answer: status 4xx/5xx with this body. */
export interface ErrorBody {
  readonly error: { readonly code: string; readonly message: string; readonly detail?: Readonly<Record<string, unknown>> };
}

const NAME = { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$' } as const;
const BYTES = { type: 'integer', minimum: 1, maximum: Number.MAX_SAFE_INTEGER } as const;
const USAGE = {
  type: 'object',
  required: ['ownPeakBytes', 'filePeakBytes'],
  additionalProperties: false,
  properties: { ownPeakBytes: { type: 'integer', minimum: 0 }, filePeakBytes: { type: 'integer', minimum: 0 } },
} as const;
const STRING_MAP = { type: 'object', additionalProperties: { type: 'string' } } as const;

/** JSON schemas of the request bodies (fastify validates them before a handler runs). */
export const SCHEMAS = {
  create: {
    type: 'object',
    required: ['tenant', 'function', 'memoryBytes'],
    additionalProperties: false,
    properties: {
      tenant: NAME,
      function: { type: 'string', minLength: 1, maxLength: 256 },
      workflow: { type: 'string', minLength: 1, maxLength: 256 },
      image: { type: 'string', minLength: 1 },
      memoryBytes: { type: 'integer', minimum: 6 * 1024 * 1024, maximum: Number.MAX_SAFE_INTEGER },
      cpus: { type: 'number', exclusiveMinimum: 0, maximum: 1024 },
      env: STRING_MAP,
      labels: STRING_MAP,
      profile: USAGE,
    },
  },
  init: {
    type: 'object',
    required: ['value'],
    properties: {
      value: {
        type: 'object',
        required: ['code'],
        properties: {
          name: { type: 'string' },
          main: { type: 'string' },
          code: { type: 'string' },
          binary: { type: 'boolean' },
          env: STRING_MAP,
        },
      },
    },
  },
  run: {
    type: 'object',
    required: ['value'],
    properties: {
      namespace: { type: 'string' },
      action_name: { type: 'string' },
      action_version: { type: 'string' },
      activation_id: { type: 'string' },
      transaction_id: { type: 'string' },
      deadline: { type: 'string' },
      timeoutMs: { type: 'integer', minimum: 1, maximum: 24 * 3600 * 1000 },
    },
  },
  register: {
    type: 'object',
    required: ['tenant', 'function', 'memoryBytes', 'controlSocket'],
    additionalProperties: false,
    properties: {
      tenant: NAME,
      function: { type: 'string', minLength: 1, maxLength: 256 },
      workflow: { type: 'string', minLength: 1, maxLength: 256 },
      memoryBytes: BYTES,
      profile: USAGE,
      controlSocket: { type: 'string', minLength: 1 },
    },
  },
  invocationEnd: {
    type: 'object',
    additionalProperties: false,
    properties: { used: USAGE },
  },
  /** `GET /v1/events` query; the strings of a query string are read as integers here. */
  events: {
    type: 'object',
    additionalProperties: false,
    properties: {
      after: { type: 'string', pattern: '^[0-9]{1,15}$' },
      limit: { type: 'string', pattern: '^[0-9]{1,4}$' },
    },
  },
} as const;
