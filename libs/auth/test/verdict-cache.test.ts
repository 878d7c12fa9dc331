import 'reflect-metadata';
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import * as x509 from '@peculiar/x509';
import { createTestTrustDomain, type IssuedCertificate, type TestTrustDomain } from '@shop/auth-testing';
import { X509BundleSet, type X509BundleSource } from '../src/bundle/x509-bundle.ts';
import { isAuthError } from '../src/errors.ts';
import { DEFAULT_VERDICT_CACHE_SIZE, VerdictCache } from '../src/verify/verdict-cache.ts';

const unverified = (e: unknown): boolean => isAuthError(e, 'AUTH_ERR_PEER_UNVERIFIED');

describe('VerdictCache: a verified chain costs a lookup until its bundle changes or a certificate expires', () => {
  let td: TestTrustDomain;
  let other: TestTrustDomain;
  let peer: IssuedCertificate;
  let bundles: X509BundleSet;
  before(async () => {
    td = await createTestTrustDomain('example.org');
    other = await createTestTrustDomain('example.org');
    peer = await td.issue('/peer', { ttlSeconds: 600 });
    bundles = new X509BundleSet([td.bundle]);
  });

  test('positive control: an unchanged bundle serves the second verification from the cache, counted', () => {
    const cache = new VerdictCache();
    const first = cache.verify(peer.chainDer, bundles, { peerRole: 'client' });
    assert.equal(first.id.toString(), 'spiffe://example.org/peer');
    assert.deepEqual(cache.stats(), {
      hits: 0,
      misses: 1,
      evictions: 0,
      size: 1,
      maxEntries: DEFAULT_VERDICT_CACHE_SIZE,
    });
    const second = cache.verify(peer.chainDer, bundles, { peerRole: 'client' });
    assert.equal(second, first, 'the very verdict of the first verification');
    assert.equal(cache.stats().hits, 1);
    // Equal bytes in other buffers are the same chain.
    cache.verify(
      peer.chainDer.map((c) => Buffer.from(c)),
      bundles,
      { peerRole: 'client' },
    );
    assert.equal(cache.stats().hits, 2);
  });

  test('a bundle change invalidates: the new bundles no longer trust the CA, and the verdict is not served', () => {
    const cache = new VerdictCache();
    cache.verify(peer.chainDer, bundles, { peerRole: 'client' });
    const distrusting = new X509BundleSet([other.bundle]);
    assert.notEqual(distrusting.generation, bundles.generation);
    assert.throws(() => cache.verify(peer.chainDer, distrusting, { peerRole: 'client' }), unverified);
    assert.deepEqual([cache.stats().hits, cache.stats().misses], [0, 2]);
  });

  test('a new bundle set with the same CA is a new generation: verified once more, then served again', () => {
    const cache = new VerdictCache();
    cache.verify(peer.chainDer, bundles, { peerRole: 'client' });
    const republished = new X509BundleSet([td.bundle]);
    cache.verify(peer.chainDer, republished, { peerRole: 'client' });
    cache.verify(peer.chainDer, republished, { peerRole: 'client' });
    assert.deepEqual([cache.stats().hits, cache.stats().misses], [1, 2]);
  });

  test('a certificate reaching notAfter invalidates: served just before, refused just after', () => {
    const cache = new VerdictCache();
    const notAfter = cache.verify(peer.chainDer, bundles, { peerRole: 'client' }).certificate.validToDate;
    cache.verify(peer.chainDer, bundles, { peerRole: 'client', now: notAfter });
    assert.equal(cache.stats().hits, 1, 'positive control: still served at notAfter itself');
    assert.throws(
      () => cache.verify(peer.chainDer, bundles, { peerRole: 'client', now: new Date(notAfter.getTime() + 1000) }),
      (e: unknown) => unverified(e) && /expired/.test((e as Error).message),
    );
    assert.equal(cache.stats().hits, 1);
  });

  test('an intermediate that expires before the leaf ends the verdict at its own notAfter', async () => {
    const intermediate = await td.ca.issueIntermediate({ subject: 'CN=short intermediate', ttlSeconds: 120 });
    const leaf = await intermediate.issueSvid('spiffe://example.org/nested', { ttlSeconds: 3600 });
    const cache = new VerdictCache();
    const verified = cache.verify(leaf.chainDer, bundles, { peerRole: 'server' });
    assert.equal(verified.chain.length, 3, 'leaf, intermediate, root');
    const intermediateEnd = verified.chain[1]!.validToDate.getTime();
    cache.verify(leaf.chainDer, bundles, { peerRole: 'server', now: new Date(intermediateEnd - 1000) });
    assert.equal(cache.stats().hits, 1, 'positive control: served while the intermediate is valid');
    assert.throws(
      () => cache.verify(leaf.chainDer, bundles, { peerRole: 'server', now: new Date(intermediateEnd + 1000) }),
      unverified,
    );
  });

  test('a chain that failed verification is not cached, as good or as bad', async () => {
    const cache = new VerdictCache();
    const stranger = await other.issue('/stranger');
    for (let i = 0; i < 2; i++) {
      assert.throws(() => cache.verify(stranger.chainDer, bundles, { peerRole: 'client' }), unverified);
    }
    assert.deepEqual(cache.stats(), {
      hits: 0,
      misses: 2,
      evictions: 0,
      size: 0,
      maxEntries: DEFAULT_VERDICT_CACHE_SIZE,
    });
    // Positive control: the same cache does keep a chain that verifies.
    cache.verify(peer.chainDer, bundles, { peerRole: 'client' });
    assert.equal(cache.stats().size, 1);
  });

  test('the peer role is part of the key: a client-only leaf verified as client is still refused as server', async () => {
    const clientOnly = await td.issue('/client-only', {
      extraExtensions: [new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth])],
    });
    const cache = new VerdictCache();
    cache.verify(clientOnly.chainDer, bundles, { peerRole: 'client' });
    assert.throws(
      () => cache.verify(clientOnly.chainDer, bundles, { peerRole: 'server' }),
      (e: unknown) => unverified(e) && /serverAuth/.test((e as Error).message),
    );
  });

  test('the bound evicts the least recently used verdict', async () => {
    const cache = new VerdictCache({ maxEntries: 2 });
    const a = peer;
    const b = await td.issue('/b');
    const c = await td.issue('/c');
    cache.verify(a.chainDer, bundles, { peerRole: 'client' });
    cache.verify(b.chainDer, bundles, { peerRole: 'client' });
    cache.verify(a.chainDer, bundles, { peerRole: 'client' }); // a is now the most recent
    cache.verify(c.chainDer, bundles, { peerRole: 'client' }); // evicts b
    assert.deepEqual(cache.stats(), { hits: 1, misses: 3, evictions: 1, size: 2, maxEntries: 2 });
    cache.verify(a.chainDer, bundles, { peerRole: 'client' });
    assert.equal(cache.stats().hits, 2, 'a stayed');
    cache.verify(b.chainDer, bundles, { peerRole: 'client' });
    assert.equal(cache.stats().misses, 4, 'b was evicted and verified again');
  });

  test('maxEntries 0 turns caching off; other bundle sources are always verified in full', () => {
    const off = new VerdictCache({ maxEntries: 0 });
    off.verify(peer.chainDer, bundles, { peerRole: 'client' });
    off.verify(peer.chainDer, bundles, { peerRole: 'client' });
    assert.deepEqual([off.stats().hits, off.stats().misses, off.stats().size], [0, 2, 0]);
    const custom: X509BundleSource = { getX509BundleForTrustDomain: () => td.bundle };
    const cache = new VerdictCache();
    cache.verify(peer.chainDer, custom, { peerRole: 'client' });
    cache.verify(peer.chainDer, custom, { peerRole: 'client' });
    assert.deepEqual([cache.stats().hits, cache.stats().misses], [0, 2]);
  });

  test('maxEntries must be a non-negative integer', () => {
    for (const bad of [-1, 1.5, Number.NaN]) {
      assert.throws(
        () => new VerdictCache({ maxEntries: bad }),
        (e: unknown) => isAuthError(e, 'AUTH_ERR_CONFIG_INVALID'),
      );
    }
    assert.equal(new VerdictCache({ maxEntries: 10 }).maxEntries, 10);
  });
});
