import 'reflect-metadata';
import { isIP } from 'node:net';
import { join } from 'node:path';
import * as x509 from '@peculiar/x509';
import { SpiffeId, type TrustDomain, parseCertificate } from '@shop/auth/x509';
import type { CertificateAuthority } from '../dev-ca.ts';
import { CliError } from '../errors.ts';
import { KEY_FILE_MODE, PUBLIC_FILE_MODE, type OutputFile } from './files.ts';

// RFC 1035 §2.3.4 and RFC 1123 §2.1: a name of dot-separated labels of
// 1–63 letters, digits and "-" (not first or last), 253 characters in all.
const MAX_DNS_NAME_LENGTH = 253;
const MAX_DNS_LABEL_LENGTH = 63;
const DNS_LABEL_RE = /^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?$/;
const RESERVED_SERVICE_NAMES = new Set(['ca']);

/**
 * MAX_SERVICE_NAME_BYTES bounds a service name, which becomes file names:
 * <service>.crt.pem, <service>.key.pem and the temporary file each is first
 * written to (".<service>.crt.pem.<pid>.<random>.tmp", 30 bytes more). File
 * systems allow 255 bytes per name (ext4, XFS, APFS, NTFS), so 200 leaves
 * room; the SPIFFE ID's own limit (2048 bytes) is never the tighter one.
 */
export const MAX_SERVICE_NAME_BYTES = 200;

// Long inputs are shown by their start only (messages state their length), so an error stays readable.
function shown(value: string): string {
  return value.length <= 60 ? JSON.stringify(value) : `${JSON.stringify(value.slice(0, 40))}…`;
}

/** serviceSpiffeId validates `service` as one SPIFFE ID path segment and returns spiffe://<trust-domain>/<service>. */
export function serviceSpiffeId(trustDomain: TrustDomain, service: string): SpiffeId {
  const invalid = (problem: string, cause?: unknown): CliError =>
    new CliError(
      'AUTH_ERR_CLI_SERVICE_INVALID',
      `invalid service name ${JSON.stringify(service)}: ${problem}`,
      cause === undefined ? undefined : { cause },
    );
  if (service === '') throw invalid('it is empty');
  const bytes = Buffer.byteLength(service);
  if (bytes > MAX_SERVICE_NAME_BYTES) {
    throw new CliError(
      'AUTH_ERR_CLI_SERVICE_INVALID',
      `invalid service name ${shown(service)}: it is ${bytes} bytes long, and a service name may have at most ` +
        `${MAX_SERVICE_NAME_BYTES} because it becomes the file names <service>.crt.pem and <service>.key.pem`,
    );
  }
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

/**
 * dnsNameProblem says why `name` may not be a certificate's DNS SAN, or
 * returns undefined when it is a DNS name in preferred name syntax. IP
 * literals and wildcards are refused: the CLI issues neither.
 */
export function dnsNameProblem(name: string): string | undefined {
  if (name === '') return 'it is empty';
  if (isIP(name) !== 0 || isIP(name.replace(/^\[(.*)\]$/, '$1')) !== 0) {
    return 'it is an IP address, not a DNS name, and IP address SANs are not supported (peers are verified by their SPIFFE ID, not by their address)';
  }
  if (name.includes('*')) {
    return 'wildcards are not issued, since one certificate would then stand for every name under the domain; list each name with its own --dns';
  }
  if (name.length > MAX_DNS_NAME_LENGTH) {
    return `it is ${name.length} characters long, and a DNS name has at most ${MAX_DNS_NAME_LENGTH}`;
  }
  if (name.endsWith('.')) return 'it ends with "."; write the name without the trailing dot';
  const labels = name.split('.');
  for (const label of labels) {
    if (label === '') return 'it has an empty label (a leading "." or "..")';
    if (label.length > MAX_DNS_LABEL_LENGTH) {
      return `its label ${shown(label)} is ${label.length} characters long, and a label has at most ${MAX_DNS_LABEL_LENGTH}`;
    }
    if (!DNS_LABEL_RE.test(label)) {
      const idn = /[^\p{ASCII}]/u.test(label) ? '; write internationalised names in their xn-- (punycode) form' : '';
      return `its label ${JSON.stringify(label)} is not letters, digits and "-" (not first or last)${idn}`;
    }
  }
  // Resolvers read "1.2.3" or "0x7f.1"-like names as addresses (RFC 3696 §2).
  if (/^[0-9]+$/.test(labels[labels.length - 1] ?? '')) {
    return 'its last label is all digits, so it would be read as an IP address; IP address SANs are not supported';
  }
  return undefined;
}

/** checkDnsName fails with AUTH_ERR_CLI_USAGE, naming the rule, unless `name` is a DNS name (dnsNameProblem). */
export function checkDnsName(command: string, name: string): string {
  const problem = dnsNameProblem(name);
  if (problem !== undefined) {
    throw new CliError('AUTH_ERR_CLI_USAGE', `spiffe-auth ${command}: --dns ${shown(name)} is refused: ${problem}`);
  }
  return name;
}

/** serviceFiles returns the paths of a service's certificate chain and key in `dir`. */
export function serviceFiles(dir: string, service: string): { cert: string; key: string } {
  return { cert: join(dir, `${service}.crt.pem`), key: join(dir, `${service}.key.pem`) };
}

/**
 * defaultDnsNames are the DNS SANs every service certificate carries: the
 * service name (lower-cased) when it is a DNS name, and localhost.
 */
export function defaultDnsNames(service: string): string[] {
  const name = service.toLowerCase();
  return dnsNameProblem(name) === undefined ? [name, 'localhost'] : ['localhost'];
}

/** serviceDnsWarning says, for a service name that is not a DNS name, that it gets no DNS SAN of its own; else undefined. */
export function serviceDnsWarning(service: string): string | undefined {
  const problem = dnsNameProblem(service.toLowerCase());
  if (problem === undefined) return undefined;
  return `service name ${shown(service)} is not a DNS name, so its certificate carries no DNS SAN for it: ${problem}`;
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
