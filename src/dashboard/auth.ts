/**
 * Who is asking: keys to principals, and what each principal may see.
 *
 * Keys are OpenWhisk's `uuid:key` strings, sent as HTTP Basic credentials (user = uuid,
 * password = key), exactly as the wsk CLI and the openwhisk npm client send them.
 */

export type Principal = { readonly role: 'admin' } | { readonly role: 'tenant'; readonly tenant: string };

/** Maps a key to its principal; the platform implements it over its key store. */
export interface Authorizer {
  /** The principal the key belongs to, or `undefined` for an unknown key. */
  principalFor(key: string): Promise<Principal | undefined>;
}

/**
 * The `uuid:key` string in an `Authorization: Basic ...` header, or `undefined` when the header
 * is absent, not Basic, or not base64 of something with a colon.
 */
export function keyFromBasicAuth(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  const m = /^Basic\s+([A-Za-z0-9+/=_-]+)\s*$/i.exec(header);
  if (m?.[1] === undefined) return undefined;
  const decoded = Buffer.from(m[1], 'base64').toString('utf8');
  return decoded.includes(':') ? decoded : undefined;
}

/** The `Authorization` header value for a key. */
export function basicAuthFor(key: string): string {
  return `Basic ${Buffer.from(key, 'utf8').toString('base64')}`;
}

/** Whether `principal` may see the containers and activations of `tenant`. */
export function maySee(principal: Principal, tenant: string): boolean {
  return principal.role === 'admin' || principal.tenant === tenant;
}
