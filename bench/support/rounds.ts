// Alternating rounds: every variant once per round, the order shifted by one
// each round, so slow drift on a shared machine (another job, thermal state)
// spreads over all variants instead of landing on one.
import type { LoadResult } from '../load/closed-loop.ts';
import { progress } from './progress.ts';

/** Window is how long one run warms up and measures. */
export interface Window {
  warmupMs: number;
  durationMs: number;
}

/** Runner measures one variant once, for `window`. */
export interface Runner {
  id: string;
  run: (window: Window) => Promise<LoadResult>;
}

/**
 * alternate runs every runner `rounds` times, alternating, and returns each
 * one's results in round order. A short unrecorded round comes first, so no
 * variant pays for the load generator's own warm-up (JIT, first connections).
 */
export async function alternate(
  label: string,
  runners: Runner[],
  rounds: number,
  window: Window,
): Promise<Map<string, LoadResult[]>> {
  const out = new Map<string, LoadResult[]>(runners.map((x) => [x.id, []]));
  for (const runner of runners) await runner.run({ warmupMs: 0, durationMs: window.warmupMs });
  for (let round = 0; round < rounds; round++) {
    for (let i = 0; i < runners.length; i++) {
      const runner = runners[(i + round) % runners.length];
      if (!runner) continue;
      const result = await runner.run(window);
      out.get(runner.id)?.push(result);
      progress(
        `  ${label} round ${round + 1}/${rounds} ${runner.id}: ${result.throughput.toFixed(0)}/s p50 ${result.p50.toFixed(2)} ms p99 ${result.p99.toFixed(2)} ms${cpuText(result)}${result.errors ? ` errors ${result.errors}` : ''}`,
      );
    }
  }
  return out;
}

function cpuText(r: LoadResult): string {
  const parts = Object.entries(r.cpuUsPerRequest)
    .filter(([, v]) => v !== null)
    .map(([k, v]) => `${k} ${(v ?? 0).toFixed(0)}`);
  return parts.length > 0 ? ` cpu µs/req ${parts.join(' ')}` : '';
}
