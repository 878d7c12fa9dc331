import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createBreaker, retry } from '../src/breaker.ts';
import { createServiceMetrics } from '../src/metrics.ts';

const log = { info: () => undefined, warn: () => undefined, error: () => undefined };

async function stateOf(metrics: ReturnType<typeof createServiceMetrics>, breaker: string): Promise<number | undefined> {
  const m = await metrics.breakerState.get();
  return m.values.find((v) => v.labels.breaker === breaker)?.value;
}

describe('createBreaker', () => {
  test('passes calls while healthy, opens after failures past the volume threshold, recovers half-open → closed', async () => {
    const metrics = createServiceMetrics('t');
    let healthy = true;
    const b = createBreaker(
      'up:http',
      (x: number) => (healthy ? Promise.resolve(x * 2) : Promise.reject(new Error('down'))),
      { volumeThreshold: 3, resetTimeoutMs: 100 },
      { metrics, log },
    );
    assert.equal(await b.fire(2), 4);
    assert.equal(await stateOf(metrics, 'up:http'), 0);
    healthy = false;
    for (let i = 0; i < 4; i++) await assert.rejects(b.fire(1), /down|open/i);
    assert.equal(b.opened, true);
    assert.equal(await stateOf(metrics, 'up:http'), 2);
    await assert.rejects(b.fire(1), (e: NodeJS.ErrnoException) => e.code === 'EOPENBREAKER');
    healthy = true;
    await new Promise((r) => setTimeout(r, 150));
    assert.equal(await b.fire(3), 6);
    assert.equal(b.closed, true);
    assert.equal(await stateOf(metrics, 'up:http'), 0);
    b.shutdown();
  });

  test('times out slow calls; errors isFailure rejects do not count against the upstream', async () => {
    const metrics = createServiceMetrics('t');
    const slow = createBreaker(
      'slow:http',
      () => new Promise((r) => setTimeout(r, 200)),
      { timeoutMs: 20 },
      { metrics, log },
    );
    await assert.rejects(slow.fire(), (e: NodeJS.ErrnoException) => e.code === 'ETIMEDOUT');
    slow.shutdown();
    const clientErr = Object.assign(new Error('422'), { statusCode: 422 });
    const b = createBreaker(
      'biz:http',
      () => Promise.reject(clientErr),
      { volumeThreshold: 1, isFailure: (e) => (e as { statusCode?: number }).statusCode !== 422 },
      { metrics, log },
    );
    for (let i = 0; i < 5; i++) await assert.rejects(b.fire(), /422/);
    assert.equal(b.closed, true, '4xx answers do not open the breaker');
    b.shutdown();
  });
});

describe('retry', () => {
  test('retries until success within the bound, and stops at the bound or on a non-retryable error', async () => {
    let n = 0;
    assert.equal(
      await retry(() => (++n < 3 ? Promise.reject(new Error('flaky')) : Promise.resolve('ok')), { baseMs: 1 }),
      'ok',
    );
    assert.equal(n, 3);
    n = 0;
    await assert.rejects(
      retry(
        () => {
          n++;
          return Promise.reject(new Error('always'));
        },
        { attempts: 4, baseMs: 1 },
      ),
      /always/,
    );
    assert.equal(n, 4);
    n = 0;
    await assert.rejects(
      retry(
        () => {
          n++;
          return Promise.reject(new Error('fatal'));
        },
        { baseMs: 1, retryOn: () => false },
      ),
      /fatal/,
    );
    assert.equal(n, 1);
  });
});
