import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { once } from 'node:events';
import * as grpc from '@grpc/grpc-js';
import { SignJWT } from 'jose';
import { JwtBundle, type JwtAuthority } from '../src/bundle/jwt-bundle.ts';
import { isAuthError, type AuthErrorCode } from '../src/errors.ts';
import { WorkloadJwtSource } from '../src/workloadapi/jwt-source.ts';
import { FakeWorkloadApi } from '@shop/auth-testing';

const AUD = ['payments'];
const keyA1 = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const keyA2 = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const keyB = generateKeyPairSync('ec', { namedCurve: 'P-256' });

function authority(keyId: string, publicKey: KeyObject): JwtAuthority {
  return { keyId, publicKey, jwk: publicKey.export({ format: 'jwk' }) };
}

const bundleA1 = new JwtBundle('a.org', [authority('a1', keyA1.publicKey)]);
const bundleA2 = new JwtBundle('a.org', [authority('a2', keyA2.publicKey)]);
const bundleB = new JwtBundle('b.org', [authority('b1', keyB.publicKey)]);

/** token signs a JWT-SVID for `sub` with `key` (kid `kid`), valid for five minutes from now. */
function token(sub: string, key: KeyObject, kid: string, aud: string | string[] = AUD): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ sub, aud, iat: now, exp: now + 300 })
    .setProtectedHeader({ alg: 'ES256', typ: 'JWT', kid })
    .sign(key);
}

