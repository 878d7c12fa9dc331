import { createPrivateKey, createPublicKey, type KeyObject, type X509Certificate } from 'node:crypto';
import { AuthError } from '../errors.ts';
import { SpiffeId } from '../spiffeid/spiffe-id.ts';
import { parseCertificate, type ParsedCertificate } from '../x509/certificate.ts';
import { encodePem, pemBlocksOfType, splitDerSequence } from '../x509/pem.ts';

function svidError(message: string): AuthError {
  return new AuthError('AUTH_ERR_SVID_INVALID', message);
}

/**
 * spiffeIdOfLeaf checks the SVID rules of the X.509-SVID standard §4 that hold
 * for any leaf, ours or a peer's, and returns its SPIFFE ID.
 */
export function spiffeIdOfLeaf(leaf: ParsedCertificate): SpiffeId {
  if (leaf.uriSans.length === 0) throw svidError('certificate contains no URI SAN');
  if (leaf.uriSans.length > 1) {
    throw svidError(`certificate contains more than one URI SAN (${leaf.uriSans.join(', ')})`);
  }
  const uri = leaf.uriSans[0] ?? '';
  let id: SpiffeId;
  try {
    id = SpiffeId.parse(uri);
  } catch (cause) {
    throw new AuthError('AUTH_ERR_SVID_INVALID', `certificate URI SAN ${JSON.stringify(uri)} is not a SPIFFE ID`, {
      cause,
    });
  }
  if (id.isRoot) throw svidError(`certificate SPIFFE ID ${uri} has no path; an SVID must not be the trust domain's ID`);
  if (leaf.isCA) throw svidError('leaf certificate must not have CA flag set to true');
  if (!leaf.keyUsage.present || !leaf.keyUsage.digitalSignature) {
    throw svidError('leaf certificate must have the digitalSignature key usage set');
  }
  if (leaf.keyUsage.keyCertSign) throw svidError('leaf certificate must not have the keyCertSign key usage set');
  if (leaf.keyUsage.cRLSign) throw svidError('leaf certificate must not have the cRLSign key usage set');
  if (leaf.unknownCriticalExtensions.length > 0) {
    throw svidError(
      `leaf certificate has unsupported critical extensions ${leaf.unknownCriticalExtensions.join(', ')}`,
    );
  }
  return id;
}

/** checkSigningCertificate checks that an intermediate of an SVID chain is a CA allowed to sign certificates. */
export function checkSigningCertificate(cert: ParsedCertificate, position: number): void {
  if (!cert.isCA) throw svidError(`signing certificate #${position} must have CA flag set to true`);
  if (cert.keyUsage.present && !cert.keyUsage.keyCertSign) {
    throw svidError(`signing certificate #${position} must have the keyCertSign key usage set`);
  }
}

/** X509Svid is a workload's own identity: a validated X.509-SVID chain and its private key. */
export class X509Svid {
  /** id is the SPIFFE ID in the leaf's URI SAN. */
  readonly id: SpiffeId;
  /** certificates is the chain, leaf first, as presented to peers. */
  readonly certificates: readonly X509Certificate[];
  /** privateKey is the leaf's key. */
  readonly privateKey: KeyObject;
  /** hint is the operator-chosen hint from the Workload API ("" when none). */
  readonly hint: string;
  readonly #chainDer: readonly Buffer[];

  private constructor(id: SpiffeId, chain: ParsedCertificate[], key: KeyObject, hint: string) {
    this.id = id;
    this.certificates = chain.map((c) => c.x509);
    this.#chainDer = chain.map((c) => c.der);
    this.privateKey = key;
    this.hint = hint;
  }

  /**
   * fromDer builds an SVID from DER certificates (concatenated, leaf first, as
   * the Workload API sends them) and a PKCS#8 DER private key.
   */
  static fromDer(chain: Uint8Array | readonly Uint8Array[], keyDer: Uint8Array, hint = ''): X509Svid {
    const ders = chain instanceof Uint8Array ? splitDerSequence(chain, 'X.509-SVID chain') : chain;
    let key: KeyObject;
    try {
      key = createPrivateKey({ key: Buffer.from(keyDer), format: 'der', type: 'pkcs8' });
    } catch (cause) {
      throw new AuthError('AUTH_ERR_KEY_INVALID', 'X.509-SVID private key is not a valid PKCS#8 DER key', { cause });
    }
    return X509Svid.#build(ders, key, hint);
  }

  /** fromPem builds an SVID from PEM certificates (leaf first) and a PEM PKCS#8 private key. */
  static fromPem(certPem: string, keyPem: string): X509Svid {
    const ders = pemBlocksOfType(certPem, 'CERTIFICATE', 'certificate file');
    const keyDer = pemBlocksOfType(keyPem, 'PRIVATE KEY', 'private key file (PKCS#8)');
    if (keyDer.length > 1) throw new AuthError('AUTH_ERR_KEY_INVALID', 'private key file holds more than one key');
    return X509Svid.fromDer(ders, keyDer[0] ?? Buffer.alloc(0));
  }

  static #build(ders: readonly Uint8Array[], key: KeyObject, hint: string): X509Svid {
    if (ders.length === 0) throw svidError('X.509-SVID chain holds no certificate');
    const chain = ders.map((d) => parseCertificate(d));
    const leaf = chain[0] as ParsedCertificate;
    const id = spiffeIdOfLeaf(leaf);
    chain.slice(1).forEach((c, i) => {
      checkSigningCertificate(c, i + 1);
    });
    const pub = createPublicKey(key).export({ format: 'der', type: 'spki' });
    const leafPub = leaf.x509.publicKey.export({ format: 'der', type: 'spki' });
    if (!pub.equals(leafPub)) {
      throw new AuthError(
        'AUTH_ERR_KEY_MISMATCH',
        `private key does not match the public key of the leaf certificate of ${id.toString()}`,
      );
    }
    return new X509Svid(id, chain, key, hint);
  }

  /** leaf is the first certificate of the chain. */
  get leaf(): X509Certificate {
    return this.certificates[0] as X509Certificate;
  }

  /** expiresAt is when the leaf stops being valid. */
  get expiresAt(): Date {
    return this.leaf.validToDate;
  }

  /** notBefore is when the leaf starts being valid. */
  get notBefore(): Date {
    return this.leaf.validFromDate;
  }

  /** chainDer returns the chain's DER encodings, leaf first. */
  chainDer(): readonly Buffer[] {
    return this.#chainDer;
  }

  /** certChainPem returns the chain as PEM, leaf first (what TLS options' `cert` takes). */
  certChainPem(): string {
    return this.#chainDer.map((d) => encodePem('CERTIFICATE', d)).join('');
  }

  /** privateKeyPem returns the key as PKCS#8 PEM. */
  privateKeyPem(): string {
    return this.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
  }

  /** secondsToExpiry is how long the leaf stays valid, from `now`. */
  secondsToExpiry(now: Date = new Date()): number {
    return Math.floor((this.expiresAt.getTime() - now.getTime()) / 1000);
  }
}
