// @peculiar/x509 builds certificates with WebCrypto; its dependency injection
// (tsyringe) needs the Reflect metadata polyfill loaded first. Only the CLI
// and tests load this module, never the verification path.
import 'reflect-metadata';
import { randomBytes, webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { AuthError, encodePem, pemBlocksOfType } from '@shop/auth/x509';

const EC_P256 = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

/** KeyUsage re-exports the key usage flags for callers that want odd combinations. */
export const KeyUsage = x509.KeyUsageFlags;

/** CertificateOptions describe one certificate to issue; every field has a sensible default. */
export interface CertificateOptions {
  /** subject DN, e.g. "CN=payment"; Default: "" (SPIFFE does not need one). */
  subject?: string;
  /** uris to put in the URI SAN, e.g. ["spiffe://example.org/payment"]. Default: none. */
  uris?: string[];
  /** dnsNames to put in the DNS SAN. Default: none. */
  dnsNames?: string[];
  /** notBefore Default: one minute ago (tolerates clock skew). */
  notBefore?: Date;
  /** notAfter Default: now + ttlSeconds (notBefore + ttlSeconds when notBefore is given). */
  notAfter?: Date;
  /** ttlSeconds Default: 3600. */
  ttlSeconds?: number;
  /** isCA sets basicConstraints CA. Default: false. */
  isCA?: boolean;
  /** pathLen for a CA. Default: none. */
  pathLen?: number;
  /** keyUsage flags, or null to omit the extension. Default: digitalSignature (leaf) / keyCertSign|cRLSign (CA). */
  keyUsage?: number | null;
  /** omitBasicConstraints leaves basicConstraints out altogether. Default: false. */
  omitBasicConstraints?: boolean;
  /** extraExtensions are appended as given (tests use them for odd certificates). */
  extraExtensions?: x509.Extension[];
}

/** IssuedCertificate is a certificate with its key and the chain up to (not including) the root. */
export interface IssuedCertificate {
  /** certDer is the certificate itself. */
  certDer: Buffer;
  /** chainDer is the certificate then every intermediate above it, root excluded (what a TLS peer sends). */
  chainDer: Buffer[];
  /** keyDer is the PKCS#8 private key. */
  keyDer: Buffer;
  /** certPem is chainDer as PEM. */
  certPem: string;
  /** keyPem is the PKCS#8 key as PEM. */
  keyPem: string;
}

async function generateKeys(): Promise<webcrypto.CryptoKeyPair> {
  return await webcrypto.subtle.generateKey(EC_P256, true, ['sign', 'verify']);
}

/**
 * CertificateAuthority issues X.509 certificates (ECDSA P-256, SHA-256): a
 * development CA for the CLI and the test CA for every test. Certificates are
 * always made at run time, so nothing that expires is ever committed.
 */
export class CertificateAuthority {
  /** cert is this CA's certificate. */
  readonly cert: x509.X509Certificate;
  readonly #keys: webcrypto.CryptoKeyPair;
  readonly #parents: Buffer[];

  private constructor(cert: x509.X509Certificate, keys: webcrypto.CryptoKeyPair, parents: Buffer[]) {
    this.cert = cert;
    this.#keys = keys;
    this.#parents = parents;
  }

  /** createRoot makes a self-signed root CA. */
  static async createRoot(options: CertificateOptions & { subject?: string } = {}): Promise<CertificateAuthority> {
    const keys = await generateKeys();
    const subject = options.subject ?? 'CN=Development Root CA';
    const cert = await build(
      { ...options, subject, isCA: options.isCA ?? true },
      keys.publicKey,
      keys.privateKey,
      subject,
      keys.publicKey,
    );
    return new CertificateAuthority(cert, keys, []);
  }

  /** fromPem loads an existing CA from its certificate and PKCS#8 key (for the CLI). */
  static async fromPem(certPem: string, keyPem: string): Promise<CertificateAuthority> {
    const [certDer] = pemBlocksOfType(certPem, 'CERTIFICATE', 'CA certificate');
    const [keyDer] = pemBlocksOfType(keyPem, 'PRIVATE KEY', 'CA private key (PKCS#8)');
    if (!certDer || !keyDer) throw new AuthError('AUTH_ERR_PEM_INVALID', 'CA certificate or key is empty');
    const cert = new x509.X509Certificate(certDer);
    let privateKey: webcrypto.CryptoKey;
    try {
      privateKey = await webcrypto.subtle.importKey('pkcs8', keyDer, EC_P256, true, ['sign']);
    } catch (cause) {
      throw new AuthError('AUTH_ERR_KEY_INVALID', 'CA private key must be an ECDSA P-256 PKCS#8 key', { cause });
    }
    const publicKey = await webcrypto.subtle.importKey('spki', cert.publicKey.rawData, EC_P256, true, ['verify']);
    return new CertificateAuthority(cert, { publicKey, privateKey }, []);
  }

  /** certPem is this CA's certificate as PEM (what goes in a CA file / bundle). */
  get certPem(): string {
    return this.cert.toString('pem') + '\n';
  }

  /** certDer is this CA's certificate as DER. */
  get certDer(): Buffer {
    return Buffer.from(this.cert.rawData);
  }

  /** keyPem exports this CA's private key as PKCS#8 PEM. */
  async keyPem(): Promise<string> {
    const der = await webcrypto.subtle.exportKey('pkcs8', this.#keys.privateKey);
    return encodePem('PRIVATE KEY', new Uint8Array(der));
  }

  /** issue signs a certificate with this CA. */
  async issue(options: CertificateOptions = {}): Promise<IssuedCertificate> {
    const keys = await generateKeys();
    const cert = await build(options, keys.publicKey, this.#keys.privateKey, this.cert.subject, this.#keys.publicKey);
    const certDer = Buffer.from(cert.rawData);
    const keyDer = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey));
    const chainDer = [certDer, ...this.#chainAbove()];
    return {
      certDer,
      chainDer,
      keyDer,
      certPem: chainDer.map((d) => encodePem('CERTIFICATE', d)).join(''),
      keyPem: encodePem('PRIVATE KEY', keyDer),
    };
  }

  /** issueSvid issues an X.509-SVID for `spiffeId` with the SVID defaults (digitalSignature, CA=false). */
  async issueSvid(spiffeId: string, options: CertificateOptions = {}): Promise<IssuedCertificate> {
    return this.issue({ ...options, uris: options.uris ?? [spiffeId] });
  }

  /** issueIntermediate makes a CA signed by this one. */
  async issueIntermediate(options: CertificateOptions = {}): Promise<CertificateAuthority> {
    const keys = await generateKeys();
    const subject = options.subject ?? `CN=Intermediate CA ${randomBytes(3).toString('hex')}`;
    const cert = await build(
      { ...options, subject, isCA: options.isCA ?? true },
      keys.publicKey,
      this.#keys.privateKey,
      this.cert.subject,
      this.#keys.publicKey,
    );
    return new CertificateAuthority(cert, keys, this.#chainAbove());
  }

  /** The certificates a leaf of this CA must send above itself: this CA (unless a root) and its parents. */
  #chainAbove(): Buffer[] {
    const isRoot = this.cert.subject === this.cert.issuer && this.#parents.length === 0;
    return isRoot ? [] : [this.certDer, ...this.#parents];
  }
}

async function build(
  o: CertificateOptions,
  publicKey: webcrypto.CryptoKey,
  signingKey: webcrypto.CryptoKey,
  issuer: string,
  issuerPublicKey: webcrypto.CryptoKey,
): Promise<x509.X509Certificate> {
  const notBefore = o.notBefore ?? new Date(Date.now() - 60_000);
  // ttlSeconds counts from now (the default notBefore is backdated a minute
  // for clock skew), or from an explicit notBefore.
  const ttlFrom = o.notBefore ? o.notBefore.getTime() : Date.now();
  const notAfter = o.notAfter ?? new Date(ttlFrom + (o.ttlSeconds ?? 3600) * 1000);
  const isCA = o.isCA ?? false;
  const extensions: x509.Extension[] = [];
  if (!o.omitBasicConstraints) extensions.push(new x509.BasicConstraintsExtension(isCA, o.pathLen, true));
  const ku =
    o.keyUsage === undefined
      ? isCA
        ? x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign
        : x509.KeyUsageFlags.digitalSignature
      : o.keyUsage;
  // Combined flags (a | b) are plain numbers in TypeScript; the extension takes the bit mask as is.
  // eslint-disable-next-line @typescript-eslint/no-unsafe-enum-assignment
  if (ku !== null) extensions.push(new x509.KeyUsagesExtension(ku, true));
  const names: x509.JsonGeneralName[] = [
    ...(o.uris ?? []).map((value) => ({ type: 'url' as const, value })),
    ...(o.dnsNames ?? []).map((value) => ({ type: 'dns' as const, value })),
  ];
  if (names.length > 0) extensions.push(new x509.SubjectAlternativeNameExtension(names, (o.subject ?? '') === ''));
  extensions.push(await x509.SubjectKeyIdentifierExtension.create(publicKey));
  extensions.push(await x509.AuthorityKeyIdentifierExtension.create(issuerPublicKey));
  extensions.push(...(o.extraExtensions ?? []));
  return x509.X509CertificateGenerator.create({
    serialNumber: randomBytes(16)
      .toString('hex')
      .replace(/^[89a-f]/, '1'),
    subject: o.subject ?? '',
    issuer,
    notBefore,
    notAfter,
    signingAlgorithm: EC_P256,
    publicKey,
    signingKey,
    extensions,
  });
}
