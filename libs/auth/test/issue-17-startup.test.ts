// Issue 17, defect 8: start-up without an identity. A source that is not
// ready yet keeps trying and says why (lastError), and a silent Workload API
// stream is dialled again before the SVID it holds expires.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { before, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { AuthError } from '../src/errors.ts';
import { createIdentitySource } from '../src/source/create-identity-source.ts';
import { FileIdentitySource } from '../src/source/file-source.ts';
import type { IdentitySource } from '../src/source/identity-source.ts';
import type { X509Svid } from '../src/svid/x509-svid.ts';
import { WorkloadX509Source, type WorkloadX509SourceOptions } from '../src/workloadapi/x509-source.ts';
import { FakeWorkloadApi, createTestTrustDomain, makeTempDir, type TestTrustDomain } from '@shop/auth-testing';

const FAST = { initialMs: 20, maxMs: 80 };

let td: TestTrustDomain;
before(async () => {
  td = await createTestTrustDomain('example.org');
});

async function startFake(t: TestContext, options?: { listen?: boolean }): Promise<FakeWorkloadApi> {
  const fake = await FakeWorkloadApi.start(options);
  t.after(() => fake.close());
  return fake;
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

function closeAfter(t: TestContext, source: IdentitySource): IdentitySource {
  t.after(() => source.close());
  return source;
}

async function until(predicate: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

/** shortLived issues an SVID that expires `lifetimeS` seconds after it starts, started `agoS` seconds ago. */
function shortLived(path: string, agoS: number, lifetimeS: number): Promise<X509Svid> {
  // Whole seconds: X.509 times have no fraction.
  const start = Math.floor(Date.now() / 1000) * 1000 - agoS * 1000;
  return td.svid(path, { notBefore: new Date(start), notAfter: new Date(start + lifetimeS * 1000) });
}

describe('regression: a silent Workload API stream is dialled again (issue 17)', { concurrency: true }, () => {
  test('regression: a silent agent stream is re-dialled and the rotated SVID picked up before the old one expires', async (t) => {
    const fake = await startFake(t);
    // 6 s lifetime, 2 s gone: the re-dial point (a quarter of the lifetime left) is 2.5 s away, expiry 4 s.
    const first = await shortLived('/a', 2, 6);
    const rotated = await td.svid('/a');
    fake.setX509Context({ svids: [{ svid: first }], bundle: td.bundle });
    const source = openSource(t, fake);
    await source.ready();
    const errors: AuthError[] = [];
    source.on('loadError', (e) => errors.push(e));

    // The agent's stream hangs: it stays open and the rotation never reaches it.
    fake.setSilent('FetchX509SVID');
    fake.setX509Context({ svids: [{ svid: rotated }], bundle: td.bundle });
    fake.setSilent('FetchX509SVID', false);

    await until(
      () => source.getX509Svid().leaf.serialNumber === rotated.leaf.serialNumber,
      'the rotated SVID through a new stream',
      6000,
    );
    assert.ok(Date.now() < first.expiresAt.getTime(), 'picked up before the old SVID expired');
    assert.equal(fake.callsOf('FetchX509SVID').length, 2, 'dialled exactly once more');
    assert.equal(fake.callsOf('FetchX509SVID')[0]?.status, 'CANCELLED', 'the stuck stream was cancelled');
    assert.equal(errors[0]?.code, 'AUTH_ERR_WORKLOAD_TIMEOUT');
    assert.match(
      errors[0].message,
      /no update from the Workload API at unix:\/\/\/.* for [\d.]+ s and the X\.509-SVID spiffe:\/\/example\.org\/a expires at .*; the stream looks stuck: dialling it again/,
    );
    assert.equal(source.lastError, undefined, 'the new SVID cleared the problem');
  });

  test('control: with re-dialling off, the silent stream never delivers the rotation (the fake really hangs)', async (t) => {
    const fake = await startFake(t);
    const first = await shortLived('/a', 2, 6);
    fake.setX509Context({ svids: [{ svid: first }], bundle: td.bundle });
    const source = openSource(t, fake, { redialWhenRemaining: 0 });
    await source.ready();
    fake.setSilent('FetchX509SVID');
    fake.setX509Context({ svids: [{ svid: await td.svid('/a') }], bundle: td.bundle });
    fake.setSilent('FetchX509SVID', false);
    // Past the point where the other source dials again.
    await sleep(first.expiresAt.getTime() - Date.now() - 800);
    assert.equal(source.getX509Svid().leaf.serialNumber, first.leaf.serialNumber);
    assert.equal(fake.callsOf('FetchX509SVID').length, 1);
  });

  test('positive control: a stream that talks gets the rotation without any re-dial', async (t) => {
    const fake = await startFake(t);
    fake.setX509Context({ svids: [{ svid: await shortLived('/a', 2, 6) }], bundle: td.bundle });
    const source = openSource(t, fake);
    await source.ready();
    const rotated = await td.svid('/a');
    fake.setX509Context({ svids: [{ svid: rotated }], bundle: td.bundle });
    await until(() => source.getX509Svid().leaf.serialNumber === rotated.leaf.serialNumber, 'the rotation');
    assert.equal(fake.callsOf('FetchX509SVID').length, 1);
    assert.equal(fake.callsOf('FetchX509SVID')[0]?.status, 'OK', 'the first stream is still open');
  });

  test('regression: a stream that stays silent before the first SVID is re-dialled, and lastError says so', async (t) => {
    const fake = await startFake(t);
    fake.setSilent('FetchX509SVID');
    const source = openSource(t, fake, { silentStreamMs: 300 });
    await until(() => fake.callsOf('FetchX509SVID').length >= 2, 'a second dial');
    assert.equal(source.isReady, false);
    assert.equal(source.lastError?.code, 'AUTH_ERR_WORKLOAD_TIMEOUT');
    assert.match(source.lastError.message, /sent nothing \(no X\.509-SVID, no error\) for [\d.]+ s/);
    // Positive control: an agent that answers again is picked up on the next dial.
    fake.setSilent('FetchX509SVID', false);
    fake.setX509Context({ svids: [{ svid: await td.svid('/a') }], bundle: td.bundle });
    await source.ready();
    assert.equal(source.lastError, undefined);
  });
});

describe('the silent-stream check leaves a reconnecting watch alone', () => {
  test('PermissionDenied with a backoff longer than silentStreamMs stays the reason; no extra dials (positive control: a silent stream is dialled again above)', async (t) => {
    const fake = await startFake(t);
    fake.setX509Error(grpc.status.PERMISSION_DENIED, 'no identity issued');
    const source = openSource(t, fake, {
      silentStreamMs: 100,
      backoff: { initialMs: 400, maxMs: 400, random: () => 1 },
    });
    await sleep(1300);
    assert.equal(source.lastError?.code, 'AUTH_ERR_WORKLOAD_PERMISSION_DENIED');
    const calls = fake.callsOf('FetchX509SVID').length;
    assert.ok(calls >= 2 && calls <= 4, `${String(calls)} dials in 1.3 s with a 400 ms backoff`);
  });
});

describe('regression: createIdentitySource({ wait: false }) keeps trying and says why (issue 17)', () => {
  test('regression: a Workload API socket with no agent: the source returns at once, names the socket, and becomes ready when the agent comes', async (t) => {
    const fake = await startFake(t, { listen: false });
    const started = Date.now();
    const source = closeAfter(
      t,
      await createIdentitySource({ wait: false, env: { SPIFFE_ENDPOINT_SOCKET: fake.address } }),
    );
    assert.ok(Date.now() - started < 1000, 'returned without waiting');
    assert.equal(source.isReady, false);
    await until(() => source.lastError !== undefined, 'the first problem');
    assert.equal(source.lastError?.code, 'AUTH_ERR_WORKLOAD_UNAVAILABLE');
    assert.match(source.lastError.message, /socket .*agent\.sock does not exist yet/);
    fake.setX509Context({ svids: [{ svid: await td.svid('/a') }], bundle: td.bundle });
    await fake.restart();
    await source.ready();
    assert.equal(source.getX509Svid().id.toString(), 'spiffe://example.org/a');
    assert.equal(source.lastError, undefined);
  });

  test('positive control: by default createIdentitySource still waits and rejects after workloadTimeoutMs', async (t) => {
    const fake = await startFake(t, { listen: false });
    await assert.rejects(
      createIdentitySource({ env: { SPIFFE_ENDPOINT_SOCKET: fake.address }, workloadTimeoutMs: 300 }),
      (err: unknown) =>
        err instanceof AuthError &&
        err.code === 'AUTH_ERR_WORKLOAD_TIMEOUT' &&
        /within 300 ms; last problem: .*does not exist yet/.test(err.message),
    );
  });

  test('regression: with a trust bridge, the bridged source also waits for the agent and becomes ready with it', async (t) => {
    const fake = await startFake(t, { listen: false });
    const { dir, cleanup } = await makeTempDir();
    t.after(cleanup);
    const other = await createTestTrustDomain('example.org');
    await writeFile(join(dir, 'bridge.pem'), other.ca.certPem);
    const source = closeAfter(
      t,
      await createIdentitySource({
        wait: false,
        env: { SPIFFE_ENDPOINT_SOCKET: fake.address, TRUST_BRIDGE_CA_FILE: join(dir, 'bridge.pem') },
      }),
    );
    assert.equal(source.isReady, false);
    await until(() => source.lastError !== undefined, 'the agent problem to reach the bridge');
    assert.match(source.lastError?.message ?? '', /does not exist yet/);
    fake.setX509Context({ svids: [{ svid: await td.svid('/a') }], bundle: td.bundle });
    await fake.restart();
    await source.ready();
    assert.equal(source.getX509BundleForTrustDomain(td.bundle.trustDomain).authorities.length, 2, 'bridged roots');
  });

  test('regression: files that are not there yet: open() reports it once, keeps looking, and loads them when they appear', async (t) => {
    const { dir, cleanup } = await makeTempDir();
    t.after(cleanup);
    const files = { certFile: join(dir, 'c.pem'), keyFile: join(dir, 'k.pem'), caFile: join(dir, 'ca.pem') };
    const source = FileIdentitySource.open({ ...files, reloadIntervalMs: 50 });
    t.after(() => source.close());
    const errors: AuthError[] = [];
    source.on('loadError', (e) => errors.push(e));
    await until(() => source.lastError !== undefined, 'the first problem');
    assert.equal(source.isReady, false);
    assert.equal(source.lastError?.code, 'AUTH_ERR_FILE_UNREADABLE');
    assert.match(source.lastError.message, /c\.pem \(ENOENT\)/);
    await sleep(300);
    assert.ok(errors.length <= 1, `the same missing file was reported ${String(errors.length)} times`);

    const issued = await td.issue('/payment');
    await writeFile(files.keyFile, issued.keyPem);
    await writeFile(files.caFile, td.ca.certPem);
    await writeFile(files.certFile, issued.certPem);
    await source.ready();
    assert.equal(source.getX509Svid().id.toString(), 'spiffe://example.org/payment');
    assert.equal(source.lastError, undefined);
  });

  test('positive control: FileIdentitySource.create() still refuses missing files at once', async (t) => {
    const { dir, cleanup } = await makeTempDir();
    t.after(cleanup);
    await assert.rejects(
      FileIdentitySource.create({
        certFile: join(dir, 'c.pem'),
        keyFile: join(dir, 'k.pem'),
        caFile: join(dir, 'ca.pem'),
      }),
      (err: unknown) => err instanceof AuthError && err.code === 'AUTH_ERR_FILE_UNREADABLE',
    );
  });
});
