import { generateKeyPairSync, type X509Certificate } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { before, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { X509Bundle, type X509BundleSet } from '../src/bundle/x509-bundle.ts';
import { AuthError, type AuthErrorCode } from '../src/errors.ts';
import type { X509Svid } from '../src/svid/x509-svid.ts';
import { Backoff } from '../src/workloadapi/backoff.ts';
import {
  SECURITY_HEADER,
  WorkloadApiClient,
  workloadApiDefinition,
  type Watcher,
  type WorkloadApiClientOptions,
  type X509Context,
} from '../src/workloadapi/client.ts';
import { FakeWorkloadApi, createTestTrustDomain, rawX509Svid, type TestTrustDomain } from '@shop/auth-testing';

// Short delays keep reconnect tests fast; random 1 makes "equal" jitter return
// the full delay, so the gaps between attempts have a known lower bound.
const FAST = { initialMs: 40, maxMs: 160, random: () => 1 };

let td: TestTrustDomain;
let partner: TestTrustDomain;
let other: TestTrustDomain;
let svidA: X509Svid;
let svidB: X509Svid;
let svidA2: X509Svid;
let partnerSvid: X509Svid;

before(async () => {
  [td, partner, other] = await Promise.all([
    createTestTrustDomain('example.org'),
    createTestTrustDomain('partner.org'),
    createTestTrustDomain('other.org'),
  ]);
  [svidA, svidB, svidA2, partnerSvid] = await Promise.all([
    td.svid('/a'),
    td.svid('/b'),
    td.svid('/a'),
    partner.svid('/x'),
  ]);
});

async function startFake(t: TestContext, options?: { listen?: boolean }): Promise<FakeWorkloadApi> {
  const fake = await FakeWorkloadApi.start(options);
  t.after(() => fake.close());
  return fake;
}

function newClient(t: TestContext, fake: FakeWorkloadApi, options: WorkloadApiClientOptions = {}): WorkloadApiClient {
  const client = new WorkloadApiClient({ address: fake.address, backoff: FAST, ...options });
  t.after(() => client.close());
  return client;
}

/** Recorder collects what a watch reports and lets a test wait for the next item. */
class Recorder<T> implements Watcher<T> {
  readonly updates: T[] = [];
  readonly errors: AuthError[] = [];

  onUpdate(value: T): void {
    this.updates.push(value);
  }

  onError(err: AuthError): void {
    this.errors.push(err);
  }

  async update(n: number): Promise<T> {
    await until(
      () => this.updates.length >= n,
      `update #${n}`,
      () => this.errors.map((e) => e.message).join('\n'),
    );
    return this.updates[n - 1]!;
  }

  async error(n: number): Promise<AuthError> {
    await until(() => this.errors.length >= n, `error #${n}`);
    return this.errors[n - 1]!;
  }
}

async function until(predicate: () => boolean, what: string, context?: () => string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}${context ? `; seen:\n${context()}` : ''}`);
    await sleep(5);
  }
}

async function within(promise: Promise<unknown>, ms: number, what: string): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      reject(new Error(`timed out after ${ms} ms waiting for ${what}`));
    }, ms);
  });
  try {
    await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function watchX509(t: TestContext, client: WorkloadApiClient): Recorder<X509Context> {
  const rec = new Recorder<X509Context>();
  const stop = new AbortController();
  const done = client.watchX509Context(rec, stop.signal);
  t.after(async () => {
    stop.abort();
    await done;
  });
  return rec;
}

function ids(ctx: X509Context): string[] {
  return ctx.svids.map((s) => s.id.toString());
}

function tds(bundles: X509BundleSet): string[] {
  return bundles.trustDomains().map((d) => d.name);
}

function serial(cert: X509Certificate): string {
  return cert.serialNumber;
}

function assertCode(err: unknown, code: AuthErrorCode, message?: RegExp): void {
  assert.ok(err instanceof AuthError, `expected an AuthError, got ${String(err)}`);
  assert.equal(err.code, code, err.message);
  if (message) assert.match(err.message, message);
}

describe('Backoff', () => {
  test('grows by the factor from the initial delay and stops at the cap', () => {
    const b = new Backoff({ initialMs: 100, maxMs: 1000, factor: 2, jitter: 'full', random: () => 1 });
    assert.deepEqual(
      Array.from({ length: 7 }, () => b.next()),
      [100, 200, 400, 800, 1000, 1000, 1000],
    );
  });

  test('full jitter spreads delays over [0, d], equal jitter over [d/2, d]', () => {
    const full = new Backoff({ initialMs: 100, jitter: 'full', random: () => 0 });
    const equal = new Backoff({ initialMs: 100, jitter: 'equal', random: () => 0 });
    assert.equal(full.next(), 0);
    assert.equal(equal.next(), 50);
    const half = new Backoff({ initialMs: 100, jitter: 'equal', random: () => 0.5 });
    assert.equal(half.next(), 75);
  });

  test('defaults: 200 ms initial, factor 2, capped at 30 s', () => {
    const b = new Backoff({ random: () => 1 });
    assert.equal(b.next(), 200);
    assert.equal(b.next(), 400);
    for (let i = 0; i < 100; i++) b.next();
    assert.equal(b.next(), 30_000);
  });

  test('reset() after a success starts again from the initial delay', () => {
    const b = new Backoff({ initialMs: 10, random: () => 1 });
    b.next();
    b.next();
    assert.equal(b.next(), 40);
    b.reset();
    assert.equal(b.next(), 10);
  });

  test('rejects options that would busy-loop or never grow', () => {
    assert.doesNotThrow(() => new Backoff({ initialMs: 1, maxMs: 1, factor: 1 }));
    for (const bad of [{ initialMs: 0 }, { maxMs: -1 }, { factor: 0.5 }, { initialMs: Number.NaN }]) {
      assert.throws(
        () => new Backoff(bad),
        (err: unknown) => err instanceof AuthError && err.code === 'AUTH_ERR_CONFIG_INVALID',
      );
    }
  });
});

describe('WorkloadApiClient: security header', () => {
  test('every call carries workload.spiffe.io: true', async (t) => {
    const fake = await startFake(t);
    fake.setX509Context({ svids: [{ svid: svidA }], bundle: td.bundle });
    fake.setX509Bundles([td.bundle]);
    fake.setJwtBundles([{ trustDomain: 'example.org', jwks: jwks('k1') }]);
    fake.setJwtSvids([{ spiffeId: 'spiffe://example.org/a', token: 'header.payload.sig' }]);
    fake.setValidation({ spiffeId: 'spiffe://example.org/a', claims: {} });
    const client = newClient(t, fake);

    await watchX509(t, client).update(1);
    await client.fetchX509Context();
    await client.fetchX509Bundles();
    await client.fetchJwtBundles();
    await client.fetchJwtSvids({ audience: ['payment'] });
    await client.validateJwtSvid('header.payload.sig', 'payment');
    const bundleRec = new Recorder<X509BundleSet>();
    const stop = new AbortController();
    const watching = client.watchX509Bundles(bundleRec, stop.signal);
    await bundleRec.update(1);
    stop.abort();
    await watching;

    const methods = new Set(fake.calls.map((c) => c.method));
    assert.deepEqual([...methods].sort(), [
      'FetchJWTBundles',
      'FetchJWTSVID',
      'FetchX509Bundles',
      'FetchX509SVID',
      'ValidateJWTSVID',
    ]);
    for (const call of fake.calls) assert.equal(call.metadata[SECURITY_HEADER], 'true', call.method);
  });

  test('the fake rejects a call without the header with InvalidArgument, as SPIRE does', async (t) => {
    const fake = await startFake(t);
    fake.setJwtSvids([{ spiffeId: 'spiffe://example.org/a', token: 't' }]);
    // Positive control: our client, with the header, is served.
    await newClient(t, fake).fetchJwtSvids({ audience: ['x'] });
    assert.equal(fake.calls.at(-1)?.status, 'OK');

    const def = workloadApiDefinition().FetchJWTSVID!;
    const raw = new grpc.Client(`unix:${fake.socketPath}`, grpc.credentials.createInsecure());
    t.after(() => {
      raw.close();
    });
    const err = await new Promise<grpc.ServiceError | null>((resolve) => {
      raw.makeUnaryRequest(
        def.path,
        def.requestSerialize,
        def.responseDeserialize,
        { audience: ['x'] },
        new grpc.Metadata(),
        (e) => {
          resolve(e);
        },
      );
    });
    assert.equal(err?.code, grpc.status.INVALID_ARGUMENT);
    assert.equal(fake.calls.at(-1)?.status, 'INVALID_ARGUMENT');
  });
});

describe('WorkloadApiClient: X.509 context updates', () => {
  test('delivers every SVID in order with its hint; the first is the default identity', async (t) => {
    const fake = await startFake(t);
    fake.setX509Context({
      svids: [
        { svid: svidB, hint: 'external' },
        { svid: svidA, hint: 'internal' },
      ],
      bundle: td.bundle,
    });
    const ctx = await watchX509(t, newClient(t, fake)).update(1);
    assert.deepEqual(ids(ctx), ['spiffe://example.org/b', 'spiffe://example.org/a']);
    assert.deepEqual(
      ctx.svids.map((s) => s.hint),
      ['external', 'internal'],
    );
    assert.equal(serial(ctx.svids[0]!.leaf), serial(svidB.leaf));
  });

  test('bundles are the SVID trust domain bundle plus the federated bundles', async (t) => {
    const fake = await startFake(t);
    fake.setX509Context({
      svids: [{ svid: svidA }],
      bundle: td.bundle,
      federatedBundles: [partner.bundle, other.bundle],
    });
    const ctx = await watchX509(t, newClient(t, fake)).update(1);
    assert.deepEqual(tds(ctx.bundles), ['example.org', 'other.org', 'partner.org']);
    assert.ok(ctx.bundles.get('example.org')?.equals(td.bundle));
    assert.ok(ctx.bundles.get('partner.org')?.equals(partner.bundle));
  });

  test('a federated trust domain removed in the next message is no longer returned', async (t) => {
    const fake = await startFake(t);
    fake.setX509Context({ svids: [{ svid: svidA }], bundle: td.bundle, federatedBundles: [partner.bundle] });
    const rec = watchX509(t, newClient(t, fake));
    assert.ok((await rec.update(1)).bundles.get('partner.org'), 'positive control: partner.org is trusted at first');
    fake.setX509Context({ svids: [{ svid: svidA }], bundle: td.bundle });
    const next = await rec.update(2);
    assert.equal(next.bundles.get('partner.org'), undefined);
    assert.deepEqual(tds(next.bundles), ['example.org']);
  });

  test('a CA removed from the trust domain bundle is no longer trusted', async (t) => {
    const fake = await startFake(t);
    const twoCas = new X509Bundle('example.org', [td.ca.certDer, other.ca.certDer]);
    fake.setX509Context({ svids: [{ svid: svidA }], bundle: twoCas });
    const rec = watchX509(t, newClient(t, fake));
    assert.equal((await rec.update(1)).bundles.get('example.org')?.authorities.length, 2);
    fake.setX509Context({ svids: [{ svid: svidA }], bundle: td.bundle });
    const next = await rec.update(2);
    const authorities = next.bundles.get('example.org')?.authorities ?? [];
    assert.equal(authorities.length, 1);
    assert.equal(serial(authorities[0]!), serial(td.bundle.authorities[0]!));
  });

  test('a federated entry for our own trust domain does not replace the bundle that came with the SVID', async (t) => {
    const fake = await startFake(t);
    fake.pushX509Response({
      svids: [rawX509Svid(svidA, td.bundle)],
      federated_bundles: {
        'spiffe://example.org': other.bundle.toDer(),
        'spiffe://partner.org': partner.bundle.toDer(),
      },
    });
    const ctx = await watchX509(t, newClient(t, fake)).update(1);
    assert.ok(ctx.bundles.get('partner.org')?.equals(partner.bundle));
    assert.ok(ctx.bundles.get('example.org')?.equals(td.bundle));
  });

  test('SVIDs of two trust domains each bring their own bundle', async (t) => {
    const fake = await startFake(t);
    fake.setX509Context({
      svids: [{ svid: svidA }, { svid: partnerSvid, bundle: partner.bundle }],
      bundle: td.bundle,
    });
    const ctx = await watchX509(t, newClient(t, fake)).update(1);
    assert.ok(ctx.bundles.get('example.org')?.equals(td.bundle));
    assert.ok(ctx.bundles.get('partner.org')?.equals(partner.bundle));
  });

  describe('a message with an unusable field is dropped, reported, and the last good state kept', () => {
    const garbage = Buffer.from([0x30, 0x03, 0x02, 0x01, 0x00]);
    const cases: {
      name: string;
      entry: () => Record<string, unknown>;
      federated?: () => Record<string, Buffer>;
      message: RegExp;
    }[] = [
      { name: 'no svids at all', entry: () => ({}), message: /no X\.509-SVID/ },
      {
        name: 'empty spiffe_id',
        entry: () => ({ ...rawX509Svid(svidB, td.bundle), spiffe_id: '' }),
        message: /svids\[0\] has an empty spiffe_id/,
      },
      {
        name: 'empty x509_svid',
        entry: () => ({ ...rawX509Svid(svidB, td.bundle), x509_svid: Buffer.alloc(0) }),
        message: /empty x509_svid/,
      },
      {
        name: 'empty x509_svid_key',
        entry: () => ({ ...rawX509Svid(svidB, td.bundle), x509_svid_key: Buffer.alloc(0) }),
        message: /empty x509_svid_key/,
      },
      {
        name: 'empty bundle',
        entry: () => ({ ...rawX509Svid(svidB, td.bundle), bundle: Buffer.alloc(0) }),
        message: /bundle for trust domain "example\.org" is empty/,
      },
      {
        name: 'certificate that does not parse',
        entry: () => ({ ...rawX509Svid(svidB, td.bundle), x509_svid: garbage }),
        message: /not a usable X\.509-SVID/,
      },
      {
        name: 'key that does not parse',
        entry: () => ({ ...rawX509Svid(svidB, td.bundle), x509_svid_key: garbage }),
        message: /not a usable X\.509-SVID.*PKCS#8/,
      },
      {
        name: 'key that does not match the certificate',
        entry: () => ({ ...rawX509Svid(svidB, td.bundle), x509_svid_key: rawX509Svid(svidA, td.bundle).x509_svid_key }),
        message: /does not match/,
      },
      {
        name: 'spiffe_id that is not the certificate’s ID',
        entry: () => ({ ...rawX509Svid(svidB, td.bundle), spiffe_id: 'spiffe://example.org/a' }),
        message: /spiffe_id does not match/,
      },
      {
        name: 'bundle that does not parse',
        entry: () => ({ ...rawX509Svid(svidB, td.bundle), bundle: garbage }),
        message: /bundle for trust domain "example\.org" does not parse/,
      },
      {
        name: 'federated bundle that does not parse',
        entry: () => ({ ...rawX509Svid(svidB, td.bundle) }),
        federated: () => ({ 'spiffe://partner.org': garbage }),
        message: /federated_bundles for trust domain "partner\.org" does not parse/,
      },
      {
        name: 'federated bundle keyed by something that is not a trust domain',
        entry: () => ({ ...rawX509Svid(svidB, td.bundle) }),
        federated: () => ({ 'https://Partner.org': partner.bundle.toDer() }),
        message: /not a trust domain/,
      },
    ];
    for (const c of cases) {
      test(c.name, async (t) => {
        const fake = await startFake(t);
        fake.setX509Context({ svids: [{ svid: svidA }], bundle: td.bundle });
        const rec = watchX509(t, newClient(t, fake));
        // Positive control: a good message is taken.
        assert.deepEqual(ids(await rec.update(1)), ['spiffe://example.org/a']);

        const entry = c.entry();
        fake.pushX509Response({
          svids: Object.keys(entry).length === 0 ? [] : [entry as never],
          federated_bundles: c.federated?.() ?? {},
        });
        const err = await rec.error(1);
        assertCode(err, 'AUTH_ERR_WORKLOAD_RESPONSE_INVALID', c.message);
        assert.match(err.message, /dropped/);
        assert.equal(rec.updates.length, 1, 'the broken message must not be delivered');

        // The watch goes on: the next good message is taken.
        fake.setX509Context({ svids: [{ svid: svidB }], bundle: td.bundle });
        assert.deepEqual(ids(await rec.update(2)), ['spiffe://example.org/b']);
        assert.equal(fake.callsOf('FetchX509SVID').length, 1, 'no reconnect was needed');
      });
    }
  });
});

describe('WorkloadApiClient: reconnecting', () => {
  const cases: { status: grpc.status; code: AuthErrorCode; message: RegExp; retried: boolean }[] = [
    { status: grpc.status.UNAVAILABLE, code: 'AUTH_ERR_WORKLOAD_UNAVAILABLE', message: /unavailable/, retried: true },
    {
      status: grpc.status.PERMISSION_DENIED,
      code: 'AUTH_ERR_WORKLOAD_PERMISSION_DENIED',
      message: /PermissionDenied: no registration entry matched this workload/,
      retried: true,
    },
    {
      status: grpc.status.INTERNAL,
      code: 'AUTH_ERR_WORKLOAD_CALL_FAILED',
      message: /answered INTERNAL/,
      retried: true,
    },
    {
      status: grpc.status.INVALID_ARGUMENT,
      code: 'AUTH_ERR_WORKLOAD_INVALID_REQUEST',
      message: /InvalidArgument/,
      retried: false,
    },
  ];
  for (const c of cases) {
    test(`${grpc.status[c.status]}: ${c.retried ? 'retried with backoff, then succeeds' : 'reported once, never retried'}`, async (t) => {
      const fake = await startFake(t);
      fake.setX509Context({ svids: [{ svid: svidA }], bundle: td.bundle });
      fake.setX509Error(c.status, 'agent says no');
      const client = newClient(t, fake);
      const rec = new Recorder<X509Context>();
      const stop = new AbortController();
      const done = client.watchX509Context(rec, stop.signal);
      t.after(async () => {
        stop.abort();
        await done;
      });
      assertCode(await rec.error(1), c.code, c.message);
      assert.match(rec.errors[0]!.message, /agent says no/);
      assert.ok(rec.errors[0]!.cause, 'the gRPC error is kept as cause');

      if (c.retried) {
        await fake.waitFor(() => fake.callsOf('FetchX509SVID').length >= 3, 'three attempts');
        const at = fake.callsOf('FetchX509SVID').map((call) => call.at);
        // FAST backoff with random 1: 40 ms, then 80 ms (timers never fire early).
        assert.ok(at[1]! - at[0]! >= 35, `first retry after ${at[1]! - at[0]!} ms`);
        assert.ok(at[2]! - at[1]! >= 75, `second retry after ${at[2]! - at[1]!} ms`);
        fake.clearX509Error();
        assert.deepEqual(ids(await rec.update(1)), ['spiffe://example.org/a']);
      } else {
        await within(done, 2000, 'the watch to stop by itself');
        await sleep(FAST.initialMs * 4);
        assert.equal(fake.callsOf('FetchX509SVID').length, 1, 'no second attempt');
        assert.equal(rec.errors.length, 1);
        assert.equal(rec.updates.length, 0);
      }
    });
  }

  test('an open stream that fails later is retried', async (t) => {
    const fake = await startFake(t);
    fake.setX509Context({ svids: [{ svid: svidA }], bundle: td.bundle });
    const rec = watchX509(t, newClient(t, fake));
    await rec.update(1);
    fake.setX509Error(grpc.status.UNAVAILABLE, 'agent restarting');
    assertCode(await rec.error(1), 'AUTH_ERR_WORKLOAD_UNAVAILABLE');
    fake.clearX509Error();
    await rec.update(2);
    assert.equal(fake.callsOf('FetchX509SVID')[0]?.status, 'UNAVAILABLE');
  });

  test('the backoff starts again from the initial delay after a good message', async (t) => {
    const fake = await startFake(t);
    fake.setX509Context({ svids: [{ svid: svidA }], bundle: td.bundle });
    fake.setX509Error(grpc.status.UNAVAILABLE);
    // Delays 20, 60, 180, 540 ms while failing; 1620 ms next time unless reset.
    const client = newClient(t, fake, { backoff: { initialMs: 20, factor: 3, maxMs: 5000, random: () => 1 } });
    const rec = watchX509(t, client);
    await fake.waitFor(() => fake.callsOf('FetchX509SVID').length >= 4, 'four failed attempts');
    fake.clearX509Error();
    await rec.update(1);
    const attempts = fake.callsOf('FetchX509SVID').length;
    const failedAt = Date.now();
    fake.setX509Error(grpc.status.UNAVAILABLE);
    await fake.waitFor(() => fake.callsOf('FetchX509SVID').length > attempts, 'the retry');
    const gap = fake.callsOf('FetchX509SVID')[attempts]!.at - failedAt;
    assert.ok(gap < 800, `retry after ${gap} ms; the backoff was not reset`);
  });

  test('a stream the server simply ends is re-opened', async (t) => {
    const fake = await startFake(t);
    fake.setX509Context({ svids: [{ svid: svidA }], bundle: td.bundle });
    const rec = watchX509(t, newClient(t, fake));
    await rec.update(1);
    fake.endStreams();
    assertCode(await rec.error(1), 'AUTH_ERR_WORKLOAD_UNAVAILABLE', /ended the stream/);
    await rec.update(2);
    assert.equal(fake.callsOf('FetchX509SVID').length, 2);
  });

  test('a socket that appears only after the client started is picked up', async (t) => {
    const fake = await startFake(t, { listen: false });
    const rec = watchX509(t, newClient(t, fake));
    const err = await rec.error(1);
    assertCode(err, 'AUTH_ERR_WORKLOAD_UNAVAILABLE', /socket .*agent\.sock does not exist yet/);
    assert.equal(rec.updates.length, 0);
    await fake.waitFor(() => rec.errors.length >= 2, 'a second attempt');
    fake.setX509Context({ svids: [{ svid: svidA }], bundle: td.bundle });
    await fake.restart();
    assert.deepEqual(ids(await rec.update(1)), ['spiffe://example.org/a']);
  });

  test('after the fake agent restarts, the client recovers and gets the next rotation', async (t) => {
    const fake = await startFake(t);
    fake.setX509Context({ svids: [{ svid: svidA }], bundle: td.bundle });
    const rec = watchX509(t, newClient(t, fake));
    assert.equal(serial((await rec.update(1)).svids[0]!.leaf), serial(svidA.leaf));
    await fake.stop();
    await rec.error(1);
    fake.setX509Context({ svids: [{ svid: svidA2 }], bundle: td.bundle });
    await fake.restart();
    assert.equal(serial((await rec.update(2)).svids[0]!.leaf), serial(svidA2.leaf));
  });

  test('after the connection is dropped, the client reconnects', async (t) => {
    const fake = await startFake(t);
    fake.setX509Context({ svids: [{ svid: svidA }], bundle: td.bundle });
    const rec = watchX509(t, newClient(t, fake));
    await rec.update(1);
    fake.dropConnections();
    await rec.update(2);
    assert.ok(fake.callsOf('FetchX509SVID').length >= 2);
  });

  test('aborting the signal stops the watch and cancels the stream', async (t) => {
    const fake = await startFake(t);
    fake.setX509Context({ svids: [{ svid: svidA }], bundle: td.bundle });
    const client = newClient(t, fake);
    const rec = new Recorder<X509Context>();
    const stop = new AbortController();
    const done = client.watchX509Context(rec, stop.signal);
    await rec.update(1);
    stop.abort();
    await within(done, 2000, 'the watch to stop');
    await fake.waitFor(() => fake.openStreams() === 0, 'the stream to close');
    assert.equal(rec.errors.length, 0, 'stopping is not an error');
    fake.setX509Context({ svids: [{ svid: svidB }], bundle: td.bundle });
    await sleep(50);
    assert.equal(rec.updates.length, 1);
  });

  test('close() ends every watch; later calls fail with AUTH_ERR_WORKLOAD_CLOSED', async (t) => {
    const fake = await startFake(t);
    fake.setX509Context({ svids: [{ svid: svidA }], bundle: td.bundle });
    const client = new WorkloadApiClient({ address: fake.address, backoff: FAST });
    const rec = new Recorder<X509Context>();
    const done = client.watchX509Context(rec);
    await rec.update(1);
    await client.close();
    await within(done, 2000, 'the watch to stop');
    assert.equal(client.isClosed, true);
    await assert.rejects(
      client.fetchX509Context(),
      (err: unknown) => err instanceof AuthError && err.code === 'AUTH_ERR_WORKLOAD_CLOSED',
    );
    const late = new Recorder<X509Context>();
    await within(client.watchX509Context(late), 2000, 'a watch on a closed client to return');
    assertCode(late.errors[0], 'AUTH_ERR_WORKLOAD_CLOSED');
    await assert.rejects(
      client.fetchJwtSvids({ audience: ['a'] }),
      (err: unknown) => err instanceof AuthError && err.code === 'AUTH_ERR_WORKLOAD_CLOSED',
    );
  });
});

describe('WorkloadApiClient: one-shot calls', () => {
  test('fetchX509Context returns the first message', async (t) => {
    const fake = await startFake(t);
    fake.setX509Context({ svids: [{ svid: svidA }], bundle: td.bundle, federatedBundles: [partner.bundle] });
    const ctx = await newClient(t, fake).fetchX509Context();
    assert.deepEqual(ids(ctx), ['spiffe://example.org/a']);
    assert.deepEqual(tds(ctx.bundles), ['example.org', 'partner.org']);
    await fake.waitFor(() => fake.openStreams() === 0, 'the one-shot stream to be closed');
  });

  test('fetchX509Context fails at once, without retrying, on PermissionDenied', async (t) => {
    const fake = await startFake(t);
    fake.setX509Context({ svids: [{ svid: svidA }], bundle: td.bundle });
    const client = newClient(t, fake);
    await client.fetchX509Context(); // positive control
    fake.setX509Error(grpc.status.PERMISSION_DENIED, 'no identity issued');
    await assert.rejects(client.fetchX509Context(), (err: unknown) => {
      assertCode(err, 'AUTH_ERR_WORKLOAD_PERMISSION_DENIED', /no registration entry matched this workload/);
      return true;
    });
    assert.equal(fake.callsOf('FetchX509SVID').length, 2);
  });

  test('fetchX509Context rejects an unusable first message', async (t) => {
    const fake = await startFake(t);
    fake.pushX509Response({ svids: [{ ...rawX509Svid(svidA, td.bundle), x509_svid_key: Buffer.alloc(0) }] });
    await assert.rejects(newClient(t, fake).fetchX509Context(), (err: unknown) => {
      assertCode(err, 'AUTH_ERR_WORKLOAD_RESPONSE_INVALID', /empty x509_svid_key/);
      return true;
    });
  });

  test('fetchX509Context says when the socket does not exist', async (t) => {
    const fake = await startFake(t, { listen: false });
    await assert.rejects(newClient(t, fake).fetchX509Context(), (err: unknown) => {
      assertCode(err, 'AUTH_ERR_WORKLOAD_UNAVAILABLE', /does not exist yet/);
      return true;
    });
  });

  test('fetchX509Bundles / watchX509Bundles: a removed trust domain is no longer returned', async (t) => {
    const fake = await startFake(t);
    fake.setX509Bundles([td.bundle, partner.bundle]);
    const client = newClient(t, fake);
    assert.deepEqual(tds(await client.fetchX509Bundles()), ['example.org', 'partner.org']);
    const rec = new Recorder<X509BundleSet>();
    const stop = new AbortController();
    const done = client.watchX509Bundles(rec, stop.signal);
    t.after(async () => {
      stop.abort();
      await done;
    });
    assert.deepEqual(tds(await rec.update(1)), ['example.org', 'partner.org']);
    fake.setX509Bundles([td.bundle]);
    assert.deepEqual(tds(await rec.update(2)), ['example.org']);
    fake.setX509Bundles([]);
    assertCode(await rec.error(1), 'AUTH_ERR_WORKLOAD_RESPONSE_INVALID', /no X\.509 bundle/);
    assert.equal(rec.updates.length, 2);
  });

  test('fetchJwtSvids returns ID, token and hint, and passes the requested SPIFFE ID', async (t) => {
    const fake = await startFake(t);
    fake.setJwtSvids([
      { spiffeId: 'spiffe://example.org/a', token: 'tok-a', hint: 'internal' },
      { spiffeId: 'spiffe://example.org/b', token: 'tok-b' },
    ]);
    const client = newClient(t, fake);
    const all = await client.fetchJwtSvids({ audience: ['payment', 'orders'] });
    assert.deepEqual(
      all.map((s) => [s.id.toString(), s.token, s.hint]),
      [
        ['spiffe://example.org/a', 'tok-a', 'internal'],
        ['spiffe://example.org/b', 'tok-b', ''],
      ],
    );
    const one = await client.fetchJwtSvids({ audience: ['payment'], spiffeId: 'spiffe://example.org/b' });
    assert.deepEqual(
      one.map((s) => s.token),
      ['tok-b'],
    );
  });

  test('fetchJwtSvids refuses an empty audience before calling', async (t) => {
    const fake = await startFake(t);
    fake.setJwtSvids([{ spiffeId: 'spiffe://example.org/a', token: 'tok-a' }]);
    const client = newClient(t, fake);
    await client.fetchJwtSvids({ audience: ['ok'] }); // positive control
    for (const audience of [[], [''], 'payment' as unknown as string[]]) {
      await assert.rejects(client.fetchJwtSvids({ audience }), (err: unknown) => {
        assertCode(err, 'AUTH_ERR_WORKLOAD_INVALID_REQUEST', /audience/);
        return true;
      });
    }
    assert.equal(fake.callsOf('FetchJWTSVID').length, 1);
  });

  test('fetchJwtSvids: PermissionDenied says no registration entry matched', async (t) => {
    const fake = await startFake(t);
    fake.setJwtSvids([{ spiffeId: 'spiffe://example.org/a', token: 'tok-a' }]);
    const client = newClient(t, fake);
    await client.fetchJwtSvids({ audience: ['ok'] });
    fake.setError('FetchJWTSVID', grpc.status.PERMISSION_DENIED, 'no identity issued');
    await assert.rejects(client.fetchJwtSvids({ audience: ['ok'] }), (err: unknown) => {
      assertCode(err, 'AUTH_ERR_WORKLOAD_PERMISSION_DENIED', /no registration entry matched this workload/);
      return true;
    });
  });

  test('unary calls have a deadline', async (t) => {
    const fake = await startFake(t);
    fake.setJwtSvids([{ spiffeId: 'spiffe://example.org/a', token: 'tok-a' }]);
    const client = newClient(t, fake, { timeoutMs: 150 });
    await client.fetchJwtSvids({ audience: ['ok'] }); // positive control
    fake.setHang('FetchJWTSVID');
    const started = Date.now();
    await assert.rejects(client.fetchJwtSvids({ audience: ['ok'] }), (err: unknown) => {
      assertCode(err, 'AUTH_ERR_WORKLOAD_TIMEOUT', /did not answer within 150 ms/);
      return true;
    });
    assert.ok(Date.now() - started < 2000);
  });

  test('fetchJwtBundles / watchJwtBundles build a JwtBundleSet; a bad JWKS is dropped', async (t) => {
    const fake = await startFake(t);
    fake.setJwtBundles([
      { trustDomain: 'example.org', jwks: jwks('k1') },
      { trustDomain: 'partner.org', jwks: jwks('p1') },
    ]);
    const client = newClient(t, fake);
    const set = await client.fetchJwtBundles();
    assert.deepEqual(
      set.bundles().map((b) => b.trustDomain.name),
      ['example.org', 'partner.org'],
    );
    assert.ok(set.get('example.org')?.findAuthority('k1'));

    const rec = new Recorder<Awaited<ReturnType<WorkloadApiClient['fetchJwtBundles']>>>();
    const stop = new AbortController();
    const done = client.watchJwtBundles(rec, stop.signal);
    t.after(async () => {
      stop.abort();
      await done;
    });
    await rec.update(1);
    fake.setJwtBundles([{ trustDomain: 'example.org', jwks: jwks('k2') }]);
    const next = await rec.update(2);
    assert.equal(next.get('partner.org'), undefined);
    assert.equal(next.get('example.org')?.findAuthority('k1'), undefined);
    assert.ok(next.get('example.org')?.findAuthority('k2'));
    fake.setJwtBundles([{ trustDomain: 'example.org', jwks: '{"keys": "nope"}' }]);
    assertCode(await rec.error(1), 'AUTH_ERR_WORKLOAD_RESPONSE_INVALID', /not a usable JWKS/);
    assert.equal(rec.updates.length, 2);
  });

  test('validateJwtSvid returns the ID and the claims as plain JSON', async (t) => {
    const fake = await startFake(t);
    const claims = {
      sub: 'spiffe://example.org/a',
      aud: ['payment'],
      exp: 1_900_000_000,
      nested: { ok: true, none: null, list: [1, 'two', { three: 3 }] },
    };
    fake.setValidation((token, audience) => {
      assert.equal(token, 'the.token.sig');
      assert.equal(audience, 'payment');
      return { spiffeId: 'spiffe://example.org/a', claims };
    });
    const res = await newClient(t, fake).validateJwtSvid('the.token.sig', 'payment');
    assert.equal(res.id.toString(), 'spiffe://example.org/a');
    assert.deepEqual(res.claims, claims);
  });

  test('validateJwtSvid: a token the agent rejects is AUTH_ERR_WORKLOAD_INVALID_REQUEST', async (t) => {
    const fake = await startFake(t);
    fake.setValidation({ spiffeId: 'spiffe://example.org/a', claims: {} });
    const client = newClient(t, fake);
    await client.validateJwtSvid('good', 'payment'); // positive control
    fake.setError('ValidateJWTSVID', grpc.status.INVALID_ARGUMENT, 'token has expired');
    await assert.rejects(client.validateJwtSvid('expired', 'payment'), (err: unknown) => {
      assertCode(err, 'AUTH_ERR_WORKLOAD_INVALID_REQUEST', /token has expired/);
      return true;
    });
    await assert.rejects(client.validateJwtSvid('', 'payment'), (err: unknown) => {
      assertCode(err, 'AUTH_ERR_WORKLOAD_INVALID_REQUEST', /token is empty/);
      return true;
    });
  });
});

describe('WorkloadApiClient: address', () => {
  test('uses SPIFFE_ENDPOINT_SOCKET when no address is given, the address option first', (t) => {
    const env = { SPIFFE_ENDPOINT_SOCKET: 'unix:///run/spire/agent.sock' };
    const fromEnv = new WorkloadApiClient({ env });
    t.after(() => fromEnv.close());
    assert.equal(fromEnv.address, 'unix:///run/spire/agent.sock');
    const explicit = new WorkloadApiClient({ env, address: 'tcp://127.0.0.1:8081' });
    t.after(() => explicit.close());
    assert.equal(explicit.endpoint.target, 'ipv4:127.0.0.1:8081');
  });

  test('fails clearly without an address, or with a bad one', () => {
    assert.throws(
      () => new WorkloadApiClient({ env: {} }),
      (err: unknown) => err instanceof AuthError && err.code === 'AUTH_ERR_WORKLOAD_ENDPOINT_MISSING',
    );
    assert.throws(
      () => new WorkloadApiClient({ address: 'unix://agent.sock' }),
      (err: unknown) => err instanceof AuthError && err.code === 'AUTH_ERR_WORKLOAD_ENDPOINT_INVALID',
    );
  });
});

function jwks(kid: string): string {
  const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwk = publicKey.export({ format: 'jwk' });
  return JSON.stringify({ keys: [{ ...jwk, kid, use: 'jwt-svid' }] });
}
