import { setTimeout as sleep } from 'node:timers/promises';
import { before, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { AuthError, type AuthErrorCode } from '../src/errors.ts';
import type { RotatedEvent, WithdrawnEvent } from '../src/source/identity-source.ts';
import { TrustDomain } from '../src/spiffeid/trust-domain.ts';
import type { X509Svid } from '../src/svid/x509-svid.ts';
import { WorkloadApiClient } from '../src/workloadapi/client.ts';
import { WorkloadX509Source, type WorkloadX509SourceOptions } from '../src/workloadapi/x509-source.ts';
import { FakeWorkloadApi, createTestTrustDomain, rawX509Svid, type TestTrustDomain } from '@shop/auth-testing';

const FAST = { initialMs: 20, maxMs: 80 };

let td: TestTrustDomain;
let partner: TestTrustDomain;
let svidA: X509Svid;
let svidB: X509Svid;
let svidA2: X509Svid;
let svidA3: X509Svid;

before(async () => {
  [td, partner] = await Promise.all([createTestTrustDomain('example.org'), createTestTrustDomain('partner.org')]);
  [svidA, svidB, svidA2, svidA3] = await Promise.all([td.svid('/a'), td.svid('/b'), td.svid('/a'), td.svid('/a')]);
});

async function startFake(t: TestContext, options?: { listen?: boolean }): Promise<FakeWorkloadApi> {
  const fake = await FakeWorkloadApi.start(options);
  t.after(() => fake.close());
  return fake;
}

async function createSource(
  t: TestContext,
  fake: FakeWorkloadApi,
  options: WorkloadX509SourceOptions = {},
): Promise<WorkloadX509Source> {
  const source = await WorkloadX509Source.create({ address: fake.address, backoff: FAST, timeoutMs: 3000, ...options });
  t.after(() => source.close());
  return source;
}

function openSource(
  t: TestContext,
  fake: FakeWorkloadApi,
  options: WorkloadX509SourceOptions = {},
): WorkloadX509Source {
  const source = WorkloadX509Source.open({ address: fake.address, backoff: FAST, ...options });
  t.after(() => source.close());
  return source;
}

async function until(predicate: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

function rejectsWith(code: AuthErrorCode, message?: RegExp): (err: unknown) => boolean {
  return (err: unknown) => {
    assert.ok(err instanceof AuthError, `expected an AuthError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    if (message) assert.match(err.message, message);
    return true;
  };
}

describe('WorkloadX509Source: start-up', () => {
  test('create() resolves with the first SVID; the first SVID is the default identity', async (t) => {
    const fake = await startFake(t);
    fake.setX509Context({
      svids: [{ svid: svidA }, { svid: svidB }],
      bundle: td.bundle,
      federatedBundles: [partner.bundle],
    });
    const source = await createSource(t, fake);
    assert.equal(source.kind, 'spiffe');
    assert.equal(source.isReady, true);
    assert.equal(source.describe(), `Workload API at ${fake.address}`);
    assert.equal(source.getX509Svid().id.toString(), 'spiffe://example.org/a');
    assert.ok(source.getX509BundleForTrustDomain(TrustDomain.parse('partner.org')).equals(partner.bundle));
    assert.ok(source.getX509Bundles().get('example.org')?.equals(td.bundle));
    assert.ok(source.secondsToExpiry() > 0);
  });

  test('pickSvid chooses among several identities, e.g. by hint', async (t) => {
    const fake = await startFake(t);
    fake.setX509Context({
      svids: [
        { svid: svidA, hint: 'internal' },
        { svid: svidB, hint: 'external' },
      ],
      bundle: td.bundle,
    });
    const source = await createSource(t, fake, { pickSvid: (svids) => svids.find((s) => s.hint === 'external') });
    assert.equal(source.getX509Svid().id.toString(), 'spiffe://example.org/b');
  });

  test('a pickSvid that chooses nothing is a loadError naming the SVIDs sent', async (t) => {
    const fake = await startFake(t);
    fake.setX509Context({ svids: [{ svid: svidA, hint: 'internal' }], bundle: td.bundle });
    let want = 'internal';
    const source = openSource(t, fake, { pickSvid: (svids) => svids.find((s) => s.hint === want) });
    await source.ready(); // positive control
    const errors: AuthError[] = [];
    source.on('loadError', (e) => errors.push(e));
    want = 'external';
    fake.setX509Context({ svids: [{ svid: svidA2, hint: 'internal' }], bundle: td.bundle });
    await until(() => errors.length > 0, 'a loadError');
    assert.equal(errors[0]?.code, 'AUTH_ERR_WORKLOAD_RESPONSE_INVALID');
    assert.match(errors[0].message, /chose none .*spiffe:\/\/example\.org\/a \(hint "internal"\)/);
    assert.equal(source.getX509Svid().leaf.serialNumber, svidA.leaf.serialNumber);
  });

  test('an invalid address fails at once with AUTH_ERR_WORKLOAD_ENDPOINT_INVALID', async () => {
    await assert.rejects(
      WorkloadX509Source.create({ address: 'tcp://localhost:8081' }),
      rejectsWith('AUTH_ERR_WORKLOAD_ENDPOINT_INVALID', /not a name/),
    );
  });

  // Generous enough for a loaded CI machine; the cases run concurrently to stay fast.
  const TIMEOUT_MS = 1000;
  describe('on timeout, create() rejects with AUTH_ERR_WORKLOAD_TIMEOUT saying why', { concurrency: true }, () => {
    test('positive control: a served SVID arrives well within the same timeout', async (t) => {
      const fake = await startFake(t);
      fake.setX509Context({ svids: [{ svid: svidA }], bundle: td.bundle });
      await createSource(t, fake, { timeoutMs: TIMEOUT_MS });
    });

    const cases: { name: string; setup: (fake: FakeWorkloadApi) => void; listen?: boolean; why: RegExp }[] = [
      {
        name: 'the agent socket does not exist',
        setup: () => undefined,
        listen: false,
        why: /socket .*agent\.sock does not exist yet/,
      },
      {
        name: 'no registration entry matches (PermissionDenied)',
        setup: (fake) => {
          fake.setX509Error(grpc.status.PERMISSION_DENIED, 'no identity issued');
        },
        why: /the Workload API answered PermissionDenied: no registration entry matched this workload/,
      },
      {
        name: 'the agent is unavailable',
        setup: (fake) => {
          fake.setX509Error(grpc.status.UNAVAILABLE, 'agent is shutting down');
        },
        why: /unavailable.*agent is shutting down/,
      },
      {
        name: 'the stream is open but nothing is sent',
        setup: () => undefined,
        why: /accepted the stream but sent no X\.509-SVID/,
      },
      {
        name: 'every message is unusable',
        setup: (fake) => {
          fake.pushX509Response({ svids: [{ ...rawX509Svid(svidA, td.bundle), x509_svid_key: Buffer.alloc(0) }] });
        },
        why: /empty x509_svid_key/,
      },
    ];
    for (const c of cases) {
      test(c.name, async (t) => {
        const fake = await startFake(t, { listen: c.listen ?? true });
        c.setup(fake);
        const started = Date.now();
        await assert.rejects(
          WorkloadX509Source.create({ address: fake.address, backoff: FAST, timeoutMs: TIMEOUT_MS }),
          (err: unknown) => {
            rejectsWith(
              'AUTH_ERR_WORKLOAD_TIMEOUT',
              new RegExp(`no X\\.509-SVID from the Workload API at unix:///.* within ${TIMEOUT_MS} ms`),
            )(err);
            assert.match((err as Error).message, c.why);
            return true;
          },
        );
        assert.ok(Date.now() - started >= TIMEOUT_MS - 10, 'it waited for the timeout');
        // The rejected source closed its stream: nothing is left running.
        await fake.waitFor(() => fake.openStreams() === 0, 'the stream to be cancelled');
      });
    }
  });

  test('InvalidArgument is final: create() rejects at once, before the timeout', async (t) => {
    const fake = await startFake(t);
    fake.setX509Error(grpc.status.INVALID_ARGUMENT, 'malformed request');
    const started = Date.now();
    await assert.rejects(
      WorkloadX509Source.create({ address: fake.address, backoff: FAST, timeoutMs: 5000 }),
      rejectsWith('AUTH_ERR_WORKLOAD_INVALID_REQUEST', /malformed request/),
    );
    assert.ok(Date.now() - started < 2000);
    assert.equal(fake.callsOf('FetchX509SVID').length, 1);
  });

  test('open() lets a service start first and become ready once SPIRE issues an SVID', async (t) => {
    const fake = await startFake(t, { listen: false });
    const source = openSource(t, fake, { timeoutMs: 100 });
    assert.equal(source.isReady, false);
    await assert.rejects(source.ready(), rejectsWith('AUTH_ERR_WORKLOAD_TIMEOUT', /does not exist yet/));
    assert.throws(() => source.getX509Svid(), rejectsWith('AUTH_ERR_SOURCE_NOT_READY'));
    assert.match(source.lastError?.message ?? '', /does not exist yet/);

    const rotated: RotatedEvent[] = [];
    source.on('rotated', (e) => rotated.push(e));
    fake.setX509Context({ svids: [{ svid: svidA }], bundle: td.bundle });
    await fake.restart();
    await until(() => source.isReady, 'the source to become ready');
    assert.equal(rotated.length, 1);
    assert.equal(rotated[0]?.previous, undefined);
    assert.equal(source.getX509Svid().id.toString(), 'spiffe://example.org/a');
    assert.equal(source.lastError, undefined);
  });
});

