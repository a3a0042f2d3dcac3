/**
 * Structured logs for the controller and the node agents: JSON lines through pino.
 *
 * Its own component (not core, which has no I/O; not platform or node, which must not depend on
 * each other): both the controller and every agent log the same way, with the same fields, so
 * one `jq` line reads any of them.
 *
 * Every line has `time` (ISO 8601), `level` (a name, not pino's number), `component` and `msg`;
 * the node agent adds `node`; a line about one activation carries `activationId`, `tenant` and
 * `action` ({@link activationLogger}). Credentials never reach a line ({@link REDACTED_PATHS}).
 */
import { pino, type DestinationStream, type Logger } from 'pino';

import { EphemeraError } from '../core/errors.js';

export type { Logger } from 'pino';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** Paths whose values are replaced by "[redacted]": keys and session cookies. */
export const REDACTED_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'headers.authorization',
  'headers.cookie',
  'authorization',
  'api_key',
  'apiKey',
  '*.api_key',
  '*.apiKey',
];

export interface LoggerSettings {
  /** Who logs: `controller`, `node-agent`, `manager`, `scheduler`... */
  readonly component: string;
  /** @default the EPHEMERA_LOG_LEVEL environment variable, else `info` */
  readonly level?: string;
  /** The node a node agent runs on. */
  readonly node?: string;
  /** Where lines go. @default standard output */
  readonly destination?: DestinationStream;
}

/**
 * Reads a level name.
 * @throws {EphemeraError} `EPH_LOG_LEVEL` naming the value and the accepted ones
 */
export function parseLogLevel(value: string): LogLevel {
  const found = LOG_LEVELS.find((l) => l === value.toLowerCase());
  if (found === undefined) {
    throw new EphemeraError('EPH_LOG_LEVEL', `log level ${JSON.stringify(value)} is not one of ${LOG_LEVELS.join(', ')}; set EPHEMERA_LOG_LEVEL to one of them`);
  }
  return found;
}

/** A JSON-lines logger; pass it to fastify as `loggerInstance`. */
export function createLogger(settings: LoggerSettings): Logger {
  const level = parseLogLevel(settings.level ?? process.env['EPHEMERA_LOG_LEVEL'] ?? 'info');
  const options = {
    level,
    base: { component: settings.component, pid: process.pid, ...(settings.node === undefined ? {} : { node: settings.node }) },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label: string) => ({ level: label }) },
    redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
  };
  return settings.destination === undefined ? pino(options) : pino(options, settings.destination);
}

export interface ActivationFields {
  readonly activationId: string;
  readonly tenant: string;
  readonly action: string;
}

/** The logger for everything about one activation: each line carries its id. */
export function activationLogger(log: Logger, activation: ActivationFields): Logger {
  return log.child({ activationId: activation.activationId, tenant: activation.tenant, action: activation.action });
}
