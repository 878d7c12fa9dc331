// A closed-loop load generator: `concurrency` workers, each sending its next
// request as soon as the previous one finished. The same loop drives every
// HTTP and gRPC variant, so their figures differ only in what is measured.
import type { CpuMeter } from '../support/cpu-meter.ts';
import { summarizeLatencies, type LatencySummary } from '../support/stats.ts';

/** LoadOptions set how hard and how long one run drives a target. */
export interface LoadOptions {
  /** concurrency is the number of requests in flight at any time. */
  concurrency: number;
  /** warmupMs is run before measuring (connections, JIT); not counted. */
  warmupMs: number;
  /** durationMs is the measured window. */
  durationMs: number;
  /** meters read CPU time at the window's start and end, for CPU per request on each side. */
  meters?: CpuMeter[];
  /** keepSamples keeps each request's start time and latency (for windows around events). Default: false. */
  keepSamples?: boolean;
}

/** Samples are the requests of the measured window: start (ms, performance.now()), latency (ms), success. */
export interface Samples {
  start: Float64Array;
  latency: Float64Array;
  ok: Uint8Array;
}

/** LoadResult is what one run measured. */
export interface LoadResult extends LatencySummary {
  /** throughput is completed requests per second in the measured window, failures excluded. */
  throughput: number;
  /** requests completed successfully in the window. */
  requests: number;
  /** errors in the window: exceptions and unexpected answers. */
  errors: number;
  /** errorSamples are the first few error messages, to say what failed. */
  errorSamples: string[];
  /** windowStart is when measuring began (performance.now()). */
  windowStart: number;
  /** cpuUsPerRequest is CPU microseconds per successful request in the window, by side (null: not measurable). */
  cpuUsPerRequest: Record<string, number | null>;
  samples?: Samples;
}

/** Attempt is one request: resolves true on the expected answer, false (or throws) otherwise. */
export type Attempt = () => Promise<boolean>;

class Growable {
  #a = new Float64Array(4096);
  length = 0;
  push(v: number): void {
    if (this.length === this.#a.length) {
      const b = new Float64Array(this.#a.length * 2);
      b.set(this.#a);
      this.#a = b;
    }
    this.#a[this.length++] = v;
  }
  view(): Float64Array {
    return this.#a.subarray(0, this.length);
  }
}

/** runClosedLoop drives `attempt` at fixed concurrency and measures the window after the warm-up. */
export async function runClosedLoop(attempt: Attempt, o: LoadOptions): Promise<LoadResult> {
  const begin = performance.now();
  const windowStart = begin + o.warmupMs;
  const windowEnd = windowStart + o.durationMs;
  const okLatency = new Growable();
  const starts = new Growable();
  const latencies = new Growable();
  const oks: number[] = [];
  let errors = 0;
  const errorSamples: string[] = [];
  const note = (message: string): void => {
    if (errorSamples.length < 5 && !errorSamples.includes(message)) errorSamples.push(message);
  };
  const meters = o.meters ?? [];
  let cpuStart: (number | null)[] | undefined;
  let cpuEnd: (number | null)[] | undefined;
  // Read the meters as close to the window's edges as the event loop allows:
  // from the workers as they pass them, or from a timer when requests are slow.
  const checkpoint = (): void => {
    const now = performance.now();
    if (!cpuStart && now >= windowStart) cpuStart = meters.map((m) => m.read());
    if (!cpuEnd && now >= windowEnd) cpuEnd = meters.map((m) => m.read());
  };
  const startTimer = setTimeout(checkpoint, o.warmupMs);
  const endTimer = setTimeout(checkpoint, o.warmupMs + o.durationMs);
  const worker = async (): Promise<void> => {
    while (performance.now() < windowEnd) {
      const t0 = performance.now();
      let ok = false;
      try {
        ok = await attempt();
        if (!ok) note('unexpected answer');
      } catch (err) {
        const code = (err as { code?: string }).code;
        note(`${code ? `${code}: ` : ''}${(err as Error).message}`);
      }
      const t1 = performance.now();
      checkpoint();
      // A request counts in the window it completed in.
      if (t1 < windowStart || t1 > windowEnd) continue;
      if (ok) okLatency.push(t1 - t0);
      else errors++;
      if (o.keepSamples) {
        starts.push(t0);
        latencies.push(t1 - t0);
        oks.push(ok ? 1 : 0);
      }
    }
  };
  await Promise.all(Array.from({ length: o.concurrency }, () => worker()));
  checkpoint();
  clearTimeout(startTimer);
  clearTimeout(endTimer);
  const ms = okLatency.view();
  const summary = summarizeLatencies(ms);
  return {
    ...summary,
    throughput: ms.length / (o.durationMs / 1000),
    requests: ms.length,
    errors,
    errorSamples,
    windowStart,
    cpuUsPerRequest: cpuPerRequest(meters, cpuStart ?? [], cpuEnd ?? [], ms.length),
    ...(o.keepSamples
      ? { samples: { start: starts.view().slice(), latency: latencies.view().slice(), ok: Uint8Array.from(oks) } }
      : {}),
  };
}

/** cpuPerRequest turns two meter readings into CPU microseconds per request, by side. */
export function cpuPerRequest(
  meters: CpuMeter[],
  start: (number | null)[],
  end: (number | null)[],
  requests: number,
): Record<string, number | null> {
  const out: Record<string, number | null> = {};
  meters.forEach((m, i) => {
    const a = start[i];
    const b = end[i];
    out[m.side] = a == null || b == null || requests === 0 ? null : (b - a) / requests;
  });
  return out;
}
