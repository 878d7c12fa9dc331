import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { isAuthError } from '../src/errors.ts';
import { X509Svid } from '../src/svid/x509-svid.ts';
import { KeyUsage, createTestTrustDomain, type TestTrustDomain } from '@shop/auth-testing';

describe('X509Svid: our own SVID from a DER chain + PKCS#8 key', () => {
  let td: TestTrustDomain;
  before(async () => {
    td = await createTestTrustDomain('example.org');
  });

  test('parses concatenated DER, separate DER and PEM alike (positive control)', async () => {
    const inter = await td.ca.issueIntermediate();
    const issued = await inter.issueSvid('spiffe://example.org/payment', { dnsNames: ['payment'] });
    const fromConcat = X509Svid.fromDer(Buffer.concat(issued.chainDer), issued.keyDer, 'internal');
    const fromList = X509Svid.fromDer(issued.chainDer, issued.keyDer);
    const fromPem = X509Svid.fromPem(issued.certPem, issued.keyPem);
    for (const svid of [fromConcat, fromList, fromPem]) {
      assert.equal(svid.id.toString(), 'spiffe://example.org/payment');
      assert.equal(svid.certificates.length, 2);
      assert.ok(svid.secondsToExpiry() > 3000);
    }
    assert.equal(fromConcat.hint, 'internal');
    assert.equal(
      X509Svid.fromPem(fromPem.certChainPem(), fromPem.privateKeyPem()).id.toString(),
      fromPem.id.toString(),
    );
  });

  const rules: [string, () => Promise<{ chain: Buffer[]; key: Buffer }>, string, string][] = [
    [
      'no URI SAN',
      async () => pair(await td.issue('/x', { uris: [], dnsNames: ['x'] })),
      'AUTH_ERR_SVID_INVALID',
      'no URI SAN',
    ],
    [
      'two URI SANs',
      async () => pair(await td.issue('/x', { uris: ['spiffe://example.org/a', 'spiffe://example.org/b'] })),
      'AUTH_ERR_SVID_INVALID',
      'more than one URI SAN',
    ],
    [
      'root path',
      async () => pair(await td.issue('/x', { uris: ['spiffe://example.org'] })),
      'AUTH_ERR_SVID_INVALID',
      'has no path',
    ],
    [
      'leaf is a CA',
      async () => pair(await td.issue('/x', { isCA: true, keyUsage: KeyUsage.digitalSignature })),
      'AUTH_ERR_SVID_INVALID',
      'CA flag',
    ],
    [
      'no digitalSignature',
      async () => pair(await td.issue('/x', { keyUsage: KeyUsage.keyAgreement })),
      'AUTH_ERR_SVID_INVALID',
      'digitalSignature',
    ],
    [
      'keyCertSign',
      async () => pair(await td.issue('/x', { keyUsage: KeyUsage.digitalSignature | KeyUsage.keyCertSign })),
      'AUTH_ERR_SVID_INVALID',
      'keyCertSign',
    ],
    [
      'cRLSign',
      async () => pair(await td.issue('/x', { keyUsage: KeyUsage.digitalSignature | KeyUsage.cRLSign })),
      'AUTH_ERR_SVID_INVALID',
      'cRLSign',
    ],
    [
      'intermediate is not a CA',
      async () => {
        const notCa = await td.ca.issueIntermediate({ isCA: false });
        return pair(await notCa.issueSvid('spiffe://example.org/x'));
      },
      'AUTH_ERR_SVID_INVALID',
      'CA flag set to true',
    ],
    [
      'key does not match the leaf',
      async () => {
        const a = await td.issue('/a');
        const b = await td.issue('/b');
        return { chain: a.chainDer, key: b.keyDer };
      },
      'AUTH_ERR_KEY_MISMATCH',
      'does not match',
    ],
    [
      'key is not PKCS#8',
      async () => ({ chain: (await td.issue('/x')).chainDer, key: Buffer.from('not a key') }),
      'AUTH_ERR_KEY_INVALID',
      'PKCS#8',
    ],
    [
      'chain is not DER',
      async () => ({ chain: [Buffer.from([0x30, 0x03, 1, 2, 3])], key: (await td.issue('/x')).keyDer }),
      'AUTH_ERR_CERT_INVALID',
      'could not be parsed',
    ],
    [
      'truncated DER',
      async () => ({ chain: [(await td.issue('/x')).certDer.subarray(0, 50)], key: (await td.issue('/x')).keyDer }),
      'AUTH_ERR_CERT_INVALID',
      'truncated',
    ],
    [
      'empty chain',
      async () => ({ chain: [], key: (await td.issue('/x')).keyDer }),
      'AUTH_ERR_SVID_INVALID',
      'no certificate',
    ],
  ];
  for (const [name, make, code, fragment] of rules) {
    test(`rejects: ${name}`, async () => {
      const { chain, key } = await make();
      const concat = name === 'truncated DER' ? chain[0]! : chain;
      assert.throws(
        () => X509Svid.fromDer(concat, key),
        (err: unknown) => isAuthError(err, code as never) && err.message.includes(fragment),
      );
    });
  }

  test('PEM without the expected block names what it found', async () => {
    const issued = await td.issue('/x');
    assert.throws(
      () => X509Svid.fromPem(issued.keyPem, issued.keyPem),
      (e: unknown) => isAuthError(e, 'AUTH_ERR_PEM_INVALID') && e.message.includes('PRIVATE KEY'),
    );
    assert.throws(
      () => X509Svid.fromPem(issued.certPem, 'garbage'),
      (e: unknown) => isAuthError(e, 'AUTH_ERR_PEM_INVALID') && e.message.includes('no PEM blocks'),
    );
  });
});

function pair(i: { chainDer: Buffer[]; keyDer: Buffer }): { chain: Buffer[]; key: Buffer } {
  return { chain: i.chainDer, key: i.keyDer };
}
