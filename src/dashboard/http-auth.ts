/**
 * The views' answer to "who is this request?", shared by /metrics and the dashboard routes.
 */
import type { FastifyReply } from 'fastify';

import type { ErrorCode } from '../core/errors.js';
import type { Authorizer, Principal } from './auth.js';

export type AuthResult =
  | { readonly ok: true; readonly principal: Principal }
  | { readonly ok: false; readonly status: 401 | 403; readonly code: ErrorCode; readonly message: string };

/** The principal for `key`, or a 401 saying what was missing. */
export async function authenticate(key: string | undefined, authorizer: Authorizer, what: string): Promise<AuthResult> {
  if (key === undefined) {
    return {
      ok: false,
      status: 401,
      code: 'EPH_VIEW_UNAUTHENTICATED',
      message: `${what} needs a key: send it as HTTP Basic credentials (uuid:key, as in the AUTH= line of a wsk props file)`,
    };
  }
  const principal = await authorizer.principalFor(key);
  if (principal === undefined) {
    const uuid = key.slice(0, key.indexOf(':'));
    return {
      ok: false,
      status: 401,
      code: 'EPH_VIEW_UNAUTHENTICATED',
      message: `${what}: the key for ${JSON.stringify(uuid)} is not known to this controller; use the AUTH= value of a current props file`,
    };
  }
  return { ok: true, principal };
}

/** Only the operator's key passes. */
export function requireAdmin(result: AuthResult, what: string): AuthResult {
  if (!result.ok || result.principal.role === 'admin') return result;
  return {
    ok: false,
    status: 403,
    code: 'EPH_VIEW_FORBIDDEN',
    message: `${what} shows every tenant and needs the operator key (~/.ephemera/admin.wskprops); this key belongs to tenant ${JSON.stringify(result.principal.tenant)}`,
  };
}

/**
 * Sends a failed {@link AuthResult} as `{code, error}`. With `challenge`, a 401 carries
 * `WWW-Authenticate: Basic` (for curl and scrapers); the dashboard's routes answer without it,
 * because a browser meets that header with its own password prompt, over the page's sign-in form.
 */
export function sendAuthFailure(reply: FastifyReply, failure: Extract<AuthResult, { ok: false }>, challenge: boolean): FastifyReply {
  if (challenge && failure.status === 401) void reply.header('www-authenticate', 'Basic realm="ephemera", charset="UTF-8"');
  return reply.code(failure.status).send({ code: failure.code, error: failure.message });
}
