import {
  CertificateAuthority,
  KeyUsage,
  type CertificateOptions,
  type IssuedCertificate,
} from '@shop/spiffe-auth-cli/dev-ca';
import { X509Bundle, X509Svid } from '@shop/auth';

/** TestTrustDomain is a trust domain with its own root CA, for tests. */
export interface TestTrustDomain {
  name: string;
  ca: CertificateAuthority;
  bundle: X509Bundle;
  /** svid issues an X509Svid for `path` (e.g. "/payment") in this trust domain. */
  svid(path: string, options?: CertificateOptions): Promise<X509Svid>;
  /** issue issues raw certificate material for `path`, allowing any odd option. */
  issue(path: string, options?: CertificateOptions): Promise<IssuedCertificate>;
}

/** createTestTrustDomain makes a fresh root CA for `name`; nothing is ever written to disk. */
export async function createTestTrustDomain(
  name = 'example.org',
  options: CertificateOptions = {},
): Promise<TestTrustDomain> {
  const ca = await CertificateAuthority.createRoot({ subject: `CN=${name} test root`, ttlSeconds: 86_400, ...options });
  const bundle = new X509Bundle(name, [ca.certDer]);
  const issue = (path: string, o: CertificateOptions = {}): Promise<IssuedCertificate> =>
    ca.issueSvid(`spiffe://${name}${path}`, o);
  return {
    name,
    ca,
    bundle,
    issue,
    async svid(path, o) {
      const issued = await issue(path, o);
      return X509Svid.fromDer(issued.chainDer, issued.keyDer);
    },
  };
}

export { CertificateAuthority, KeyUsage, type CertificateOptions, type IssuedCertificate };
