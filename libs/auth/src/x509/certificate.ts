import { X509Certificate } from 'node:crypto';
import { AsnConvert } from '@peculiar/asn1-schema';
import {
  BasicConstraints,
  Certificate,
  ExtendedKeyUsage,
  KeyUsage,
  KeyUsageFlags,
  SubjectAlternativeName,
  id_ce_basicConstraints,
  id_ce_extKeyUsage,
  id_ce_keyUsage,
  id_ce_subjectAltName,
} from '@peculiar/asn1-x509';
import { AuthError } from '../errors.ts';

// Extensions whose semantics our verifier implements (or that are safe to
// ignore). RFC 5280 §4.2: a certificate with any other *critical* extension
// must be rejected, so name constraints and policy constraints, which we do
// not process, make a chain fail closed rather than be half-checked.
const UNDERSTOOD_EXTENSIONS = new Set([
  id_ce_basicConstraints,
  id_ce_extKeyUsage,
  id_ce_keyUsage,
  id_ce_subjectAltName,
  id_ce_extKeyUsage,
  '2.5.29.14', // subjectKeyIdentifier
  '2.5.29.35', // authorityKeyIdentifier
]);

/** KeyUsageBits are the key usage flags SPIFFE cares about, and whether the extension was present. */
export interface KeyUsageBits {
  present: boolean;
  digitalSignature: boolean;
  keyCertSign: boolean;
  cRLSign: boolean;
}

/** ParsedCertificate is a certificate with the fields SPIFFE verification reads, decoded once. */
export interface ParsedCertificate {
  der: Buffer;
  x509: X509Certificate;
  isCA: boolean;
  pathLen: number | undefined;
  keyUsage: KeyUsageBits;
  /** extKeyUsage lists the extended key usage OIDs, or is undefined when the extension is absent (any purpose). */
  extKeyUsage: string[] | undefined;
  uriSans: string[];
  dnsSans: string[];
  notBefore: Date;
  notAfter: Date;
  unknownCriticalExtensions: string[];
}

// Peers present the same few certificates over and over; decoding ASN.1 costs
// far more than a map lookup, so decoded certificates are kept in a small LRU.
const CACHE_LIMIT = 256;
const cache = new Map<string, ParsedCertificate>();

/** parseCertificate decodes a DER certificate and its SPIFFE-relevant extensions. */
export function parseCertificate(der: Uint8Array): ParsedCertificate {
  const buf = Buffer.from(der.buffer, der.byteOffset, der.byteLength);
  const key = buf.toString('latin1');
  const hit = cache.get(key);
  if (hit) {
    cache.delete(key);
    cache.set(key, hit);
    return hit;
  }
  const parsed = decode(buf);
  cache.set(key, parsed);
  if (cache.size > CACHE_LIMIT) {
    const oldest = cache.keys().next();
    if (!oldest.done) cache.delete(oldest.value);
  }
  return parsed;
}

function decode(der: Buffer): ParsedCertificate {
  let x509: X509Certificate;
  let asn: Certificate;
  try {
    x509 = new X509Certificate(der);
    asn = AsnConvert.parse(der, Certificate);
  } catch (cause) {
    throw new AuthError('AUTH_ERR_CERT_INVALID', 'certificate could not be parsed as DER X.509', { cause });
  }
  let isCA = false;
  let pathLen: number | undefined;
  const keyUsage: KeyUsageBits = { present: false, digitalSignature: false, keyCertSign: false, cRLSign: false };
  let extKeyUsage: string[] | undefined;
  const uriSans: string[] = [];
  const dnsSans: string[] = [];
  const unknownCriticalExtensions: string[] = [];
  try {
    const extensions = asn.tbsCertificate.extensions ? [...asn.tbsCertificate.extensions] : [];
    for (const ext of extensions) {
      const value = ext.extnValue.buffer;
      switch (ext.extnID) {
        case id_ce_basicConstraints: {
          const bc = AsnConvert.parse(value, BasicConstraints);
          isCA = bc.cA;
          pathLen = bc.pathLenConstraint;
          break;
        }
        case id_ce_keyUsage: {
          const ku = AsnConvert.parse(value, KeyUsage);
          const flags = ku.toNumber();
          keyUsage.present = true;
          keyUsage.digitalSignature = (flags & KeyUsageFlags.digitalSignature) !== 0;
          keyUsage.keyCertSign = (flags & KeyUsageFlags.keyCertSign) !== 0;
          keyUsage.cRLSign = (flags & KeyUsageFlags.cRLSign) !== 0;
          break;
        }
        case id_ce_extKeyUsage:
          extKeyUsage = [...AsnConvert.parse(value, ExtendedKeyUsage)];
          break;
        case id_ce_subjectAltName: {
          const san = AsnConvert.parse(value, SubjectAlternativeName);
          for (const name of san) {
            if (name.uniformResourceIdentifier !== undefined) uriSans.push(name.uniformResourceIdentifier);
            if (name.dNSName !== undefined) dnsSans.push(name.dNSName);
          }
          break;
        }
        default:
          if (ext.critical && !UNDERSTOOD_EXTENSIONS.has(ext.extnID)) unknownCriticalExtensions.push(ext.extnID);
      }
    }
  } catch (cause) {
    throw new AuthError('AUTH_ERR_CERT_INVALID', 'certificate has an extension that could not be decoded', { cause });
  }
  return {
    der,
    x509,
    isCA,
    pathLen,
    keyUsage,
    extKeyUsage,
    uriSans,
    dnsSans,
    notBefore: x509.validFromDate,
    notAfter: x509.validToDate,
    unknownCriticalExtensions,
  };
}
