// The bench's PKI: a test CA made at run time (never committed), one SVID
// for the servers and one for the clients, also written to temporary files
// for the file source, the raw Node variants and the Go peer.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createTestTrustDomain, type CertificateOptions, type TestTrustDomain } from '@shop/auth-testing';

/** SERVER_ID and CLIENT_ID are the SPIFFE IDs the bench's servers and clients hold. */
export const SERVER_ID = 'spiffe://example.org/bench-server';
export const CLIENT_ID = 'spiffe://example.org/bench-client';

/** PemPair is a certificate chain and its key, as PEM. */
export interface PemPair {
  certPem: string;
  keyPem: string;
}

/** PemFiles are the paths of one identity's files. */
export interface PemFiles {
  certFile: string;
  keyFile: string;
  caFile: string;
}

/** BenchPki is the trust domain and the two identities every scenario uses. */
export interface BenchPki {
  td: TestTrustDomain;
  caPem: string;
  server: PemPair;
  client: PemPair;
  serverFiles: PemFiles;
  clientFiles: PemFiles;
  /** issue makes a fresh SVID for `id` (rotation). */
  issue(id: string, options?: CertificateOptions): Promise<PemPair>;
}

/** createBenchPki makes the CA and both identities, and writes them to `dir`. */
export async function createBenchPki(dir: string): Promise<BenchPki> {
  const td = await createTestTrustDomain('example.org');
  const issue = async (id: string, options: CertificateOptions = {}): Promise<PemPair> => {
    const c = await td.ca.issueSvid(id, options);
    return { certPem: c.certPem, keyPem: c.keyPem };
  };
  const [server, client] = await Promise.all([issue(SERVER_ID), issue(CLIENT_ID)]);
  const caFile = join(dir, 'ca.crt.pem');
  await writeFile(caFile, td.ca.certPem);
  const files = async (name: string, pair: PemPair): Promise<PemFiles> => {
    const certFile = join(dir, `${name}.crt.pem`);
    const keyFile = join(dir, `${name}.key.pem`);
    await writeFile(certFile, pair.certPem);
    await writeFile(keyFile, pair.keyPem, { mode: 0o600 });
    return { certFile, keyFile, caFile };
  };
  return {
    td,
    caPem: td.ca.certPem,
    server,
    client,
    serverFiles: await files('server', server),
    clientFiles: await files('client', client),
    issue,
  };
}

/**
 * checkSpiffeUri is a raw Node `checkServerIdentity`: SVIDs carry a URI SAN
 * and no DNS name, so Node's hostname check would refuse them; the raw
 * variants check the URI SAN instead, the least a raw client must do.
 */
export function checkSpiffeUri(
  expected: string,
): (host: string, cert: { subjectaltname?: string }) => Error | undefined {
  const want = `URI:${expected}`;
  return (_host, cert) =>
    (cert.subjectaltname ?? '').split(', ').includes(want)
      ? undefined
      : new Error(`server is not ${expected} (${cert.subjectaltname ?? 'no SAN'})`);
}
