import { AuthError } from '../errors.ts';

const SCHEME_PREFIX = 'spiffe://';
// SPIFFE-ID standard §2.1: trust domain names are limited to 255 bytes.
const MAX_TRUST_DOMAIN_LENGTH = 255;

function isTrustDomainChar(c: number): boolean {
  return (
    (c >= 0x61 && c <= 0x7a) || // a-z
    (c >= 0x30 && c <= 0x39) || // 0-9
    c === 0x2e || // .
    c === 0x2d || // -
    c === 0x5f // _
  );
}

/**
 * validateTrustDomainName returns why `name` is not a valid trust domain name, or undefined when it is.
 * Shared with SpiffeId parsing so both report the same reasons.
 */
export function trustDomainNameProblem(name: string): string | undefined {
  if (name.length === 0) return 'trust domain is missing';
  if (name.length > MAX_TRUST_DOMAIN_LENGTH) return `trust domain must be at most ${MAX_TRUST_DOMAIN_LENGTH} bytes`;
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (!isTrustDomainChar(c)) {
      if (c === 0x3a) return 'trust domain must not include a port';
      if (c === 0x40) return 'trust domain must not include user info';
      if (c >= 0x41 && c <= 0x5a) return 'trust domain must be lower-case';
      return `trust domain characters are limited to lowercase letters, numbers, dots, dashes, and underscores (found ${JSON.stringify(name[i])})`;
    }
  }
  return undefined;
}

/** TrustDomain is a validated SPIFFE trust domain name, such as `example.org`. */
export class TrustDomain {
  /** name is the trust domain name, without scheme. */
  readonly name: string;

  private constructor(name: string) {
    this.name = name;
  }

  /**
   * parse accepts a trust domain name (`example.org`) or a SPIFFE ID string
   * (`spiffe://example.org/anything`), and returns its trust domain.
   */
  static parse(input: string): TrustDomain {
    if (typeof input !== 'string') {
      throw new AuthError('AUTH_ERR_TRUST_DOMAIN_INVALID', 'trust domain must be a string');
    }
    let name = input;
    if (input.startsWith(SCHEME_PREFIX)) {
      const rest = input.slice(SCHEME_PREFIX.length);
      const slash = rest.indexOf('/');
      name = slash === -1 ? rest : rest.slice(0, slash);
    } else if (input.includes(':') && input.includes('/')) {
      throw new AuthError(
        'AUTH_ERR_TRUST_DOMAIN_INVALID',
        `invalid trust domain ${JSON.stringify(input)}: scheme must be "spiffe"`,
      );
    }
    const problem = trustDomainNameProblem(name);
    if (problem !== undefined) {
      throw new AuthError('AUTH_ERR_TRUST_DOMAIN_INVALID', `invalid trust domain ${JSON.stringify(input)}: ${problem}`);
    }
    return new TrustDomain(name);
  }

  /** fromValidatedName builds a TrustDomain from a name that already passed validation. */
  static fromValidatedName(name: string): TrustDomain {
    return new TrustDomain(name);
  }

  /** idString is the SPIFFE ID of the trust domain itself, `spiffe://<name>`. */
  idString(): string {
    return SCHEME_PREFIX + this.name;
  }

  /** equals compares two trust domains by name. */
  equals(other: TrustDomain): boolean {
    return this.name === other.name;
  }

  /** toString returns the trust domain name. */
  toString(): string {
    return this.name;
  }

  /** toJSON serialises as the name. */
  toJSON(): string {
    return this.name;
  }
}
