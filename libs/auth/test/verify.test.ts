import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { before, describe, test } from 'node:test';
import { X509BundleSet } from '../src/bundle/x509-bundle.ts';
import { isAuthError } from '../src/errors.ts';
import { verifyX509Svid } from '../src/verify/x509-verify.ts';
import { buildPeerCases, type PeerCaseWorld } from '@shop/auth-testing';

describe("verifyX509Svid: the bundle of the peer's own trust domain, never a pool", () => {
  let world: PeerCaseWorld;
  let bundles: X509BundleSet;
  before(async () => {
    world = await buildPeerCases();
    bundles = new X509BundleSet([world.example.bundle, world.partner.bundle]);
  });

  test('every case, positive controls first, with the peer as client and as server', () => {
    assert.ok(world.cases[0]?.accept, 'the first case is a positive control');
    for (const peerRole of ['client', 'server'] as const) {
      for (const c of world.cases) {
        const name = `${c.name} (peer is the ${peerRole})`;
        if (c.accept) {
          const peer = verifyX509Svid(c.cert.chainDer, bundles, { peerRole });
          assert.ok(peer.id.toString().startsWith('spiffe://'), name);
          assert.ok(peer.chain.length >= 2, `${name}: chain ends at a trust anchor`);
        } else {
          assert.throws(
            () => verifyX509Svid(c.cert.chainDer, bundles, { peerRole }),
            (err: unknown) =>
              isAuthError(err, 'AUTH_ERR_PEER_UNVERIFIED') && err.message.includes(c.expect ?? '')
                ? true
                : assert.fail(`${name}: ${String(err)}`),
            name,
          );
        }
      }
    }
  });

  test('a pooled CA list would have accepted the forged partner certificate; the per-domain check does not', () => {
    const forged = world.cases.find((c) => c.name.startsWith('claims partner.example'));
    assert.ok(forged);
    // Positive control: the forged leaf really is signed by example.org's CA.
    const leaf = forged.cert.chainDer[0]!;
    assert.equal(new X509Certificate(leaf).verify(new X509Certificate(world.example.ca.certDer).publicKey), true);
    assert.throws(() => verifyX509Svid(forged.cert.chainDer, bundles, { peerRole: 'client' }), /does not chain/);
  });

  test('no certificate at all is its own error', () => {
    assert.throws(
      () => verifyX509Svid([], bundles, { peerRole: 'client' }),
      (e: unknown) => isAuthError(e, 'AUTH_ERR_PEER_NO_CERTIFICATE'),
    );
  });

  test('a removed CA stops being trusted', () => {
    const valid = world.cases[0]!;
    assert.equal(
      verifyX509Svid(valid.cert.chainDer, bundles, { peerRole: 'client' }).id.toString(),
      'spiffe://example.org/peer',
    );
    const without = new X509BundleSet([world.rogue.bundle, world.partner.bundle]);
    assert.throws(() => verifyX509Svid(valid.cert.chainDer, without, { peerRole: 'client' }), /does not chain/);
  });

  test('validity is judged at the time given', () => {
    const valid = world.cases[0]!;
    assert.ok(verifyX509Svid(valid.cert.chainDer, bundles, { peerRole: 'client', now: new Date() }));
    assert.throws(
      () =>
        verifyX509Svid(valid.cert.chainDer, bundles, {
          peerRole: 'client',
          now: new Date(Date.now() + 2 * 86_400_000),
        }),
      /expired/,
    );
  });
});
