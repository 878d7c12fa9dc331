// An open-loop load generator: requests leave on a constant arrival schedule
// (one every 1000/rate ms) whether or not earlier ones have answered, and a
// request's latency runs from the time it was MEANT to leave. A closed loop
// (and a scheduler that measures from the actual send) waits for the server
// before sending more, so a stall delays the requests that would have queued
// behind it instead of counting them slow: coordinated omission. Here a stall
// shows up in the percentiles as it would for real clients.
//
// Hand-written: autocannon's `overallRate` paces a closed loop and measures
// from the actual send; autocannon, loadtest and artillery (npm) offer no
// intended-time latency; wrk2 and k6 are not npm packages.
import type { CpuMeter } from '../support/cpu-meter.ts';
import { cpuPerRequest, type Attempt, type LoadResult } from './closed-loop.ts';

/** OpenLoopOptions set the rate, the window and the bounds of one run. */
export interface OpenLoopOptions {
  /** rate is the target arrival rate, requests per second. */
  rate: number;
  /** warmupMs is run on the same schedule before measuring; not counted. */
  warmupMs: number;
  /** durationMs is the measured window. */
  durationMs: number;
  /**
   * maxInFlight bounds the requests outstanding at once; a request due while
   * the bound is reached is not sent and is counted in `overflow` (the run
   * did not keep up). Keep it at or above the client's connections.
   */
  maxInFlight: number;
  /** drainMs is how long requests still in flight after the window may take before counting as errors. Default: 5000. */
  drainMs?: number;
  /** meters read CPU time at the window's edges, for CPU per request on each side. */
  meters?: CpuMeter[];
}

/** OpenLoopResult adds what only an open loop knows to LoadResult. */
export interface OpenLoopResult extends LoadResult {
  /** targetRate is the rate asked for. */
  targetRate: number;
  /** p999 is the 99.9th percentile of latency from the intended send time (ms). */
  p999: number;
  /** scheduled requests in the window (intended send time inside it). */
  scheduled: number;
  /** overflow counts scheduled requests not sent because maxInFlight were outstanding. */
  overflow: number;
  /** sendLagP99 is the 99th percentile of (actual − intended) send time, ms: the generator's own lag. */
  sendLagP99: number;
}

/** intendedSendTime is when request `index` (0-based) of a run started at `start` is due, ms. */
export function intendedSendTime(start: number, index: number, rate: number): number {
  return start + (index * 1000) / rate;
}

/** dueCount is how many requests of a run started at `start` are due by `now` (all with intended time ≤ now). */
export function dueCount(start: number, now: number, rate: number): number {
  if (now < start) return 0;
  // The small epsilon keeps float error from postponing a request due exactly now.
  return Math.floor(((now - start) * rate) / 1000 + 1e-9) + 1;
}

/** latencyFromIntended is a request's latency as its caller would see it: from the intended send time to completion. */
export function latencyFromIntended(intended: number, completed: number): number {
  return completed - intended;
}

/** LatencyFigures are the percentiles an open-loop run reports, ms. */
export interface LatencyFigures {
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
}

/**
 * rank is the nearest-rank percentile of `sorted`, with the rank rounded
 * before ceil: 99.9 / 100 × 1000 is 999.0000000000001 in floating point, and
 * support/stats.ts's percentile would read the 1000th value for p99.9.
 */
function rank(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const r = Math.ceil(Number(((p / 100) * sorted.length).toFixed(6)));
  return sorted[Math.min(sorted.length - 1, Math.max(0, r - 1))] ?? Number.NaN;
}

/** latencyFigures sorts `ms` in place and reads p50/p90/p99/p99.9/max. */
export function latencyFigures(ms: Float64Array): LatencyFigures {
  ms.sort();
  return {
    p50: rank(ms, 50),
    p90: rank(ms, 90),
    p99: rank(ms, 99),
    p999: rank(ms, 99.9),
    max: ms.length > 0 ? (ms[ms.length - 1] ?? Number.NaN) : Number.NaN,
  };
}

