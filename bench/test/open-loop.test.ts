// The open-loop generator's schedule and latency maths, and that it shows the
// queueing a closed loop hides (coordinated omission).
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import { runClosedLoop } from '../load/closed-loop.ts';
import { dueCount, intendedSendTime, latencyFigures, latencyFromIntended, runOpenLoop } from '../load/open-loop.ts';

test('intendedSendTime spaces requests 1000/rate ms apart from the start', () => {
  assert.equal(intendedSendTime(100, 0, 1000), 100);
  assert.equal(intendedSendTime(100, 4, 1000), 104);
  assert.equal(intendedSendTime(0, 3, 4000), 0.75);
  assert.equal(intendedSendTime(0, 1, 500), 2);
});

test('dueCount counts every request whose intended time has come, and none before the start', () => {
  assert.equal(dueCount(0, 0, 1000), 1, 'the first request is due at the start');
  assert.equal(dueCount(0, 9.999, 1000), 10);
  assert.equal(dueCount(0, 10, 1000), 11, 'a request due exactly now is sent now');
  assert.equal(dueCount(50, 60, 4000), 41);
  assert.equal(dueCount(10, 5, 1000), 0, 'nothing is due before the start');
  // It agrees with intendedSendTime: request n is due exactly when its time comes.
  for (const rate of [500, 1000, 2000, 4000]) {
    for (let n = 0; n < 200; n++) {
      const t = intendedSendTime(7, n, rate);
      assert.equal(dueCount(7, t, rate), n + 1, `rate ${rate} request ${n}`);
    }
  }
});

test('latencyFromIntended counts the wait before sending, not only the round trip', () => {
  // Due at 5, sent late at 8 (the generator or the connection pool was busy), answered at 9.
  assert.equal(latencyFromIntended(5, 9), 4);
  assert.equal(latencyFromIntended(5, 5.5), 0.5);
});

test('latencyFigures reads p50/p99/p99.9 by nearest rank', () => {
  const ms = Float64Array.from({ length: 1000 }, (_, i) => 1000 - i); // 1..1000, unsorted
  const f = latencyFigures(ms);
  assert.deepEqual([f.p50, f.p90, f.p99, f.p999, f.max], [500, 900, 990, 999, 1000]);
});

test('runOpenLoop keeps the rate when the target keeps up', async () => {
  const r = await runOpenLoop(
    async () => {
      await sleep(2);
      return true;
    },
    // maxInFlight is generous: on a loaded machine a timer can fire late and send a burst at once.
    { rate: 500, warmupMs: 100, durationMs: 600, maxInFlight: 10_000 },
  );
  assert.equal(r.scheduled, 300);
  assert.equal(r.overflow, 0);
  assert.equal(r.errors, 0);
  assert.equal(r.requests, 300);
  assert.ok(r.throughput > 350 && r.throughput < 650, `achieved ${r.throughput}/s of 500`);
  assert.ok(r.p50 >= 2 && r.p50 < 50, `p50 ${r.p50} ms for a 2 ms target`);
});

// A server that handles one request at a time in 5 ms: 200 req/s at most.
function serialServer(serviceMs: number): () => Promise<boolean> {
  let freeAt = 0;
  return async () => {
    const now = performance.now();
    const start = Math.max(now, freeAt);
    freeAt = start + serviceMs;
    await sleep(freeAt - now);
    return true;
  };
}

test('runOpenLoop shows the queue a closed loop hides when the target cannot keep up', async () => {
  // Positive control: a closed loop with one worker against the same server sees only the service time.
  const closed = await runClosedLoop(serialServer(5), { concurrency: 1, warmupMs: 50, durationMs: 500 });
  assert.ok(closed.p50 < 20, `closed loop p50 ${closed.p50} ms`);
  // Open loop at twice the capacity: the backlog grows through the window, and latency with it.
  const open = await runOpenLoop(serialServer(5), { rate: 400, warmupMs: 50, durationMs: 500, maxInFlight: 10_000 });
  assert.equal(open.overflow, 0);
  assert.equal(open.errors, 0);
  assert.ok(open.p99 > 150, `open loop p99 ${open.p99} ms should include ~half a second of queueing`);
  assert.ok(open.p99 > 2 * closed.p99, `open loop p99 ${open.p99} ms vs closed loop ${closed.p99} ms`);
  assert.ok(open.throughput < 260, `achieved ${open.throughput}/s: the server's capacity, not the 400 asked`);
});

test('runOpenLoop counts requests it could not send as overflow, and failures as errors', async () => {
  const r = await runOpenLoop(serialServer(5), { rate: 400, warmupMs: 0, durationMs: 500, maxInFlight: 4 });
  assert.ok(r.overflow > 50, `overflow ${r.overflow} of ${r.scheduled}`);
  assert.equal(r.requests + r.overflow + r.errors, r.scheduled);
  const failing = await runOpenLoop(
    () => Promise.reject(Object.assign(new Error('refused'), { code: 'ECONNREFUSED' })),
    { rate: 200, warmupMs: 0, durationMs: 200, maxInFlight: 10 },
  );
  // A late timer can send a burst past maxInFlight: those count as overflow, every other one as an error.
  assert.ok(failing.errors > 0);
  assert.equal(failing.errors + failing.overflow, failing.scheduled);
  assert.equal(failing.requests, 0);
  assert.deepEqual(failing.errorSamples, ['ECONNREFUSED: refused']);
});
