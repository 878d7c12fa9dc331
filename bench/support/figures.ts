// What a scenario reports: per variant the figures of every round and their
// medians, and paired ratios between variants. This is the JSON schema of
// bench/results/<date>.json.
import type { LoadResult } from '../load/closed-loop.ts';
import { pairedRatio, round, spread, type Spread } from './stats.ts';

/** RoundFigures are one variant's figures in one round. */
export interface RoundFigures {
  throughput: number;
  p50: number;
  p99: number;
  errors: number;
  /** cpu is CPU microseconds per request, by side ("server", "client"); null where not measurable. */
  cpu: Record<string, number | null>;
}

/** VariantFigures are one variant over all rounds. */
export interface VariantFigures {
  id: string;
  label: string;
  rounds: RoundFigures[];
  throughput: Spread;
  p50: Spread;
  p99: Spread;
  /** cpu is CPU microseconds per request by side, over rounds. */
  cpu: Record<string, Spread>;
  /** errors over all rounds (must be 0 for the figures to mean anything). */
  errors: number;
  errorSamples: string[];
  /** extra holds variant-specific counters (connections, resumptions, verifications). */
  extra?: Record<string, number | string | boolean>;
}

/** Comparison is a ratio pair: `of` divided by `to`, round by round. */
export interface Comparison {
  of: string;
  to: string;
  /** meaning says in words what the ratio shows. */
  meaning: string;
  /** headline puts the ratio in the report's summary table. */
  headline: boolean;
  throughput: Spread;
  p50: Spread;
  p99: Spread;
  /** cpu compares CPU per request, by side. */
  cpu: Record<string, Spread>;
}

/** Group is one set of variants run alternately against each other. */
export interface Group {
  id: string;
  title: string;
  /** unit of throughput, e.g. "req/s", "handshakes/s". */
  unit: string;
  variants: VariantFigures[];
  comparisons: Comparison[];
  /** latencyResolutionMs is set when the load generator records latency coarsely (autocannon: whole ms). */
  latencyResolutionMs?: number;
}

/** Check is a correctness assertion the bench makes on its own run (never a performance threshold). */
export interface Check {
  name: string;
  ok: boolean;
  detail: string;
}

/** ScenarioResult is everything one scenario measured. */
export interface ScenarioResult {
  id: string;
  title: string;
  settings: Record<string, number | string | boolean>;
  groups: Group[];
  checks: Check[];
  notes: string[];
  /** skipped says why the scenario did not run (e.g. no `go` on PATH). */
  skipped?: string;
  /** extra holds scenario-specific figures (rotation windows). */
  extra?: Record<string, unknown>;
  seconds: number;
}

const r = (x: number): number => round(x, 4);
const rs = (s: Spread): Spread => ({ median: r(s.median), min: r(s.min), max: r(s.max) });

/** variantFigures summarizes one variant's runs. */
export function variantFigures(id: string, label: string, runs: LoadResult[]): VariantFigures {
  const rounds = runs.map((x) => ({
    throughput: r(x.throughput),
    p50: r(x.p50),
    p99: r(x.p99),
    errors: x.errors,
    cpu: Object.fromEntries(Object.entries(x.cpuUsPerRequest).map(([k, v]) => [k, v === null ? null : r(v)])),
  }));
  const errorSamples = [...new Set(runs.flatMap((x) => x.errorSamples))].slice(0, 5);
  return {
    id,
    label,
    rounds,
    throughput: rs(spread(runs.map((x) => x.throughput))),
    p50: rs(spread(runs.map((x) => x.p50))),
    p99: rs(spread(runs.map((x) => x.p99))),
    cpu: Object.fromEntries(sides(rounds).map((k) => [k, rs(spread(cpuOf(rounds, k)))])),
    errors: runs.reduce((s, x) => s + x.errors, 0),
    errorSamples,
  };
}

/** compare builds the ratio pair `of` / `to` from two variants' rounds. */
export function compare(
  variants: VariantFigures[],
  of: string,
  to: string,
  meaning: string,
  headline = false,
): Comparison {
  const a = variants.find((v) => v.id === of);
  const b = variants.find((v) => v.id === to);
  if (!a || !b) throw new Error(`compare: no variant ${a ? to : of}`);
  const pick = (v: VariantFigures, k: 'throughput' | 'p50' | 'p99'): number[] => v.rounds.map((x) => x[k]);
  return {
    of,
    to,
    meaning,
    headline,
    throughput: rs(pairedRatio(pick(a, 'throughput'), pick(b, 'throughput'))),
    p50: rs(pairedRatio(pick(a, 'p50'), pick(b, 'p50'))),
    p99: rs(pairedRatio(pick(a, 'p99'), pick(b, 'p99'))),
    cpu: Object.fromEntries(
      sides(a.rounds)
        .filter((k) => sides(b.rounds).includes(k))
        .map((k) => [k, rs(pairedRatio(cpuOf(a.rounds, k), cpuOf(b.rounds, k)))]),
    ),
  };
}

function sides(rounds: RoundFigures[]): string[] {
  return [...new Set(rounds.flatMap((x) => Object.keys(x.cpu)))];
}

function cpuOf(rounds: RoundFigures[], side: string): number[] {
  return rounds.map((x) => x.cpu[side] ?? Number.NaN);
}
