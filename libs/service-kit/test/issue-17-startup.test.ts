// Issue 17, defect 8: start-up without an identity. The ops port answers
// from the start with "not ready, because …", and the wait for the identity
// has a deadline only when IDENTITY_WAIT_SECONDS asks for one.
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { describe, test, type TestContext } from 'node:test';
import { request } from 'undici';
import { AuthError } from '@shop/auth';
import { MemorySource, createTestTrustDomain } from '@shop/auth-testing';
import { ConfigError, IdentityWaitError } from '../src/errors.ts';
import { createServiceMetrics, observeIdentity } from '../src/metrics.ts';
import { identityCheck, startOpsServer, type ReadinessCheck } from '../src/ops-server.ts';
import { StartupGate, identityWaitSeconds, waitForIdentity } from '../src/startup.ts';

const UNAVAILABLE = new AuthError(
  'AUTH_ERR_WORKLOAD_UNAVAILABLE',
  'FetchX509SVID: the Workload API socket /tmp/x/agent.sock does not exist yet; is the SPIRE agent running and its socket mounted here?',
);

async function ops(t: TestContext, checks: Record<string, ReadinessCheck>): Promise<string> {
  const app = await startOpsServer({ host: '127.0.0.1', port: 0, metrics: createServiceMetrics('svc'), checks });
  t.after(() => app.close());
  return `http://127.0.0.1:${String((app.server.address() as AddressInfo).port)}`;
}

function warnings(): { lines: { obj: object; msg: string }[]; warn: (obj: object, msg: string) => void } {
  const lines: { obj: object; msg: string }[] = [];
  return { lines, warn: (obj, msg) => lines.push({ obj, msg }) };
}

describe('regression: the ops port before the identity (issue 17)', () => {
  test('regression: before the identity, /health/live is 200 and /health/ready 503 naming the reason; ready once it arrives', async (t) => {
    const td = await createTestTrustDomain('example.org');
    const source = new MemorySource({ kind: 'spiffe' });
    const startup = new StartupGate();
    const checks: Record<string, ReadinessCheck> = { identity: identityCheck(source), started: startup.check };
    const base = await ops(t, checks);

    assert.equal((await request(`${base}/health/live`)).statusCode, 200);
    let res = await request(`${base}/health/ready`);
    assert.equal(res.statusCode, 503);
    assert.deepEqual(await res.body.json(), {
      status: 'not ready',
      checks: { identity: false, started: false },
      reasons: {
        identity: 'waiting for the first X.509-SVID from memory source (tests): nothing received yet',
        started: 'start-up under way: the API listeners are not up yet',
      },
    });

    source.reportError(UNAVAILABLE);
    res = await request(`${base}/health/ready`);
    const body = (await res.body.json()) as { reasons: Record<string, string> };
    assert.equal(
      body.reasons.identity,
      `waiting for the first X.509-SVID from memory source (tests): AUTH_ERR_WORKLOAD_UNAVAILABLE: ${UNAVAILABLE.message}`,
    );

    // Positive control: identity, then the store, then the listeners: ready, and no reasons left.
    source.set(await td.svid('/svc'), [td.bundle]);
    checks.store = () => true;
    res = await request(`${base}/health/ready`);
    assert.equal(res.statusCode, 503, 'not ready before the listeners are up');
    startup.open();
    res = await request(`${base}/health/ready`);
    assert.equal(res.statusCode, 200);
    assert.deepEqual(await res.body.json(), {
      status: 'ready',
      checks: { identity: true, started: true, store: true },
    });
  });

  test('an expired identity names the SVID and its expiry (positive control: a valid one has no reason)', async (t) => {
    const td = await createTestTrustDomain('example.org');
    const hour = 3_600_000;
    const expired = MemorySource.create(
      await td.svid('/svc', { notBefore: new Date(Date.now() - 2 * hour), notAfter: new Date(Date.now() - hour) }),
      [td.bundle],
    );
    const valid = MemorySource.create(await td.svid('/svc'), [td.bundle]);
    const base = await ops(t, { identity: identityCheck(expired), other: identityCheck(valid) });
    const res = await request(`${base}/health/ready`);
    assert.equal(res.statusCode, 503);
    const body = (await res.body.json()) as { checks: Record<string, boolean>; reasons: Record<string, string> };
    assert.deepEqual(body.checks, { identity: false, other: true });
    assert.match(body.reasons.identity ?? '', /^the X\.509-SVID spiffe:\/\/example\.org\/svc expired at \S+Z/);
    assert.equal(body.reasons.other, undefined);
  });

  test('a check that throws is not ready, with the error as its reason', async (t) => {
    const base = await ops(t, {
      broken: () => {
        throw new Error('boom');
      },
      fine: () => true,
    });
    const res = await request(`${base}/health/ready`);
    assert.equal(res.statusCode, 503);
    assert.deepEqual(await res.body.json(), {
      status: 'not ready',
      checks: { broken: false, fine: true },
      reasons: { broken: 'the check failed: boom' },
    });
  });
});

