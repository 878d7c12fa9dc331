import { authorizeOneOf, type Authorizer } from './authorizer.ts';

/** AllowRule is an Authorizer or a plain allow-list of SPIFFE ID strings. */
export type AllowRule = Authorizer | readonly string[];

const compiled = new WeakMap<readonly string[], Authorizer>();

/** toAuthorizer turns an AllowRule into an Authorizer (allow-lists are compiled once). */
export function toAuthorizer(rule: AllowRule): Authorizer {
  if (typeof rule === 'function') return rule;
  let a = compiled.get(rule);
  if (!a) {
    a = authorizeOneOf(...rule);
    compiled.set(rule, a);
  }
  return a;
}