describe('WorkloadX509Source: updates', () => {
  test('a rotation replaces the SVID and emits rotated with the previous material', async (t) => {
    const fake = await startFake(t);
    fake.setX509Context({ svids: [{ svid: svidA }], bundle: td.bundle });
    const source = await createSource(t, fake);
    const rotated: RotatedEvent[] = [];
    source.on('rotated', (e) => rotated.push(e));
    fake.setX509Context({ svids: [{ svid: svidA2 }], bundle: td.bundle });
    await until(() => rotated.length === 1, 'a rotation');
    assert.equal(source.getX509Svid().leaf.serialNumber, svidA2.leaf.serialNumber);
    assert.equal(rotated[0]?.previous?.svid.leaf.serialNumber, svidA.leaf.serialNumber);
  });

  test('a federated trust domain removed by SPIRE stops being trusted', async (t) => {
    const fake = await startFake(t);
    fake.setX509Context({ svids: [{ svid: svidA }], bundle: td.bundle, federatedBundles: [partner.bundle] });
    const source = await createSource(t, fake);
    const partnerTd = TrustDomain.parse('partner.org');
    assert.ok(source.getX509BundleForTrustDomain(partnerTd)); // positive control
    const rotated: RotatedEvent[] = [];
    source.on('rotated', (e) => rotated.push(e));
    fake.setX509Context({ svids: [{ svid: svidA }], bundle: td.bundle });
    await until(() => rotated.length === 1, 'the update');
    assert.throws(() => source.getX509BundleForTrustDomain(partnerTd), rejectsWith('AUTH_ERR_BUNDLE_NOT_FOUND'));
  });

  test('an unusable message is a loadError and the last good material stays', async (t) => {
    const fake = await startFake(t);
    fake.setX509Context({ svids: [{ svid: svidA }], bundle: td.bundle });
    const source = await createSource(t, fake);
    const errors: AuthError[] = [];
    source.on('loadError', (e) => errors.push(e));
    fake.pushX509Response({ svids: [{ ...rawX509Svid(svidA2, td.bundle), spiffe_id: '' }] });
    await until(() => errors.length === 1, 'a loadError');
    assert.equal(errors[0]?.code, 'AUTH_ERR_WORKLOAD_RESPONSE_INVALID');
    assert.match(errors[0].message, /empty spiffe_id/);
    assert.equal(source.getX509Svid().leaf.serialNumber, svidA.leaf.serialNumber);
    assert.equal(source.lastError, errors[0]);
    fake.setX509Context({ svids: [{ svid: svidA2 }], bundle: td.bundle });
    await until(() => source.getX509Svid().leaf.serialNumber === svidA2.leaf.serialNumber, 'the next good update');
    assert.equal(source.lastError, undefined);
  });

  test('PermissionDenied after start withdraws the SVID (Workload API §5.2.1); the watch goes on and recovers', async (t) => {
    const fake = await startFake(t);
    fake.setX509Context({ svids: [{ svid: svidA }], bundle: td.bundle });
    const source = await createSource(t, fake);
    assert.equal(source.isReady, true); // positive control
    const errors: AuthError[] = [];
    const withdrawn: WithdrawnEvent[] = [];
    source.on('loadError', (e) => errors.push(e));
    source.on('withdrawn', (e) => withdrawn.push(e));
    fake.setX509Error(grpc.status.PERMISSION_DENIED, 'no identity issued');
    await until(() => errors.length >= 1, 'a loadError');
    assert.equal(errors[0]?.code, 'AUTH_ERR_SVID_WITHDRAWN');
    assert.match(errors[0].message, /no registration entry matched this workload/);
    assert.match(errors[0].message, /keepSvidOnPermissionDenied/);
    assert.equal(withdrawn[0]?.svid.id.toString(), 'spiffe://example.org/a');
    assert.equal(source.isReady, false);
    assert.equal(source.lastError?.code, 'AUTH_ERR_SVID_WITHDRAWN');
    assert.throws(() => source.getX509Svid(), rejectsWith('AUTH_ERR_SVID_WITHDRAWN'));
    assert.ok(source.getX509BundleForTrustDomain(TrustDomain.parse('example.org')), 'bundles stay in use');
    fake.clearX509Error();
    fake.setX509Context({ svids: [{ svid: svidA2 }], bundle: td.bundle });
    await until(() => source.isReady, 'recovery');
    assert.equal(source.getX509Svid().leaf.serialNumber, svidA2.leaf.serialNumber);
    assert.equal(source.lastError, undefined);
  });

  test('keepSvidOnPermissionDenied keeps presenting the last SVID after PermissionDenied (a loadError in plain words)', async (t) => {
    const fake = await startFake(t);
    fake.setX509Context({ svids: [{ svid: svidA }], bundle: td.bundle });
    const source = await createSource(t, fake, { keepSvidOnPermissionDenied: true });
    const errors: AuthError[] = [];
    source.on('loadError', (e) => errors.push(e));
    fake.setX509Error(grpc.status.PERMISSION_DENIED, 'no identity issued');
    await until(() => errors.length >= 1, 'a loadError');
    assert.equal(errors[0]?.code, 'AUTH_ERR_WORKLOAD_PERMISSION_DENIED');
    assert.match(errors[0].message, /no registration entry matched this workload/);
    assert.equal(source.isReady, true);
    assert.equal(source.getX509Svid().id.toString(), 'spiffe://example.org/a');
    fake.clearX509Error();
    fake.setX509Context({ svids: [{ svid: svidA2 }], bundle: td.bundle });
    await until(() => source.getX509Svid().leaf.serialNumber === svidA2.leaf.serialNumber, 'recovery');
  });

  test('after the fake agent restarts, the source recovers and gets the next rotation', async (t) => {
    const fake = await startFake(t);
    fake.setX509Context({ svids: [{ svid: svidA }], bundle: td.bundle });
    const source = await createSource(t, fake);
    const errors: AuthError[] = [];
    source.on('loadError', (e) => errors.push(e));
    await fake.stop();
    await until(() => errors.length >= 1, 'the source to notice the agent is gone');
    assert.equal(source.getX509Svid().leaf.serialNumber, svidA.leaf.serialNumber, 'material kept while down');
    fake.setX509Context({ svids: [{ svid: svidA2 }], bundle: td.bundle });
    await fake.restart();
    await until(
      () => source.getX509Svid().leaf.serialNumber === svidA2.leaf.serialNumber,
      'the rotation after restart',
    );
    fake.setX509Context({ svids: [{ svid: svidA3 }], bundle: td.bundle });
    await until(() => source.getX509Svid().leaf.serialNumber === svidA3.leaf.serialNumber, 'the next rotation');
  });
});