async function assertCode(run: () => Promise<unknown>, code: AuthErrorCode, message?: RegExp): Promise<void> {
  await assert.rejects(run, (err: unknown) => {
    assert.ok(isAuthError(err), `expected an AuthError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    if (message) assert.match(err.message, message);
    return true;
  });
}

describe('WorkloadJwtSource', () => {
  let fake: FakeWorkloadApi;
  before(async () => {
    fake = await FakeWorkloadApi.start();
  });
  after(async () => {
    await fake.close();
  });

  test('validates locally against the streamed bundles, with ValidateJWTSVID down', async () => {
    fake.setJwtBundles([bundleA1, bundleB]);
    // If validate() called the agent, this would fail it.
    fake.setError('ValidateJWTSVID', grpc.status.UNAVAILABLE);
    const source = await WorkloadJwtSource.create({ address: fake.address, timeoutMs: 5000 });
    try {
      const good = await token('spiffe://a.org/orders', keyA1.privateKey, 'a1');
      const svid = await source.validate(good, AUD);
      assert.equal(svid.id.toString(), 'spiffe://a.org/orders');
      assert.deepEqual(svid.audience, AUD);

      const fromB = await token('spiffe://b.org/partner', keyB.privateKey, 'b1');
      assert.equal((await source.validate(fromB, AUD)).id.toString(), 'spiffe://b.org/partner');

      // Both bundles are present, yet A's key must not vouch for a subject of B.
      const forged = await token('spiffe://b.org/partner', keyA1.privateKey, 'a1');
      await assertCode(() => source.validate(forged, AUD), 'AUTH_ERR_JWT_SVID_UNTRUSTED', /trust domain "b\.org"/);

      await assertCode(() => source.validate(good, ['inventory']), 'AUTH_ERR_JWT_SVID_AUDIENCE_MISMATCH');
      assert.equal(source.getJwtBundleForTrustDomain(bundleB.trustDomain).findAuthority('b1')?.keyId, 'b1');
    } finally {
      await source.close();
      fake.clearError('ValidateJWTSVID');
    }
  });

  test('each FetchJWTBundles message replaces the whole set: removed keys and trust domains stop validating', async () => {
    fake.setJwtBundles([bundleA1, bundleB]);
    const source = await WorkloadJwtSource.create({ address: fake.address, timeoutMs: 5000 });
    try {
      const oldKey = await token('spiffe://a.org/orders', keyA1.privateKey, 'a1');
      const newKey = await token('spiffe://a.org/orders', keyA2.privateKey, 'a2');
      const fromB = await token('spiffe://b.org/partner', keyB.privateKey, 'b1');
      // positive controls before the rotation
      await source.validate(oldKey, AUD);
      await source.validate(fromB, AUD);
      await assertCode(() => source.validate(newKey, AUD), 'AUTH_ERR_JWT_SVID_UNTRUSTED', /"a2" is not in/);

      const updated = once(source, 'updated');
      fake.setJwtBundles([bundleA2]);
      await updated;

      assert.equal((await source.validate(newKey, AUD)).id.toString(), 'spiffe://a.org/orders');
      await assertCode(() => source.validate(oldKey, AUD), 'AUTH_ERR_JWT_SVID_UNTRUSTED', /"a1" is not in/);
      await assertCode(
        () => source.validate(fromB, AUD),
        'AUTH_ERR_JWT_SVID_UNTRUSTED',
        /no JWT bundle for trust domain "b\.org"/,
      );
    } finally {
      await source.close();
    }
  });

  test('an unusable bundles message is reported and the last good bundles stay in use', async () => {
    fake.setJwtBundles([bundleA1]);
    const source = await WorkloadJwtSource.create({ address: fake.address, timeoutMs: 5000 });
    try {
      const good = await token('spiffe://a.org/orders', keyA1.privateKey, 'a1');
      const loadError = once(source, 'loadError');
      fake.setJwtBundles([{ trustDomain: 'a.org', jwks: '{"keys": "not a list"}' }]);
      const [err] = (await loadError) as [unknown];
      assert.ok(isAuthError(err, 'AUTH_ERR_WORKLOAD_RESPONSE_INVALID'));
      assert.equal(source.lastError, err);
      assert.equal((await source.validate(good, AUD)).id.toString(), 'spiffe://a.org/orders');
    } finally {
      await source.close();
    }
  });

  test('fetchJwtSvid returns the parsed token of the default or the asked-for identity, with its hint', async () => {
    fake.setJwtBundles([bundleA1]);
    const orders = await token('spiffe://a.org/orders', keyA1.privateKey, 'a1');
    const billing = await token('spiffe://a.org/billing', keyA1.privateKey, 'a1');
    fake.setJwtSvids([
      { spiffeId: 'spiffe://a.org/orders', token: orders, hint: 'main' },
      { spiffeId: 'spiffe://a.org/billing', token: billing, hint: 'side' },
    ]);
    const source = await WorkloadJwtSource.create({ address: fake.address, timeoutMs: 5000 });
    try {
      const first = await source.fetchJwtSvid(AUD);
      assert.equal(first.id.toString(), 'spiffe://a.org/orders');
      assert.equal(first.hint, 'main');
      assert.equal(first.token, orders);
      assert.deepEqual(first.audience, AUD);

      const asked = await source.fetchJwtSvid(AUD, 'spiffe://a.org/billing');
      assert.equal(asked.id.toString(), 'spiffe://a.org/billing');
      assert.equal(asked.hint, 'side');

      const all = await source.fetchJwtSvids(AUD);
      assert.deepEqual(
        all.map((s) => s.id.toString()),
        ['spiffe://a.org/orders', 'spiffe://a.org/billing'],
      );

      // What we fetch, a peer sharing our bundles validates.
      assert.equal((await source.validate(first.token, AUD)).id.toString(), 'spiffe://a.org/orders');
    } finally {
      await source.close();
    }
  });

  test('fetchJwtSvid rejects a token whose sub is not the spiffe_id it came with, or minted for another audience', async () => {
    fake.setJwtBundles([bundleA1]);
    const source = await WorkloadJwtSource.create({ address: fake.address, timeoutMs: 5000 });
    try {
      const billing = await token('spiffe://a.org/billing', keyA1.privateKey, 'a1');
      fake.setJwtSvids([{ spiffeId: 'spiffe://a.org/orders', token: billing }]);
      await assertCode(
        () => source.fetchJwtSvid(AUD),
        'AUTH_ERR_WORKLOAD_RESPONSE_INVALID',
        /spiffe_id spiffe:\/\/a\.org\/orders does not match the token's "sub" spiffe:\/\/a\.org\/billing/,
      );

      const other = await token('spiffe://a.org/orders', keyA1.privateKey, 'a1', 'inventory');
      fake.setJwtSvids([{ spiffeId: 'spiffe://a.org/orders', token: other }]);
      await assertCode(() => source.fetchJwtSvid(AUD), 'AUTH_ERR_WORKLOAD_RESPONSE_INVALID', /audience/);
    } finally {
      await source.close();
    }
  });

  test('before the first bundles validate() fails with AUTH_ERR_SOURCE_NOT_READY, then works', async () => {
    const empty = await FakeWorkloadApi.start();
    const source = WorkloadJwtSource.open({ address: empty.address, timeoutMs: 5000 });
    try {
      const good = await token('spiffe://a.org/orders', keyA1.privateKey, 'a1');
      assert.equal(source.isReady, false);
      await assertCode(() => source.validate(good, AUD), 'AUTH_ERR_SOURCE_NOT_READY');
      empty.setJwtBundles([bundleA1]);
      await source.ready();
      assert.equal((await source.validate(good, AUD)).id.toString(), 'spiffe://a.org/orders');
    } finally {
      await source.close();
      await empty.close();
    }
  });

  test('create() rejects with AUTH_ERR_WORKLOAD_TIMEOUT when no bundles arrive', async () => {
    const empty = await FakeWorkloadApi.start();
    try {
      await assertCode(
        () => WorkloadJwtSource.create({ address: empty.address, timeoutMs: 200 }),
        'AUTH_ERR_WORKLOAD_TIMEOUT',
        /no JWT bundles from the Workload API at unix:\/\/.* within 200 ms/,
      );
    } finally {
      await empty.close();
    }
  });

  test('after close() updates are ignored and the stream is released', async () => {
    fake.setJwtBundles([bundleA1]);
    const source = await WorkloadJwtSource.create({ address: fake.address, timeoutMs: 5000 });
    await fake.waitFor(() => fake.openStreams('FetchJWTBundles') === 1, 'the bundles stream');
    await source.close();
    await source.close();
    assert.equal(source.isClosed, true);
    await fake.waitFor(() => fake.openStreams('FetchJWTBundles') === 0, 'the bundles stream to close');
    fake.setJwtBundles([bundleA2]);
    const good = await token('spiffe://a.org/orders', keyA1.privateKey, 'a1');
    assert.equal((await source.validate(good, AUD)).id.toString(), 'spiffe://a.org/orders');
  });

  test('close() before the first bundles rejects ready() with AUTH_ERR_SOURCE_CLOSED', async () => {
    const empty = await FakeWorkloadApi.start();
    try {
      const source = WorkloadJwtSource.open({ address: empty.address, timeoutMs: 5000 });
      await source.close();
      await assertCode(() => source.ready(), 'AUTH_ERR_SOURCE_CLOSED');
    } finally {
      await empty.close();
    }
  });
});
