import type { X509Certificate } from 'node:crypto';
import { AuthError } from '../errors.ts';
import { SpiffeId } from '../spiffeid/spiffe-id.ts';
import { TrustDomain } from '../spiffeid/trust-domain.ts';

/**
 * Authorizer decides whether a verified peer ID may proceed: it returns
 * normally to allow and throws AUTH_ERR_PEER_UNAUTHORIZED to deny. `rule`
 * describes the rule for error bodies and audit logs.
 */
export interface Authorizer {
  (id: SpiffeId, chain: readonly X509Certificate[]): void;
  readonly rule: string;
}

/** Matcher is a custom predicate over a peer ID, for adaptMatcher. */
export type Matcher = (id: SpiffeId) => boolean;

function make(rule: string, check: (id: SpiffeId) => boolean): Authorizer {
  const fn = (id: SpiffeId): void => {
    if (!check(id)) {
      throw new AuthError('AUTH_ERR_PEER_UNAUTHORIZED', `unexpected ID "${id.toString()}" (rule: ${rule})`);
    }
  };
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
