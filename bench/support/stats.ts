// Small statistics for benchmark figures: percentiles of one run, medians
// over rounds, and paired ratios (each round's ratio, then their median).

/** percentile is the nearest-rank `p`-th percentile (0–100) of `sorted` (ascending); NaN when empty. */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))] ?? Number.NaN;
}

/** median of `values` (NaN when empty). */
export function median(values: readonly number[]): number {
  const v = values.filter((x) => !Number.isNaN(x)).sort((a, b) => a - b);
  if (v.length === 0) return Number.NaN;
  const mid = Math.floor(v.length / 2);
  return v.length % 2 === 1 ? (v[mid] ?? Number.NaN) : ((v[mid - 1] ?? 0) + (v[mid] ?? 0)) / 2;
}

/** LatencySummary is one run's latency distribution, in milliseconds. */
export interface LatencySummary {
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

/** summarizeLatencies sorts `ms` in place and reads its percentiles. */
export function summarizeLatencies(ms: Float64Array): LatencySummary {
  ms.sort();
  return {
    p50: percentile(ms, 50),
    p90: percentile(ms, 90),
    p99: percentile(ms, 99),
    max: ms.length > 0 ? (ms[ms.length - 1] ?? Number.NaN) : Number.NaN,
  };
}

/** Spread is the median of a figure over rounds, with its smallest and largest value. */
export interface Spread {
  median: number;
  min: number;
  max: number;
}

/** spread summarizes one figure over rounds. */
export function spread(values: readonly number[]): Spread {
  const v = values.filter((x) => !Number.isNaN(x));
  return {
    median: median(v),
    min: v.length > 0 ? Math.min(...v) : Number.NaN,
    max: v.length > 0 ? Math.max(...v) : Number.NaN,
  };
}

/**
 * pairedRatio divides round by round (`a[i] / b[i]`, the two measured next to
 * each other in time) and summarizes those ratios; pairing cancels most of
 * the drift a busy machine adds over a run.
 */
export function pairedRatio(a: readonly number[], b: readonly number[]): Spread {
  const ratios: number[] = [];
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    const x = a[i];
    const y = b[i];
    if (x !== undefined && y !== undefined && y !== 0) ratios.push(x / y);
  }
  return spread(ratios);
}

/** round rounds to `digits` significant decimals for reports (3 significant digits by default). */
export function round(value: number, digits = 3): number {
  if (!Number.isFinite(value) || value === 0) return value;
  const magnitude = Math.floor(Math.log10(Math.abs(value)));
  const factor = 10 ** Math.max(0, digits - 1 - magnitude);
  return Math.round(value * factor) / factor;
}
