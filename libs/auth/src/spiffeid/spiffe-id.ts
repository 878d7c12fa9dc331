import { AuthError } from '../errors.ts';
import { TrustDomain, trustDomainNameProblem } from './trust-domain.ts';

const SCHEME_PREFIX = 'spiffe://';
// SPIFFE-ID standard §2.3: implementations must support URIs up to 2048 bytes;
// longer ones should never be generated, so we refuse them to keep input bounded.
const MAX_ID_BYTES = 2048;

function isPathChar(c: number): boolean {
  return (
    (c >= 0x61 && c <= 0x7a) || // a-z
    (c >= 0x41 && c <= 0x5a) || // A-Z
    (c >= 0x30 && c <= 0x39) || // 0-9
    c === 0x2e || // .
    c === 0x2d || // -
    c === 0x5f // _
  );
}

/** pathProblem returns why `path` is not a valid SPIFFE ID path (empty or /seg/seg), or undefined. */
export function pathProblem(path: string): string | undefined {
  if (path === '') return undefined;
  if (path.startsWith('?')) return 'SPIFFE ID must not include a query';
  if (path.startsWith('#')) return 'SPIFFE ID must not include a fragment';
  if (!path.startsWith('/')) return 'path must begin with "/"';
  let segStart = 1;
  for (let i = 1; i <= path.length; i++) {
    if (i === path.length || path.charCodeAt(i) === 0x2f) {
      const seg = path.slice(segStart, i);
      if (seg === '')
        return i === path.length ? 'path cannot have a trailing slash' : 'path cannot contain empty segments';
      if (seg === '.' || seg === '..') return 'path cannot contain dot segments';
      segStart = i + 1;
      continue;
    }
    const c = path.charCodeAt(i);
    if (!isPathChar(c)) {
      if (c === 0x3f) return 'SPIFFE ID must not include a query';
      if (c === 0x23) return 'SPIFFE ID must not include a fragment';
      if (c === 0x25) return 'path must not contain percent-encoded characters';
      return `path segment characters are limited to letters, numbers, dots, dashes, and underscores (found ${JSON.stringify(path[i])})`;
    }
  }
  return undefined;
}

function invalid(input: string, problem: string): AuthError {
  const shown = input.length > 120 ? `${input.slice(0, 120)}…` : input;
  return new AuthError('AUTH_ERR_SPIFFE_ID_INVALID', `invalid SPIFFE ID ${JSON.stringify(shown)}: ${problem}`);
}

/** SpiffeId is a validated SPIFFE ID: a trust domain and a path (possibly empty). */
export class SpiffeId {
  /** trustDomain is the ID's trust domain. */
  readonly trustDomain: TrustDomain;
  /** path is empty or starts with "/" (e.g. "/payment"). */
  readonly path: string;
  readonly #text: string;

  private constructor(trustDomain: TrustDomain, path: string) {
    this.trustDomain = trustDomain;
    this.path = path;
    this.#text = SCHEME_PREFIX + trustDomain.name + path;
  }

  /** parse validates a SPIFFE ID string per the SPIFFE-ID standard and returns it. */
  static parse(input: string): SpiffeId {
    if (typeof input !== 'string') throw invalid(String(input), 'SPIFFE ID must be a string');
    if (input === '') throw invalid(input, 'SPIFFE ID is empty');
    if (Buffer.byteLength(input, 'utf8') > MAX_ID_BYTES) {
      throw invalid(input, `SPIFFE ID must be at most ${MAX_ID_BYTES} bytes`);
    }
    if (!input.startsWith(SCHEME_PREFIX)) {
      if (/^spiffe:\/\//i.test(input)) throw invalid(input, 'scheme must be lower-case "spiffe"');
      throw invalid(input, 'scheme is missing or invalid: it must be "spiffe://"');
    }
    const rest = input.slice(SCHEME_PREFIX.length);
    let end = rest.length;
    for (let i = 0; i < rest.length; i++) {
      const c = rest.charCodeAt(i);
      if (c === 0x2f || c === 0x3f || c === 0x23) {
        end = i;
        break;
      }
    }
    const tdName = rest.slice(0, end);
    const tdProblem = trustDomainNameProblem(tdName);
    if (tdProblem !== undefined) throw invalid(input, tdProblem);
    const path = rest.slice(end);
    const problem = pathProblem(path);
    if (problem !== undefined) throw invalid(input, problem);
    return new SpiffeId(TrustDomain.fromValidatedName(tdName), path);
  }

  /** fromPath builds an ID from a trust domain and a path such as "/payment". */
  static fromPath(trustDomain: TrustDomain | string, path: string): SpiffeId {
    const td = typeof trustDomain === 'string' ? TrustDomain.parse(trustDomain) : trustDomain;
    const problem = pathProblem(path);
    if (problem !== undefined) throw invalid(SCHEME_PREFIX + td.name + path, problem);
    return new SpiffeId(td, path);
  }

  /** fromSegments builds an ID from a trust domain and path segments, e.g. ("example.org", "ns", "prod"). */
  static fromSegments(trustDomain: TrustDomain | string, ...segments: string[]): SpiffeId {
    return SpiffeId.fromPath(trustDomain, segments.map((s) => `/${s}`).join(''));
  }

  /** isRoot is true for an ID with an empty path (the trust domain's own ID), which no SVID may carry. */
  get isRoot(): boolean {
    return this.path === '';
  }

  /** memberOf tells whether this ID belongs to the given trust domain. */
  memberOf(trustDomain: TrustDomain | string): boolean {
    const name = typeof trustDomain === 'string' ? TrustDomain.parse(trustDomain).name : trustDomain.name;
    return this.trustDomain.name === name;
  }

  /** equals compares two IDs exactly (the standard makes them case-sensitive in the path). */
  equals(other: SpiffeId | string): boolean {
    return this.#text === (typeof other === 'string' ? other : other.#text);
  }

  /** toString returns the ID as a URI string. */
  toString(): string {
    return this.#text;
  }

  /** toJSON serialises as the URI string. */
  toJSON(): string {
    return this.#text;
  }
}
