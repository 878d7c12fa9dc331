import assert from 'node:assert/strict';
import { once } from 'node:events';
import { rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { isAuthError, type AuthError } from '../src/errors.ts';
import { createIdentitySource } from '../src/source/create-identity-source.ts';
import { TrustBridgeSource } from '../src/source/trust-bridge-source.ts';
import { verifyX509Svid } from '../src/verify/x509-verify.ts';
import type { X509Svid } from '../src/svid/x509-svid.ts';
import { MemorySource, makeTempDir, createTestTrustDomain, type TestTrustDomain } from '@shop/auth-testing';

// Two CAs of one trust domain, as in a migration: the static files' CA and SPIRE's.
describe('TrustBridgeSource (migration between two CAs of one trust domain)', () => {
  let staticCa: TestTrustDomain;
  let spireCa: TestTrustDomain;
  let partner: TestTrustDomain;
  let dir: string;
  let cleanup: () => Promise<void>;
  let n = 0;
  before(async () => {
    staticCa = await createTestTrustDomain('example.org');
    spireCa = await createTestTrustDomain('example.org');
    partner = await createTestTrustDomain('partner.example');
    ({ dir, cleanup } = await makeTempDir());
  });
  after(() => cleanup());

  async function bridgeFile(text: string): Promise<string> {
    const p = join(dir, `bridge${String(++n)}.pem`);
    await writeFile(p, text);
    return p;
  }
  const accepts = (source: TrustBridgeSource, peer: X509Svid): string =>
    verifyX509Svid(peer.chainDer(), source, { peerRole: 'client' }).id.toString();

  test('a SPIRE-side service accepts a static-CA peer while bridged, and refuses it once the file is emptied', async () => {
    const ours = await spireCa.svid('/payment');
    const inner = MemorySource.create(ours, [spireCa.bundle, partner.bundle], { kind: 'spiffe' });
    const file = await bridgeFile(staticCa.ca.certPem);
    const bridge = await TrustBridgeSource.create({ inner, caFile: file, reloadIntervalMs: 50 });
    try {
      const spirePeer = await spireCa.svid('/order');
      const staticPeer = await staticCa.svid('/order');
      // Positive controls: a peer of the source's own CA, and the static peer while bridged.
      assert.equal(accepts(bridge, spirePeer), 'spiffe://example.org/order');
      assert.equal(accepts(bridge, staticPeer), 'spiffe://example.org/order');
      assert.equal(bridge.extraRoots, 1);
      assert.equal(bridge.kind, 'spiffe');
      // Only our own trust domain grows: partner's bundle is as it was.
      const partnerPeer = await partner.svid('/reader');
      assert.equal(accepts(bridge, partnerPeer), 'spiffe://partner.example/reader');
      const claimsPartner = await staticCa.svid('/reader', { uris: ['spiffe://partner.example/reader'] });
      assert.throws(
        () => accepts(bridge, claimsPartner),
        (e: AuthError) => e.code === 'AUTH_ERR_PEER_UNVERIFIED',
      );

      // The last step of the migration: the file emptied, picked up without a restart.
      const rotated = once(bridge, 'rotated');
      await rename(await bridgeFile(''), file);
      await rotated;
      assert.equal(bridge.extraRoots, 0);
      assert.throws(
        () => accepts(bridge, staticPeer),
        (e: AuthError) => e.code === 'AUTH_ERR_PEER_UNVERIFIED',
      );
      assert.equal(accepts(bridge, spirePeer), 'spiffe://example.org/order');
    } finally {
      await bridge.close();
    }
  });

  test("the inner source's rotations keep the bridge: a new SVID and bundle, still plus the file's roots", async () => {
    const inner = MemorySource.create(await spireCa.svid('/payment'), [spireCa.bundle]);
    const bridge = await TrustBridgeSource.create({ inner, caFile: await bridgeFile(staticCa.ca.certPem) });
    try {
      const newSpire = await createTestTrustDomain('example.org');
      const next = await newSpire.svid('/payment');
      const rotated = once(bridge, 'rotated');
      inner.set(next, [newSpire.bundle]);
      await rotated;
      assert.equal(bridge.getX509Svid(), next);
      assert.equal(accepts(bridge, await newSpire.svid('/order')), 'spiffe://example.org/order');
      assert.equal(accepts(bridge, await staticCa.svid('/order')), 'spiffe://example.org/order');
      // The old SPIRE CA left the inner bundle, so it left the bridged one too.
      const oldSpirePeer = await spireCa.svid('/order');
      assert.throws(
        () => accepts(bridge, oldSpirePeer),
        (e: AuthError) => e.code === 'AUTH_ERR_PEER_UNVERIFIED',
      );
    } finally {
      await bridge.close();
    }
  });

  test('a broken file is refused at start with a clear code, and at reload keeps the last good roots', async () => {
    const inner = MemorySource.create(await spireCa.svid('/payment'), [spireCa.bundle]);
    await assert.rejects(
      TrustBridgeSource.create({ inner, caFile: await bridgeFile('not a certificate') }),
      (e: AuthError) => isAuthError(e) && e.code === 'AUTH_ERR_BUNDLE_INVALID' && e.message.includes('PEM'),
    );
    await assert.rejects(
      TrustBridgeSource.create({ inner, caFile: join(dir, 'missing.pem') }),
      (e: AuthError) => e.code === 'AUTH_ERR_FILE_UNREADABLE' && e.message.includes('missing.pem'),
    );
    const file = await bridgeFile(staticCa.ca.certPem);
    const bridge = await TrustBridgeSource.create({ inner, caFile: file, reloadIntervalMs: 50 });
    try {
      const failed = once(bridge, 'loadError') as Promise<[AuthError]>;
      await rename(await bridgeFile('-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n'), file);
      const [err] = await failed;
      assert.equal(err.code, 'AUTH_ERR_BUNDLE_INVALID');
      assert.equal(bridge.extraRoots, 1);
      assert.equal(accepts(bridge, await staticCa.svid('/order')), 'spiffe://example.org/order');
    } finally {
      await bridge.close();
    }
  });

  test('createIdentitySource bridges when TRUST_BRIDGE_CA_FILE is set, and only then', async () => {
    const issued = await staticCa.issue('/order');
    const p = {
      TLS_CERT_FILE: await bridgeFile(issued.certPem),
      TLS_KEY_FILE: await bridgeFile(issued.keyPem),
      TLS_CA_FILE: await bridgeFile(staticCa.ca.certPem),
    };
    const spirePeer = await spireCa.svid('/payment');
    const plain = await createIdentitySource({ env: p });
    try {
      assert.throws(
        () => verifyX509Svid(spirePeer.chainDer(), plain, { peerRole: 'client' }),
        (e: AuthError) => e.code === 'AUTH_ERR_PEER_UNVERIFIED',
      );
    } finally {
      await plain.close();
    }
    const lines: string[] = [];
    const bridged = await createIdentitySource({
      env: { ...p, TRUST_BRIDGE_CA_FILE: await bridgeFile(spireCa.ca.certPem) },
      log: (l) => lines.push(l),
    });
    try {
      assert.ok(bridged instanceof TrustBridgeSource);
      assert.equal(
        verifyX509Svid(spirePeer.chainDer(), bridged, { peerRole: 'client' }).id.toString(),
        'spiffe://example.org/payment',
      );
      assert.ok(
        lines.some((l) => l.startsWith('trust bridged:')),
        lines.join('\n'),
      );
    } finally {
      await bridged.close();
    }
  });
});