describe('regression: waitForIdentity and IDENTITY_WAIT_SECONDS (issue 17)', () => {
  test('regression: with a deadline it gives up with SVC_ERR_IDENTITY_TIMEOUT naming the last reason', async () => {
    const source = new MemorySource({ kind: 'spiffe' });
    const log = warnings();
    const started = Date.now();
    const waiting = waitForIdentity(source, { env: { IDENTITY_WAIT_SECONDS: '1' }, log });
    source.reportError(UNAVAILABLE);
    source.reportError(UNAVAILABLE);
    await assert.rejects(waiting, (err: unknown) => {
      assert.ok(err instanceof IdentityWaitError);
      assert.equal(err.code, 'SVC_ERR_IDENTITY_TIMEOUT');
      assert.match(
        err.message,
        /^no identity within 1 s \(IDENTITY_WAIT_SECONDS=1\): waiting for the first X\.509-SVID/,
      );
      assert.match(err.message, /AUTH_ERR_WORKLOAD_UNAVAILABLE: .*does not exist yet/);
      assert.equal(err.cause, UNAVAILABLE);
      return true;
    });
    assert.ok(Date.now() - started >= 990, 'it waited for the deadline');
    // One line when waiting starts, one when the reason changed; the repeat is not logged again.
    assert.deepEqual(
      log.lines.map((l) => (l.obj as { reason: string }).reason),
      [
        'waiting for the first X.509-SVID from memory source (tests): nothing received yet',
        `waiting for the first X.509-SVID from memory source (tests): AUTH_ERR_WORKLOAD_UNAVAILABLE: ${UNAVAILABLE.message}`,
      ],
    );
    assert.match(log.lines[0]?.msg ?? '', /waiting for the identity \(up to 1 s\)/);
  });

  test('positive control: the identity arriving before the deadline resolves the wait', async () => {
    const td = await createTestTrustDomain('example.org');
    const source = new MemorySource({ kind: 'spiffe' });
    const waiting = waitForIdentity(source, { waitSeconds: 5 });
    source.reportError(UNAVAILABLE);
    source.set(await td.svid('/svc'), [td.bundle]);
    await waiting;
    assert.equal(source.isReady, true);
  });

  test('without a deadline (the default, 0) it keeps waiting; a source that gives up ends the wait with its error', async () => {
    const source = new MemorySource({ kind: 'spiffe' });
    const waiting = waitForIdentity(source, { env: {} });
    const outcome = await Promise.race([
      waiting.then(
        () => 'resolved',
        () => 'rejected',
      ),
      new Promise((r) => setTimeout(r, 300, 'still waiting')),
    ]);
    assert.equal(outcome, 'still waiting');
    await source.close();
    await assert.rejects(waiting, (err: unknown) => err instanceof AuthError && err.code === 'AUTH_ERR_SOURCE_CLOSED');
  });

  test('IDENTITY_WAIT_SECONDS must be a whole number of seconds ≥ 0 (positive control: 0 and 30 are fine)', () => {
    assert.equal(identityWaitSeconds({}), 0);
    assert.equal(identityWaitSeconds({ IDENTITY_WAIT_SECONDS: '0' }), 0);
    assert.equal(identityWaitSeconds({ IDENTITY_WAIT_SECONDS: '30' }), 30);
    for (const bad of ['-1', 'soon', '1.5']) {
      assert.throws(
        () => identityWaitSeconds({ IDENTITY_WAIT_SECONDS: bad }),
        (e: unknown) => e instanceof ConfigError && e.variable === 'IDENTITY_WAIT_SECONDS',
      );
    }
  });
});

describe('regression: the identity log before the first identity', () => {
  test('regression: a refused update before any identity says "still trying", not "keeping the last good one"; once loaded it keeps the last good', async () => {
    const td = await createTestTrustDomain('example.org');
    const source = new MemorySource({ kind: 'spiffe' });
    const lines: string[] = [];
    const log = { info: () => undefined, warn: (_o: object, msg: string) => lines.push(msg), error: () => undefined };
    observeIdentity(source, createServiceMetrics('svc'), log);
    source.reportError(UNAVAILABLE);
    assert.deepEqual(lines, ['no usable identity yet; still trying']);
    // Positive control: with an identity in use, a refused update keeps it, and says so.
    source.set(await td.svid('/svc'), [td.bundle]);
    source.reportError(UNAVAILABLE);
    assert.deepEqual(lines, [
      'no usable identity yet; still trying',
      'identity update refused; keeping the last good one',
    ]);
    await source.close();
  });
});
