/**
 * JSON schemas for the controller's request bodies and query strings, checked by fastify (Ajv) at
 * the edge before a handler runs. Ranges come from the model's LIMIT_RANGES, so the schema and the
 * rule an update is checked against cannot drift apart.
 */
import { KINDS, LIMIT_RANGES, MAX_SEQUENCE_ACTIONS } from './model.js';

const keyValues = {
  type: 'array',
  maxItems: 1000,
  items: {
    type: 'object',
    required: ['key'],
    properties: { key: { type: 'string', minLength: 1 }, value: {} },
  },
} as const;

const limit = (name: keyof typeof LIMIT_RANGES) => ({
  type: 'integer',
  minimum: LIMIT_RANGES[name].min,
  maximum: LIMIT_RANGES[name].max,
});

export const putActionBody = {
  type: 'object',
  properties: {
    namespace: { type: 'string' },
    name: { type: 'string' },
    version: { type: 'string' },
    publish: { type: 'boolean' },
    exec: {
      type: 'object',
      required: ['kind'],
      properties: {
        kind: { type: 'string', enum: [...KINDS] },
        code: { type: 'string' },
        binary: { type: 'boolean' },
        main: { type: 'string', pattern: '^[A-Za-z_][A-Za-z0-9_]*$' },
        image: { type: 'string', minLength: 1 },
        components: { type: 'array', minItems: 1, maxItems: MAX_SEQUENCE_ACTIONS, items: { type: 'string', minLength: 1 } },
      },
    },
    parameters: keyValues,
    annotations: keyValues,
    limits: {
      type: 'object',
      properties: { timeout: limit('timeout'), memory: limit('memory'), logs: limit('logs'), concurrency: limit('concurrency') },
    },
  },
} as const;

export const putActionQuery = {
  type: 'object',
  properties: { overwrite: { type: 'boolean' } },
} as const;

export const getActionQuery = {
  type: 'object',
  properties: { code: { type: 'boolean' } },
} as const;

export const invokeQuery = {
  type: 'object',
  properties: { blocking: { type: 'boolean' }, result: { type: 'boolean' } },
} as const;

export const invokeBody = { type: 'object' } as const;

const paging = {
  skip: { type: 'integer', minimum: 0 },
  limit: { type: 'integer', minimum: 0, maximum: 200 },
  count: { type: 'boolean' },
} as const;

export const listActionsQuery = { type: 'object', properties: { ...paging } } as const;

export const listActivationsQuery = {
  type: 'object',
  properties: {
    ...paging,
    name: { type: 'string', minLength: 1 },
    since: { type: 'integer', minimum: 0 },
    upto: { type: 'integer', minimum: 0 },
    docs: { type: 'boolean' },
  },
} as const;
