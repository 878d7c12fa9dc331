import 'reflect-metadata';
import { join } from 'node:path';
import * as x509 from '@peculiar/x509';
import { AuthError } from '../errors.ts';
import { SpiffeId } from '../spiffeid/spiffe-id.ts';
import type { TrustDomain } from '../spiffeid/trust-domain.ts';
import { parseCertificate } from '../x509/certificate.ts';
import type { CertificateAuthority } from '../x509/issuer.ts';
import { KEY_FILE_MODE, PUBLIC_FILE_MODE, type OutputFile } from './files.ts';

const DNS_LABEL = '[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?';
const DNS_NAME_RE = new RegExp(`^(?:\\*\\.)?${DNS_LABEL}(?:\\.${DNS_LABEL})*$`);
const RESERVED_SERVICE_NAMES = new Set(['ca']);

/** serviceSpiffeId validates `service` as one SPIFFE ID path segment and returns spiffe://<trust-domain>/<service>. */
export function serviceSpiffeId(trustDomain: TrustDomain, service: string): SpiffeId {
  const invalid = (problem: string, cause?: unknown): AuthError =>
    new AuthError(
      'AUTH_ERR_CLI_SERVICE_INVALID',
      `invalid service name ${JSON.stringify(service)}: ${problem}`,
      cause === undefined ? undefined : { cause },
    );
  if (service === '') throw invalid('it is empty');
  if (service.includes('/')) throw invalid('a service name is one path segment and must not contain "/"');
  // Its files would be the CA's own ca.crt.pem / ca.key.pem.
  if (RESERVED_SERVICE_NAMES.has(service)) throw invalid('it is reserved for the CA files');
  try {
    return SpiffeId.fromSegments(trustDomain, service);
  } catch (cause) {
    const detail = (cause as Error).message.replace(/^invalid SPIFFE ID "[^"]*": /, '');
    throw invalid(detail, cause);
  }
}

/** checkDnsName fails with AUTH_ERR_CLI_USAGE unless `name` is a DNS name (a leading "*." wildcard allowed). */
export function checkDnsName(command: string, name: string): string {
  if (name.length > 253 || !DNS_NAME_RE.test(name)) {
    throw new AuthError(
      'AUTH_ERR_CLI_USAGE',
      `spiffe-auth ${command}: --dns ${JSON.stringify(name)} must be a DNS name of letters, digits and "-" in dot-separated labels`,
    );
  }
  return name;
}

/** serviceFiles returns the paths of a service's certificate chain and key in `dir`. */
export function serviceFiles(dir: string, service: string): { cert: string; key: string } {
  return { cert: join(dir, `${service}.crt.pem`), key: join(dir, `${service}.key.pem`) };
}

/** defaultDnsNames are the DNS SANs every service certificate carries: the service name and localhost. */
export function defaultDnsNames(service: string): string[] {
  return [service.toLowerCase(), 'localhost'];
}

/** IssuedServiceCert is a service's X.509-SVID as files, and when it expires. */
export interface IssuedServiceCert {
  files: OutputFile[];
  notAfter: Date;
  /** clamped is true when the CA expires first, so the certificate ends with it. */
  clamped: boolean;
}

/**
 * issueServiceCert issues an X.509-SVID for `id` with `dnsNames`, valid for
 * `ttlSeconds` but never beyond the CA (a certificate that outlives its CA
 * would stop verifying early and surprise whoever checks its date).
 */
export async function issueServiceCert(
  ca: CertificateAuthority,
  caNotAfter: Date,
  id: SpiffeId,
  dnsNames: readonly string[],
  ttlSeconds: number,
  paths: { cert: string; key: string },
): Promise<IssuedServiceCert> {
  const notBefore = new Date(Date.now() - 60_000);
  const wanted = new Date(Date.now() + ttlSeconds * 1000);
  const clamped = wanted > caNotAfter;
  const notAfter = clamped ? caNotAfter : wanted;
  const service = id.path.slice(1);
  const issued = await ca.issueSvid(id.toString(), {
    subject: `CN=${service}`,
    dnsNames: [...new Set(dnsNames)],
    notBefore,
    notAfter,
    // SPIRE's X.509-SVIDs carry both; some TLS stacks check the EKU when present.
    extraExtensions: [
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
    ],
  });
  return {
    files: [
      { path: paths.cert, data: issued.certPem, mode: PUBLIC_FILE_MODE },
      { path: paths.key, data: issued.keyPem, mode: KEY_FILE_MODE },
    ],
    // The certificate holds whole seconds; report what it says.
    notAfter: parseCertificate(issued.certDer).notAfter,
    clamped,
  };
}