describe('WorkloadX509Source: close', () => {
  test('close() cancels the stream and nothing is emitted afterwards', async (t) => {
    const fake = await startFake(t);
    fake.setX509Context({ svids: [{ svid: svidA }], bundle: td.bundle });
    const source = await WorkloadX509Source.create({ address: fake.address, backoff: FAST });
    t.after(() => source.close());
    assert.equal(fake.openStreams('FetchX509SVID'), 1);
    const events: string[] = [];
    source.on('rotated', () => events.push('rotated'));
    source.on('loadError', () => events.push('loadError'));
    await source.close();
    await fake.waitFor(() => fake.openStreams() === 0, 'the stream to be cancelled');
    assert.equal(fake.callsOf('FetchX509SVID')[0]?.status, 'CANCELLED');
    fake.setX509Context({ svids: [{ svid: svidA2 }], bundle: td.bundle });
    await sleep(100);
    assert.deepEqual(events, []);
    assert.equal(source.getX509Svid().leaf.serialNumber, svidA.leaf.serialNumber, 'the last material stays readable');
  });

  test('a client passed in is used, and left open for its owner', async (t) => {
    const fake = await startFake(t);
    fake.setX509Context({ svids: [{ svid: svidA }], bundle: td.bundle });
    const client = new WorkloadApiClient({ address: fake.address, backoff: FAST });
    t.after(() => client.close());
    const source = await WorkloadX509Source.create({ client });
    assert.equal(source.describe(), `Workload API at ${fake.address}`);
    await source.close();
    assert.equal(client.isClosed, false);
    await client.fetchX509Context();
  });

  test('closing before the first SVID rejects ready() with AUTH_ERR_SOURCE_CLOSED', async (t) => {
    const fake = await startFake(t, { listen: false });
    const source = openSource(t, fake, { timeoutMs: 5000 });
    const ready = source.ready();
    await source.close();
    await assert.rejects(ready, rejectsWith('AUTH_ERR_SOURCE_CLOSED'));
  });
});
