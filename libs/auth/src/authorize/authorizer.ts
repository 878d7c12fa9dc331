import type { X509Certificate } from 'node:crypto';
import { AuthError, isAuthError } from '../errors.ts';
import { SpiffeId } from '../spiffeid/spiffe-id.ts';
import { TrustDomain } from '../spiffeid/trust-domain.ts';

/**
 * AuthorizeResult is an authorizer's answer: allowed, or refused with an
 * AUTH_ERR_PEER_UNAUTHORIZED error that names the unexpected ID and the rule.
 */
export type AuthorizeResult = { ok: true } | { ok: false; error: AuthError };

/**
 * Authorizer decides whether a verified peer ID may proceed. It returns its
 * answer rather than throwing (as go-spiffe's authorizers return an error),
 * so rules compose without try/catch and callers cannot mistake a bug for a
 * refusal. `rule` describes the rule for error bodies and audit logs.
 */
export interface Authorizer {
  (id: SpiffeId, chain: readonly X509Certificate[]): AuthorizeResult;
  readonly rule: string;
}

/** Matcher is a custom predicate over a peer ID, for adaptMatcher. */
export type Matcher = (id: SpiffeId) => boolean;

const ALLOWED: AuthorizeResult = Object.freeze({ ok: true });

/** refusal returns the AuthorizeResult that refuses `id` under `rule`. */
function refusal(id: SpiffeId, rule: string): AuthorizeResult {
  return {
    ok: false,
    error: new AuthError('AUTH_ERR_PEER_UNAUTHORIZED', `unexpected ID "${id.toString()}" (rule: ${rule})`),
  };
}

function make(rule: string, check: (id: SpiffeId) => boolean): Authorizer {
  const fn = (id: SpiffeId): AuthorizeResult => (check(id) ? ALLOWED : refusal(id, rule));
  return Object.assign(fn, { rule });
}

function toId(id: SpiffeId | string): SpiffeId {
  return typeof id === 'string' ? SpiffeId.parse(id) : id;
}

/** authorizeAny allows any verified SPIFFE ID (of any trust domain whose bundle we hold). */
export function authorizeAny(): Authorizer {
  return make('any SPIFFE ID', () => true);
}

/** authorizeId allows exactly `expected`. */
export function authorizeId(expected: SpiffeId | string): Authorizer {
  const want = toId(expected);
  return make(`ID is ${want.toString()}`, (id) => id.equals(want));
}

/** authorizeOneOf allows any of `allowed`. */
export function authorizeOneOf(...allowed: (SpiffeId | string)[]): Authorizer {
  const set = new Set(allowed.map((a) => toId(a).toString()));
  return make(`ID is one of [${[...set].join(', ')}]`, (id) => set.has(id.toString()));
}

/** authorizeMemberOf allows any ID of `trustDomain`. */
export function authorizeMemberOf(trustDomain: TrustDomain | string): Authorizer {
  const td = typeof trustDomain === 'string' ? TrustDomain.parse(trustDomain) : trustDomain;
  return make(`member of trust domain ${td.name}`, (id) => id.memberOf(td));
}

/** adaptMatcher turns a predicate into an Authorizer; `rule` names it in errors. */
export function adaptMatcher(matcher: Matcher, rule = 'custom matcher'): Authorizer {
  return make(rule, matcher);
}

/**
 * authorizeAnyOf allows a peer that any of `authorizers` allows, asking them
 * in order. Its rule joins theirs with " or ", so a refusal names every rule
 * the peer failed. With no authorizers it allows nobody.
 */
export function authorizeAnyOf(...authorizers: Authorizer[]): Authorizer {
  const rule = authorizers.length === 0 ? 'nobody' : authorizers.map((a) => a.rule).join(' or ');
  const fn = (id: SpiffeId, chain: readonly X509Certificate[]): AuthorizeResult => {
    for (const a of authorizers) {
      if (a(id, chain).ok) return ALLOWED;
    }
    return refusal(id, rule);
  };
  return Object.assign(fn, { rule });
}

/**
 * applyAuthorizer runs `authorizer` on a verified peer and turns a throw (a
 * bug in a custom rule) into a refusal with the thrown error as its cause,
 * so a broken rule fails closed, as a 403 / PERMISSION_DENIED, and never
 * takes a server down.
 */
export function applyAuthorizer(
  authorizer: Authorizer,
  id: SpiffeId,
  chain: readonly X509Certificate[],
): AuthorizeResult {
  try {
    return authorizer(id, chain);
  } catch (err) {
    const error = isAuthError(err) ? err : new AuthError('AUTH_ERR_PEER_UNAUTHORIZED', String(err), { cause: err });
    return { ok: false, error };
  }
}
