import { createHash } from 'node:crypto';
import { AsnConvert } from '@peculiar/asn1-schema';
import { ExtendedKeyUsage, KeyUsage, id_ce_extKeyUsage, id_ce_keyUsage, Certificate } from '@peculiar/asn1-x509';
import {
  isAuthError,
  SpiffeId,
  type AuthErrorCode,
  checkSigningCertificate,
  spiffeIdOfLeaf,
  parseCertificate,
  type ParsedCertificate,
  pemBlocksOfType,
  splitDerSequence,
} from '@shop/auth/x509';
import { prefixed } from './command.ts';
import { readInputFile } from './files.ts';

const EKU_NAMES: Record<string, string> = {
  '1.3.6.1.5.5.7.3.1': 'serverAuth',
  '1.3.6.1.5.5.7.3.2': 'clientAuth',
  '1.3.6.1.5.5.7.3.3': 'codeSigning',
  '1.3.6.1.5.5.7.3.4': 'emailProtection',
  '1.3.6.1.5.5.7.3.8': 'timeStamping',
  '1.3.6.1.5.5.7.3.9': 'ocspSigning',
  '2.5.29.37.0': 'anyExtendedKeyUsage',
};

/**
 * loadCertificateFile reads a certificate chain (leaf first) from a PEM file,
 * or a DER file of one or more concatenated certificates; other PEM blocks
 * (a key in the same file) are skipped.
 */
export async function loadCertificateFile(path: string): Promise<ParsedCertificate[]> {
  const data = await readInputFile(path, 'certificate file');
  try {
    const text = data.toString('latin1');
    const ders =
      !text.includes('-----BEGIN') && data[0] === 0x30
        ? splitDerSequence(data, 'DER certificate file')
        : pemBlocksOfType(text, 'CERTIFICATE', 'certificate file');
    return ders.map((der, i) => {
      try {
        return parseCertificate(der);
      } catch (err) {
        throw prefixed(`certificate #${i}`, err);
      }
    });
  } catch (err) {
    throw prefixed(path, err);
  }
}

/** spiffeIdOf returns the SPIFFE ID in a certificate's URI SANs (CA certificates may carry one too), if exactly one parses. */
export function spiffeIdOf(cert: ParsedCertificate): SpiffeId | undefined {
  const ids = cert.uriSans.filter((u) => u.startsWith('spiffe://'));
  if (ids.length !== 1) return undefined;
  try {
    return SpiffeId.parse(ids[0] ?? '');
  } catch {
    return undefined;
  }
}

/** CertificateReport is what `inspect` shows about one certificate. */
export interface CertificateReport {
  position: number;
  spiffeId: string | null;
  uriSans: string[];
  dnsSans: string[];
  subject: string;
  issuer: string;
  serial: string;
  notBefore: string;
  notAfter: string;
  secondsToExpiry: number;
  isCA: boolean;
  pathLen: number | null;
  selfSigned: boolean;
  keyUsage: string[] | null;
  extKeyUsage: string[] | null;
  fingerprintSha256: string;
}

// Node's X509Certificate has `subject` undefined (despite its type) when the DN is empty, as SVIDs may have it.
function distinguishedName(dn: string | undefined): string {
  return (dn ?? '')
    .split('\n')
    .filter((p) => p !== '')
    .join(', ');
}

function usages(der: Buffer): { keyUsage: string[] | null; extKeyUsage: string[] | null } {
  let keyUsage: string[] | null = null;
  let extKeyUsage: string[] | null = null;
  const extensions = AsnConvert.parse(der, Certificate).tbsCertificate.extensions;
  if (extensions) {
    for (const ext of extensions) {
      // inspect shows odd certificates too: a malformed extension is reported, not fatal.
      try {
        if (ext.extnID === id_ce_keyUsage) keyUsage = AsnConvert.parse(ext.extnValue.buffer, KeyUsage).toJSON();
        if (ext.extnID === id_ce_extKeyUsage) {
          extKeyUsage = [...AsnConvert.parse(ext.extnValue.buffer, ExtendedKeyUsage)].map(
            (oid) => EKU_NAMES[oid] ?? oid,
          );
        }
      } catch {
        if (ext.extnID === id_ce_keyUsage) keyUsage = ['(malformed)'];
        else extKeyUsage = ['(malformed)'];
      }
    }
  }
  return { keyUsage, extKeyUsage };
}

/** describeCertificate reports the fields a user checks on a certificate. */
export function describeCertificate(
  cert: ParsedCertificate,
  position: number,
  now: Date = new Date(),
): CertificateReport {
  const x = cert.x509;
  return {
    position,
    spiffeId: spiffeIdOf(cert)?.toString() ?? null,
    uriSans: cert.uriSans,
    dnsSans: cert.dnsSans,
    subject: distinguishedName(x.subject),
    issuer: distinguishedName(x.issuer),
    serial: x.serialNumber,
    notBefore: cert.notBefore.toISOString(),
    notAfter: cert.notAfter.toISOString(),
    secondsToExpiry: Math.floor((cert.notAfter.getTime() - now.getTime()) / 1000),
    isCA: cert.isCA,
    pathLen: cert.pathLen ?? null,
    selfSigned: distinguishedName(x.subject) === distinguishedName(x.issuer) && x.verify(x.publicKey),
    ...usages(cert.der),
    fingerprintSha256: createHash('sha256')
      .update(cert.der)
      .digest('hex')
      .toUpperCase()
      .replace(/(..)(?!$)/g, '$1:'),
  };
}

/** SvidStatus says whether a chain's leaf is a valid X.509-SVID now, and why not. */
export interface SvidStatus {
  valid: boolean;
  spiffeId: string | null;
  code: AuthErrorCode | null;
  reason: string | null;
}

/**
 * svidStatus applies the X.509-SVID rules (those X509Svid enforces on our own
 * SVID) to a chain read from a file: a valid SVID leaf, CA intermediates, and
 * the leaf inside its validity period.
 */
export function svidStatus(chain: readonly ParsedCertificate[], now: Date = new Date()): SvidStatus {
  const leaf = chain[0];
  if (!leaf)
    return { valid: false, spiffeId: null, code: 'AUTH_ERR_SVID_INVALID', reason: 'chain holds no certificate' };
  let id: SpiffeId;
  try {
    id = spiffeIdOfLeaf(leaf);
    chain.slice(1).forEach((c, i) => {
      checkSigningCertificate(c, i + 1);
    });
  } catch (err) {
    if (!isAuthError(err)) throw err;
    return { valid: false, spiffeId: spiffeIdOf(leaf)?.toString() ?? null, code: err.code, reason: err.message };
  }
  const spiffeId = id.toString();
  if (now < leaf.notBefore) {
    const reason = `leaf certificate is not valid before ${leaf.notBefore.toISOString()}`;
    return { valid: false, spiffeId, code: 'AUTH_ERR_SVID_EXPIRED', reason };
  }
  if (now > leaf.notAfter) {
    const reason = `leaf certificate expired at ${leaf.notAfter.toISOString()}`;
    return { valid: false, spiffeId, code: 'AUTH_ERR_SVID_EXPIRED', reason };
  }
  return { valid: true, spiffeId, code: null, reason: null };
}
