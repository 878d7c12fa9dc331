import { KeyUsage, type IssuedCertificate } from '@shop/spiffe-auth-cli/dev-ca';
import { createTestTrustDomain, type TestTrustDomain } from './test-ca.ts';

/** PeerCase is one certificate a peer might present, and whether SPIFFE verification must accept it. */
export interface PeerCase {
  name: string;
  accept: boolean;
  /** expect is a fragment of the rejection message. */
  expect?: string;
  cert: IssuedCertificate;
}

/** PeerCaseWorld is the trust setup the cases are built against. */
export interface PeerCaseWorld {
  /** example is example.org, the verifier's own trust domain. */
  example: TestTrustDomain;
  /** partner is partner.example, federated (its bundle is held too). */
  partner: TestTrustDomain;
  /** rogue is a second CA that also calls itself example.org but is not in any bundle. */
  rogue: TestTrustDomain;
  cases: PeerCase[];
}

const HOUR = 3_600_000;

/**
 * buildPeerCases issues every certificate the X.509-SVID rules must accept or
 * reject, positive controls first, so a verifier that rejects everything
 * fails as loudly as one that accepts everything.
 */
export async function buildPeerCases(path = '/peer'): Promise<PeerCaseWorld> {
  const example = await createTestTrustDomain('example.org');
  const partner = await createTestTrustDomain('partner.example');
  const rogue = await createTestTrustDomain('example.org');
  const inter = await example.ca.issueIntermediate();
  const interNoCa = await example.ca.issueIntermediate({ isCA: false, keyUsage: KeyUsage.keyCertSign });
  const id = `spiffe://example.org${path}`;
  const now = Date.now();
  const ds = KeyUsage.digitalSignature;
  const c = async (
    name: string,
    accept: boolean,
    cert: Promise<IssuedCertificate>,
    expect?: string,
  ): Promise<PeerCase> => ({ name, accept, cert: await cert, expect });
  const cases = await Promise.all([
    c('valid SVID (positive control)', true, example.issue(path)),
    c(
      'SVID with DNS SANs and an empty subject',
      true,
      example.issue(path, { dnsNames: ['localhost', 'peer.svc'], subject: '' }),
    ),
    c('SVID with a subject DN', true, example.issue(path, { subject: 'CN=peer,O=Example' })),
    c('SVID through an intermediate CA', true, inter.issueSvid(id)),
    c('federated partner SVID checked against the partner bundle', true, partner.issue('/reader')),
    c(
      'expired',
      false,
      example.issue(path, { notBefore: new Date(now - 2 * HOUR), notAfter: new Date(now - HOUR) }),
      'expired',
    ),
    c(
      'not yet valid',
      false,
      example.issue(path, { notBefore: new Date(now + HOUR), notAfter: new Date(now + 2 * HOUR) }),
      'not valid before',
    ),
    c('signed by an untrusted CA of the same name', false, rogue.issue(path), 'does not chain'),
    c(
      'claims partner.example but is signed by the example.org CA',
      false,
      example.ca.issueSvid('spiffe://partner.example/reader'),
      'does not chain',
    ),
    c('trust domain with no bundle', false, example.ca.issueSvid('spiffe://unknown.example/x'), 'no X.509 bundle'),
    c('leaf with the CA flag', false, example.issue(path, { isCA: true, keyUsage: ds }), 'CA flag'),
    c('leaf with keyCertSign', false, example.issue(path, { keyUsage: ds | KeyUsage.keyCertSign }), 'keyCertSign'),
    c('leaf with cRLSign', false, example.issue(path, { keyUsage: ds | KeyUsage.cRLSign }), 'cRLSign'),
    c(
      'leaf without digitalSignature',
      false,
      example.issue(path, { keyUsage: KeyUsage.keyEncipherment }),
      'digitalSignature',
    ),
    c('leaf without a key usage extension', false, example.issue(path, { keyUsage: null }), 'digitalSignature'),
    c('no URI SAN', false, example.issue(path, { uris: [], dnsNames: ['peer.svc'] }), 'no URI SAN'),
    c(
      'two URI SANs',
      false,
      example.issue(path, { uris: [id, 'spiffe://example.org/other'] }),
      'more than one URI SAN',
    ),
    c('non-spiffe URI SAN', false, example.issue(path, { uris: ['https://example.org/peer'] }), 'not a SPIFFE ID'),
    c('root-path SPIFFE ID', false, example.issue(path, { uris: ['spiffe://example.org'] }), 'has no path'),
    c('intermediate that is not a CA', false, interNoCa.issueSvid(id), 'not a CA'),
  ]);
  return { example, partner, rogue, cases };
}
