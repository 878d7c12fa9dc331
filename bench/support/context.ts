// What every scenario gets from the runner.
import { join } from 'node:path';
import type { Cleanup } from './cleanup.ts';
import type { ScenarioResult } from './figures.ts';
import type { BenchPki } from './pki.ts';
import type { Profile } from './profile.ts';

/** BENCH_DIR is the bench's folder. */
export const BENCH_DIR = join(import.meta.dirname, '..');

/** BenchContext is shared by all scenarios of one run. */
export interface BenchContext {
  profile: Profile;
  pki: BenchPki;
  /** tmp is the run's temporary directory (removed at the end). */
  tmp: string;
}

/** ScenarioOutcome is what a scenario's run returns; the runner adds id, title and time. */
export type ScenarioOutcome = Omit<ScenarioResult, 'id' | 'title' | 'seconds'>;

/** Scenario is one of the bench's measurements. */
export interface Scenario {
  id: string;
  title: string;
  run(ctx: BenchContext, cleanup: Cleanup): Promise<ScenarioOutcome>;
}

/** serverScript is the path of a child server entry point under bench/servers. */
export function serverScript(name: string): string {
  return join(BENCH_DIR, 'servers', name);
}
