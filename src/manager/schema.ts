/**
 * JSON schemas for the Manager process's HTTP API (docs/PROTOCOL.md, "Tenant Manager process").
 * Fastify validates every request body against them at the edge, so the core can trust its types.
 * They mirror src/manager/types.ts; sizes are non-negative integers (bytes).
 */

const bytes = { type: 'integer', minimum: 0 } as const;
const id = { type: 'string', minLength: 1, maxLength: 512 } as const;

const usage = {
  type: 'object',
  additionalProperties: false,
  required: ['ownPeakBytes', 'filePeakBytes'],
  properties: { ownPeakBytes: bytes, filePeakBytes: bytes },
} as const;

const containerInfo = {
  type: 'object',
  additionalProperties: false,
  required: ['id', 'tenant', 'fn', 'initialQuota'],
  properties: {
    id,
    tenant: id,
    fn: id,
    workflow: id,
    initialQuota: { type: 'integer', minimum: 1 },
    profile: usage,
  },
} as const;

const move = {
  type: 'object',
  additionalProperties: false,
  required: ['seq', 'from', 'to', 'bytes', 'reason'],
  properties: {
    seq: bytes,
    from: { anyOf: [id, { type: 'null' }] },
    to: { anyOf: [id, { type: 'null' }] },
    bytes: { type: 'integer', minimum: 1 },
    reason: { enum: ['lend', 'return', 'reclaim', 'safeguard', 'restore'] },
  },
} as const;

function variant(kind: string, properties: Record<string, unknown>, required: readonly string[]): Record<string, unknown> {
  return {
    type: 'object',
    additionalProperties: false,
    required: ['kind', ...required],
    properties: { kind: { const: kind }, ...properties },
  };
}

/** One {@link ManagerEvent}, told apart by `kind` (ajv's discriminator gives errors that name the variant). */
const event = {
  type: 'object',
  required: ['kind'],
  discriminator: { propertyName: 'kind' },
  oneOf: [
    variant('register', { container: containerInfo }, ['container']),
    variant('forget', { id }, ['id']),
    variant('invocation-start', { id, estimate: usage }, ['id']),
    variant('invocation-end', { id, used: usage }, ['id', 'used']),
    variant('shortfall', { id, neededBytes: { type: 'integer', minimum: 1 } }, ['id', 'neededBytes']),
    variant('move-failed', { move, reason: { type: 'string', maxLength: 4096 } }, ['move', 'reason']),
  ],
} as const;

/** `POST /v1/events`: one event, and the `now` (ms) it happened at; absent, the Manager's clock. */
export const EVENT_BODY = {
  type: 'object',
  additionalProperties: false,
  required: ['event'],
  properties: { event, now: { type: 'number' } },
} as const;

/**
 * `POST /v1/events/pair`: two events in order (an invocation's start and end); the second is
 * applied only if the first decided no move.
 */
export const PAIR_BODY = {
  type: 'object',
  additionalProperties: false,
  required: ['first', 'second'],
  properties: { first: EVENT_BODY, second: EVENT_BODY },
} as const;

/** `POST /v1/recover`: the tenant's live containers with their labels and cgroup limits. */
export const RECOVER_BODY = {
  type: 'object',
  additionalProperties: false,
  required: ['live'],
  properties: {
    live: {
      type: 'array',
      maxItems: 100_000,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['info', 'limitBytes'],
        properties: { info: containerInfo, limitBytes: bytes },
      },
    },
  },
} as const;
