/**
 * The controller's HTTP API: the subset of Apache OpenWhisk's REST API (/api/v1) that the official
 * `openwhisk` npm client and the wsk CLI use, served by fastify. A thin shell: requests are checked
 * by JSON schemas (schemas.ts), decisions are the model's, state is the store's, and activations
 * run in the invoker.
 */
import Fastify, { type FastifyBaseLogger, type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Logger } from 'pino';

import { EphemeraError, isEphemeraError, type ErrorCode } from '../core/errors.js';
import { newActivationId, type Invoker } from './invoker.js';
import {
  Invalid,
  PROFILE_ANNOTATION,
  actionSummary,
  activationSummary,
  buildAction,
  effectiveProfile,
  isActivationId,
  mergeParams,
  nameProblem,
  qualify,
  withAnnotation,
  type ActionDoc,
  type ActivationRecord,
  type PutAction,
} from './model.js';
import {
  getActionQuery,
  invokeBody,
  invokeQuery,
  listActionsQuery,
  listActivationsQuery,
  putActionBody,
  putActionQuery,
} from './schemas.js';
import type { Store, Tenant } from './store.js';

/** OpenWhisk's request body limit. */
export const BODY_LIMIT = 1024 * 1024;

export interface ControllerOptions {
  readonly store: Store;
  readonly invoker: Invoker;
  readonly log: Logger;
  /** How long a blocking invoke waits before answering 202 (OpenWhisk: 60 s). */
  readonly blockingWaitMs: number;
  /** Told of every saved action (the profiler runs those with `ephemera.profile-inputs`). */
  readonly onActionSaved?: (doc: ActionDoc) => void;
}

const HTTP_STATUS: Partial<Record<ErrorCode, number>> = {
  EPH_API_AUTH: 401,
  EPH_API_FORBIDDEN: 403,
  EPH_API_NOT_FOUND: 404,
  EPH_API_BAD_REQUEST: 400,
  EPH_API_CONFLICT: 409,
  EPH_API_TOO_LARGE: 413,
  EPH_API_MEDIA_TYPE: 415,
  EPH_API_INTERNAL: 500,
};

function fail(code: ErrorCode, message: string): EphemeraError {
  return new EphemeraError(code, message);
}

declare module 'fastify' {
  interface FastifyRequest {
    tenant: Tenant | undefined;
  }
}

function caller(req: FastifyRequest): Tenant {
  if (req.tenant === undefined) throw fail('EPH_API_AUTH', 'this request needs authorization');
  return req.tenant;
}

/** Ajv's complaint in words: where, what, and the value received. */
function validationMessage(err: FastifyError): string {
  const parts = (err.validation ?? []).map((v) => {
    const where = `${err.validationContext ?? 'request'}${v.instancePath.replaceAll('/', '.')}`;
    const allowed = (v.params as { allowedValues?: unknown[] }).allowedValues;
    const got = 'data' in v ? `, got ${JSON.stringify((v as { data?: unknown }).data)}` : '';
    return `${where} ${v.message ?? 'is invalid'}${allowed === undefined ? '' : ` (${allowed.map((a) => JSON.stringify(a)).join(', ')})`}${got}`;
  });
  return `${parts.join('; ')}; see docs/PROTOCOL.md for the accepted fields`;
}