/** runOpenLoop sends `attempt` at `o.rate` per second for the warm-up and the window, then waits for the stragglers. */
export async function runOpenLoop(attempt: Attempt, o: OpenLoopOptions): Promise<OpenLoopResult> {
  const total = Math.ceil(((o.warmupMs + o.durationMs) * o.rate) / 1000);
  const begin = performance.now();
  const windowStart = begin + o.warmupMs;
  const windowEnd = windowStart + o.durationMs;
  const latencies = new Float64Array(total);
  const lags = new Float64Array(total);
  let measured = 0;
  let lagged = 0;
  let scheduled = 0;
  let overflow = 0;
  let errors = 0;
  let completedInWindow = 0;
  let inFlight = 0;
  const errorSamples: string[] = [];
  const note = (message: string): void => {
    if (errorSamples.length < 5 && !errorSamples.includes(message)) errorSamples.push(message);
  };
  const meters = o.meters ?? [];
  let cpuStart: (number | null)[] | undefined;
  let cpuEnd: (number | null)[] | undefined;
  let idle: (() => void) | undefined;

  const send = (intended: number, now: number): void => {
    const counted = intended >= windowStart && intended < windowEnd;
    if (counted) scheduled++;
    if (inFlight >= o.maxInFlight) {
      if (counted) overflow++;
      return;
    }
    if (counted) lags[lagged++] = now - intended;
    inFlight++;
    const finish = (ok: boolean, err?: unknown): void => {
      inFlight--;
      const done = performance.now();
      if (done >= windowStart && done <= windowEnd && ok) completedInWindow++;
      if (counted) {
        if (ok) latencies[measured++] = latencyFromIntended(intended, done);
        else {
          errors++;
          if (err === undefined) note('unexpected answer');
          else {
            const code = (err as { code?: string }).code;
            note(`${code ? `${code}: ` : ''}${(err as Error).message}`);
          }
        }
      }
      if (inFlight === 0) idle?.();
    };
    attempt().then(
      (ok) => {
        finish(ok);
      },
      (err: unknown) => {
        finish(false, err);
      },
    );
  };

  let next = 0;
  await new Promise<void>((resolve) => {
    const tick = (): void => {
      const now = performance.now();
      if (!cpuStart && now >= windowStart) cpuStart = meters.map((m) => m.read());
      const due = Math.min(total, dueCount(begin, now, o.rate));
      while (next < due) {
        send(intendedSendTime(begin, next, o.rate), now);
        next++;
      }
      if (now >= windowEnd) cpuEnd ??= meters.map((m) => m.read());
      if (next >= total && cpuEnd) {
        resolve();
        return;
      }
      const wait = Math.min(intendedSendTime(begin, next, o.rate), windowEnd) - performance.now();
      setTimeout(tick, Math.max(0, wait));
    };
    tick();
  });
  // Stragglers still count (their latency is the point), up to drainMs.
  if (inFlight > 0) {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, o.drainMs ?? 5000);
      idle = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }
  const lost = scheduled - overflow - measured - errors;
  if (lost > 0) {
    errors += lost;
    note(`${lost} requests still in flight ${o.drainMs ?? 5000} ms after the window`);
  }
  const ms = latencies.subarray(0, measured);
  const figures = latencyFigures(ms);
  const lag = lags.subarray(0, lagged).sort();
  return {
    ...figures,
    targetRate: o.rate,
    scheduled,
    overflow,
    sendLagP99: rank(lag, 99),
    throughput: completedInWindow / (o.durationMs / 1000),
    requests: measured,
    errors,
    errorSamples,
    windowStart,
    cpuUsPerRequest: cpuPerRequest(meters, cpuStart ?? [], cpuEnd ?? [], completedInWindow),
  };
}
