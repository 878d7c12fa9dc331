import { createPrivateKey, createPublicKey } from 'node:crypto';
import { join } from 'node:path';
import { AuthError, TrustDomain, parseCertificate, type ParsedCertificate, pemBlocksOfType } from '@shop/auth/x509';
import { CertificateAuthority } from '../dev-ca.ts';
import { CliError, isExpectedError } from '../errors.ts';
import { prefixed } from './command.ts';
import { KEY_FILE_MODE, PUBLIC_FILE_MODE, isMissing, readInputFile, type OutputFile } from './files.ts';

/** CA_CERT_FILE is the CA certificate's file name in a CA directory. */
export const CA_CERT_FILE = 'ca.crt.pem';
/** CA_KEY_FILE is the CA private key's file name in a CA directory. */
export const CA_KEY_FILE = 'ca.key.pem';
/** CA_META_FILE records the trust domain the CA was created for ({"trust_domain": "..."}). */
export const CA_META_FILE = 'ca.json';
/** DEFAULT_TRUST_DOMAIN is used when neither --trust-domain nor ca.json names one. */
export const DEFAULT_TRUST_DOMAIN = 'example.org';

/** LoadedCa is a development CA read back from its directory. */
export interface LoadedCa {
  /** ca signs certificates. */
  ca: CertificateAuthority;
  /** cert is the CA certificate, decoded. */
  cert: ParsedCertificate;
  /** trustDomain is the one recorded in ca.json, or undefined when there is no ca.json. */
  trustDomain: TrustDomain | undefined;
}

function caInvalid(message: string, cause?: unknown): CliError {
  return new CliError('AUTH_ERR_CLI_CA_INVALID', message, cause === undefined ? undefined : { cause });
}

/** caFiles returns the paths of the CA files in `dir`. */
export function caFiles(dir: string): { cert: string; key: string; meta: string } {
  return { cert: join(dir, CA_CERT_FILE), key: join(dir, CA_KEY_FILE), meta: join(dir, CA_META_FILE) };
}

/**
 * loadCa reads the CA in `dir` and checks what issuing needs: the certificate
 * is a CA allowed to sign, currently valid, and the key is its key.
 */
export async function loadCa(dir: string, now: Date = new Date()): Promise<LoadedCa> {
  const files = caFiles(dir);
  const certPem = (await readInputFile(files.cert, 'CA certificate')).toString('utf8');
  const keyPem = (await readInputFile(files.key, 'CA private key')).toString('utf8');
  let cert: ParsedCertificate;
  try {
    const [der] = pemBlocksOfType(certPem, 'CERTIFICATE', 'CA certificate');
    cert = parseCertificate(der ?? Buffer.alloc(0));
  } catch (err) {
    throw prefixed(files.cert, err);
  }
  if (!cert.isCA) throw caInvalid(`${files.cert}: CA certificate must have CA flag set to true`);
  if (cert.keyUsage.present && !cert.keyUsage.keyCertSign) {
    throw caInvalid(`${files.cert}: CA certificate must have the keyCertSign key usage set`);
  }
  if (now > cert.notAfter) throw caInvalid(`${files.cert}: CA certificate expired at ${cert.notAfter.toISOString()}`);
  if (now < cert.notBefore) {
    throw caInvalid(`${files.cert}: CA certificate is not valid before ${cert.notBefore.toISOString()}`);
  }
  let publicKeyDer: Buffer;
  try {
    const [der] = pemBlocksOfType(keyPem, 'PRIVATE KEY', 'CA private key (PKCS#8)');
    const key = createPrivateKey({ key: der ?? Buffer.alloc(0), format: 'der', type: 'pkcs8' });
    publicKeyDer = createPublicKey(key).export({ format: 'der', type: 'spki' });
  } catch (err) {
    if (isExpectedError(err)) throw prefixed(files.key, err);
    throw new AuthError('AUTH_ERR_KEY_INVALID', `${files.key}: CA private key is not a valid PKCS#8 key`, {
      cause: err,
    });
  }
  if (!publicKeyDer.equals(cert.x509.publicKey.export({ format: 'der', type: 'spki' }))) {
    throw new AuthError(
      'AUTH_ERR_KEY_MISMATCH',
      `${files.key} is not the private key of the CA certificate ${files.cert}`,
    );
  }
  let ca: CertificateAuthority;
  try {
    ca = await CertificateAuthority.fromPem(certPem, keyPem);
  } catch (err) {
    throw prefixed(files.key, err);
  }
  return { ca, cert, trustDomain: await readCaTrustDomain(files.meta) };
}

async function readCaTrustDomain(path: string): Promise<TrustDomain | undefined> {
  let text: string;
  try {
    text = (await readInputFile(path, 'CA metadata')).toString('utf8');
  } catch (err) {
    if (isMissing((err as Error).cause)) return undefined;
    throw err;
  }
  let meta: unknown;
  try {
    meta = JSON.parse(text);
  } catch (cause) {
    throw caInvalid(`${path}: CA metadata is not valid JSON`, cause);
  }
  const td = (meta as { trust_domain?: unknown } | null)?.trust_domain;
  if (typeof td !== 'string') throw caInvalid(`${path}: CA metadata must have a string "trust_domain"`);
  try {
    return TrustDomain.parse(td);
  } catch (err) {
    throw new AuthError('AUTH_ERR_TRUST_DOMAIN_INVALID', `${path}: ${(err as Error).message}`, { cause: err });
  }
}

/** NewCa is a freshly made development CA and the files that hold it. */
export interface NewCa {
  ca: CertificateAuthority;
  cert: ParsedCertificate;
  files: OutputFile[];
}

/**
 * createDevCa makes a development root CA (ECDSA P-256) for `trustDomain`,
 * valid for `ttlSeconds`, allowing `pathLen` CA certificates below it (0:
 * leaves only; 1: e.g. SPIRE's CA, when this CA is SPIRE's UpstreamAuthority).
 */
export async function createDevCa(
  dir: string,
  trustDomain: TrustDomain,
  ttlSeconds: number,
  pathLen = 0,
): Promise<NewCa> {
  const ca = await CertificateAuthority.createRoot({
    subject: `CN=${trustDomain.name} development root CA`,
    ttlSeconds,
    pathLen,
  });
  const paths = caFiles(dir);
  const meta = { trust_domain: trustDomain.name };
  return {
    ca,
    cert: parseCertificate(ca.certDer),
    files: [
      { path: paths.cert, data: ca.certPem, mode: PUBLIC_FILE_MODE },
      { path: paths.key, data: await ca.keyPem(), mode: KEY_FILE_MODE },
      { path: paths.meta, data: `${JSON.stringify(meta, null, 2)}\n`, mode: PUBLIC_FILE_MODE },
    ],
  };
}