export function buildController(opts: ControllerOptions): FastifyInstance {
  const { store, invoker, log } = opts;
  const logger: FastifyBaseLogger = log;
  const app = Fastify({
    loggerInstance: logger,
    bodyLimit: BODY_LIMIT,
    // Names may be 256 characters, percent-encoded up to three times that.
    routerOptions: { maxParamLength: 1024 },
    ajv: { customOptions: { verbose: true, allErrors: false } },
  });
  app.decorateRequest('tenant', undefined);

  // OpenWhisk's clients send Content-Type: application/json with no body on some calls.
  app.removeContentTypeParser(['application/json', 'text/plain']);
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_req, body, done) => {
    const text = typeof body === 'string' ? body : body.toString('utf8');
    if (text.trim() === '') { done(null, undefined); return; }
    try {
      done(null, JSON.parse(text));
    } catch (err) {
      done(fail('EPH_API_BAD_REQUEST', `the request body is not valid JSON (${err instanceof Error ? err.message : String(err)}); send a JSON object`), undefined);
    }
  });

  app.setErrorHandler((err: FastifyError | EphemeraError, req, reply) => {
    let status: number;
    let code: ErrorCode;
    let message: string;
    if (isEphemeraError(err)) {
      code = err.code;
      status = HTTP_STATUS[code] ?? 500;
      message = err.message;
    } else if (err instanceof Invalid) {
      code = 'EPH_API_BAD_REQUEST';
      status = 400;
      message = err.message;
    } else if (err.validation !== undefined) {
      code = 'EPH_API_BAD_REQUEST';
      status = 400;
      message = validationMessage(err);
    } else if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      code = 'EPH_API_TOO_LARGE';
      status = 413;
      message = `the request body is over ${BODY_LIMIT} bytes (1 MB), the most the API accepts; send less (code as a zip, data in files rather than parameters)`;
    } else if (err.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
      code = 'EPH_API_MEDIA_TYPE';
      status = 415;
      message = `the request body's content type ${JSON.stringify(req.headers['content-type'] ?? '')} is not accepted; send JSON with Content-Type: application/json`;
    } else if (typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500) {
      code = 'EPH_API_BAD_REQUEST';
      status = err.statusCode;
      message = `${err.message}; fix the request`;
    } else {
      code = 'EPH_API_INTERNAL';
      status = 500;
      message = `the controller failed on this request (${err.message}); look for request id ${req.id} in its log`;
      req.log.error({ err }, 'request failed');
    }
    void reply.code(status).send({ error: message, code });
  });

  app.setNotFoundHandler((req, reply) => {
    void reply.code(404).send({
      error: `there is no ${req.method} ${req.url.split('?')[0] ?? ''}; this server speaks OpenWhisk's /api/v1 (namespaces, actions, activations; packages, triggers and rules are not supported)`,
      code: 'EPH_API_NOT_FOUND',
    });
  });

  // Basic auth on every /api/v1 route, as OpenWhisk's controller requires.
  app.addHook('onRequest', (req, _reply, done) => {
    if (!req.url.startsWith('/api/v1/')) { done(); return; }
    const header = req.headers.authorization ?? '';
    const m = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header);
    const decoded = m === null ? '' : Buffer.from(m[1] ?? '', 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    const tenant = colon < 0 ? undefined : store.authenticate(decoded.slice(0, colon), decoded.slice(colon + 1));
    if (tenant === undefined) {
      done(fail(
        'EPH_API_AUTH',
        header === ''
          ? 'the request has no Authorization header; send Basic auth with the uuid:key from your .wskprops AUTH= line'
          : 'The supplied authentication is invalid: no tenant has this uuid:key; use the AUTH= line of ~/.ephemera/NAME.wskprops',
      ));
      return;
    }
    req.tenant = tenant;
    done();
  });

  /** The namespace a request may act in: `_` is the caller's own. */
  const namespaceOf = (req: FastifyRequest, ns: string): string => {
    const t = caller(req);
    if (ns === '_' || ns === t.name) return t.name;
    const bad = nameProblem(ns);
    if (bad !== null) throw fail('EPH_API_BAD_REQUEST', `namespace ${JSON.stringify(ns)} is not valid: ${bad}`);
    if (!t.admin) {
      throw fail('EPH_API_FORBIDDEN', `The supplied authentication is not authorized to access '${ns}': tenant '${t.name}' may use only its own namespace (or "_")`);
    }
    if (store.tenant(ns) === undefined) throw fail('EPH_API_NOT_FOUND', `namespace '${ns}' does not exist; add it with \`ephemera tenant add ${ns}\``);
    return ns;
  };

  const actionName = (name: string): string => {
    const bad = nameProblem(name);
    if (bad !== null) throw fail('EPH_API_BAD_REQUEST', `action name ${JSON.stringify(name)} is not valid: ${bad}`);
    return name;
  };

  const findAction = (ns: string, name: string): ActionDoc => {
    const a = store.getAction(ns, name);
    if (a === undefined) throw fail('EPH_API_NOT_FOUND', `The requested resource does not exist: no action '${name}' in namespace '${ns}'; create it with PUT (the client's actions.create)`);
    return a;
  };

  /** The action as GET shows it: the observed profile under `ephemera.profile` unless a user set one. */
  const present = (a: ActionDoc): ActionDoc => {
    const profile = effectiveProfile(a, store.observedProfile(a.namespace, a.name));
    return profile === undefined ? a : { ...a, annotations: withAnnotation(a.annotations, PROFILE_ANNOTATION, profile) };
  };

  type Params = { ns: string; name: string };
  type ActParams = { ns: string; id: string };

  app.get('/api/v1/namespaces', (req, reply) => {
    const t = caller(req);
    return reply.send(t.admin ? store.tenants().map((x) => x.name) : [t.name]);
  });

  app.get<{ Params: { ns: string }; Querystring: { skip?: number; limit?: number; count?: boolean } }>(
    '/api/v1/namespaces/:ns/actions',
    { schema: { querystring: listActionsQuery } },
    (req, reply) => {
      const ns = namespaceOf(req, req.params.ns);
      if (req.query.count === true) return reply.send({ actions: store.countActions(ns) });
      const limit = req.query.limit === undefined || req.query.limit === 0 ? 30 : req.query.limit;
      return reply.send(store.listActions(ns, req.query.skip ?? 0, limit).map(actionSummary));
    },
  );

  app.put<{ Params: Params; Querystring: { overwrite?: boolean }; Body: PutAction | undefined }>(
    '/api/v1/namespaces/:ns/actions/:name',
    { schema: { querystring: putActionQuery, body: putActionBody } },
    (req, reply) => {
      const ns = namespaceOf(req, req.params.ns);
      const name = actionName(req.params.name);
      const body = req.body ?? {};
      const existing = store.getAction(ns, name);
      if (existing !== undefined && req.query.overwrite !== true) {
        throw fail('EPH_API_CONFLICT', `resource already exists: action '${name}' in namespace '${ns}'; pass ?overwrite=true to update it (the client's actions.update)`);
      }
      const doc = buildAction(ns, name, body, existing, Date.now());
      if (doc.exec.kind === 'sequence') checkSequence(doc);
      store.putAction(doc);
      req.log.info({ action: `${ns}/${name}`, version: doc.version, kind: doc.exec.kind }, existing === undefined ? 'action created' : 'action updated');
      opts.onActionSaved?.(doc);
      return reply.send(present(doc));
    },
  );

  /** Components must exist in the sequence's own namespace, and no sequence may contain itself. */
  const checkSequence = (seq: ActionDoc): void => {
    const seen = new Set<string>([`/${seq.namespace}/${seq.name}`]);
    const walk = (components: readonly string[], depth: number): void => {
      for (const c of components) {
        const q = qualify(c, seq.namespace);
        if (q.namespace !== seq.namespace) {
          throw fail('EPH_API_FORBIDDEN', `sequence component ${c} is in namespace '${q.namespace}'; a sequence may use only actions of its own namespace '${seq.namespace}'`);
        }
        const fq = `/${q.namespace}/${q.name}`;
        if (seen.has(fq)) throw fail('EPH_API_BAD_REQUEST', `sequence ${seq.name} would contain itself through component ${c}; remove the cycle`);
        const a = store.getAction(q.namespace, q.name);
        if (a === undefined) throw fail('EPH_API_BAD_REQUEST', `Sequence component does not exist: ${c}; create that action first`);
        if (a.exec.kind === 'sequence' && depth < 50) {
          seen.add(fq);
          walk(a.exec.components ?? [], depth + 1);
          seen.delete(fq);
        }
      }
    };
    walk(seq.exec.components ?? [], 0);
  };

  app.get<{ Params: Params; Querystring: { code?: boolean } }>(
    '/api/v1/namespaces/:ns/actions/:name',
    { schema: { querystring: getActionQuery } },
    (req, reply) => {
      const ns = namespaceOf(req, req.params.ns);
      const a = present(findAction(ns, actionName(req.params.name)));
      if (req.query.code === false) {
        return reply.send({ ...a, exec: Object.fromEntries(Object.entries(a.exec).filter(([k]) => k !== 'code')) });
      }
      return reply.send(a);
    },
  );

  app.delete<{ Params: Params }>('/api/v1/namespaces/:ns/actions/:name', (req, reply) => {
    const ns = namespaceOf(req, req.params.ns);
    const a = findAction(ns, actionName(req.params.name));
    store.deleteAction(ns, a.name);
    invoker.retire(ns, a.name);
    req.log.info({ action: `${ns}/${a.name}` }, 'action deleted');
    return reply.send(a);
  });

  app.post<{ Params: Params; Querystring: { blocking?: boolean; result?: boolean }; Body: Record<string, unknown> | undefined }>(
    '/api/v1/namespaces/:ns/actions/:name',
    // Each activation is logged once, when it ends (the invoker's "activation finished", with its
    // id, status and duration); fastify's two lines per request would triple the log writes on the
    // platform's hottest path. Failures of the request itself still reach the log (error level).
    { schema: { querystring: invokeQuery, body: invokeBody }, logLevel: 'warn' },
    async (req, reply: FastifyReply) => {
      const received = Date.now();
      const t = caller(req);
      const ns = namespaceOf(req, req.params.ns);
      const action = findAction(ns, actionName(req.params.name));
      const params = mergeParams(action, req.body ?? {});
      const activationId = newActivationId();
      void reply.header('x-openwhisk-activation-id', activationId);
      const done = invoker.activate(action, params, { activationId, subject: t.name, received });
      if (req.query.blocking !== true) return reply.code(202).send({ activationId });
      let timer: NodeJS.Timeout | undefined;
      const waited = await Promise.race([
        done,
        new Promise<undefined>((resolve) => { timer = setTimeout(() => { resolve(undefined); }, opts.blockingWaitMs); }),
      ]);
      clearTimeout(timer);
      if (waited === undefined) return reply.code(202).send({ activationId });
      return answer(reply, waited, req.query.result === true);
    },
  );

  const answer = (reply: FastifyReply, rec: ActivationRecord, resultOnly: boolean): FastifyReply => {
    const r = rec.response;
    // The scheduler had no room (queue full, waited too long, no node large enough): 503, its code.
    const schedCode = typeof r.result.code === 'string' && r.result.code.startsWith('EPH_SCHED_') ? r.result.code : undefined;
    const status = r.success ? 200 : schedCode !== undefined ? 503 : r.statusCode === 3 ? 500 : 502;
    const body: Record<string, unknown> = resultOnly ? { ...r.result } : { ...rec };
    if (!r.success) {
      // The record (or result) stays whole; `error` and `code` say what went wrong, as every error body does.
      const e = r.result.error;
      body.error = typeof e === 'string' ? e : `the action ended with ${r.status}: ${JSON.stringify(e ?? r.result)}`;
      body.code = schedCode ?? (r.statusCode === 3 ? 'EPH_API_INTERNAL' : 'EPH_ACTION_FAILED');
    }
    return reply.code(status).send(body);
  };

  app.get<{ Params: { ns: string }; Querystring: { skip?: number; limit?: number; count?: boolean; name?: string; since?: number; upto?: number; docs?: boolean } }>(
    '/api/v1/namespaces/:ns/activations',
    { schema: { querystring: listActivationsQuery } },
    (req, reply) => {
      const ns = namespaceOf(req, req.params.ns);
      const q = req.query;
      if (q.name !== undefined) {
        // The wsk CLI may send `package/action` or `/ns/action`; only the last part names it here.
        const bad = nameProblem(q.name.split('/').pop() ?? '');
        if (bad !== null) throw fail('EPH_API_BAD_REQUEST', `name=${JSON.stringify(q.name)} is not a valid action name: ${bad}`);
      }
      const filter = {
        ...(q.name === undefined ? {} : { name: q.name.split('/').pop() ?? q.name }),
        ...(q.since === undefined ? {} : { since: q.since }),
        ...(q.upto === undefined ? {} : { upto: q.upto }),
      };
      const list = store.listActivations(ns, { ...filter, skip: q.skip ?? 0, limit: q.limit === undefined || q.limit === 0 ? 30 : q.limit });
      if (q.count === true) return reply.send({ activations: store.listActivations(ns, { ...filter, skip: 0, limit: Number.MAX_SAFE_INTEGER }).length });
      return reply.send(q.docs === true ? list : list.map(activationSummary));
    },
  );

  const findActivation = (req: FastifyRequest<{ Params: ActParams }>): ActivationRecord => {
    const ns = namespaceOf(req, req.params.ns);
    const id = req.params.id;
    if (!isActivationId(id)) throw fail('EPH_API_BAD_REQUEST', `activation id ${JSON.stringify(id)} is not valid: it is 32 lowercase hex digits, as the invoke's x-openwhisk-activation-id header gives it`);
    const rec = store.getActivation(ns, id);
    if (rec === undefined) throw fail('EPH_API_NOT_FOUND', `The requested resource does not exist: no activation ${id} in namespace '${ns}'`);
    if (rec === 'running') throw fail('EPH_API_NOT_FOUND', `activation ${id} is still running; its record exists once it ends: ask again shortly`);
    return rec;
  };

  app.get<{ Params: ActParams }>('/api/v1/namespaces/:ns/activations/:id', (req, reply) => reply.send(findActivation(req)));
  app.get<{ Params: ActParams }>('/api/v1/namespaces/:ns/activations/:id/logs', (req, reply) => reply.send(({ logs: findActivation(req).logs })));
  app.get<{ Params: ActParams }>('/api/v1/namespaces/:ns/activations/:id/result', (req, reply) => reply.send(findActivation(req).response));
  return app;
}
