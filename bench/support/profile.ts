// How long and how hard each scenario runs: the full run for the report, and
// a quick one that only shows the bench still works (CI smoke check).

/** Profile holds every duration and concurrency of a run. */
export interface Profile {
  name: 'full' | 'quick';
  /** rounds each group of variants is alternated over. */
  rounds: number;
  warmupMs: number;
  /** durationMs is the measured window of one variant in one round (keep-alive HTTP, gRPC, Go). */
  durationMs: number;
  /** concurrency of keep-alive HTTP and gRPC: requests in flight (one connection each for HTTP/1.1). */
  concurrency: number;
  /** handshakeDurationMs is the window of one new-connection-per-request run. */
  handshakeDurationMs: number;
  handshakeConcurrency: number;
  /** chainDurationMs is the window of one orders run through the shop. */
  chainDurationMs: number;
  chainConcurrency: number;
  /** scaleDurationMs is the window of one orders run in the scale scenario (SQLite vs PostgreSQL, 1 vs 3 replicas). */
  scaleDurationMs: number;
  scaleConcurrency: number;
  /** rotationRunMs is how long load runs while identities rotate, every rotationPeriodMs. */
  rotationRunMs: number;
  rotationPeriodMs: number;
  /** autocannon adds autocannon's second opinion to the HTTP scenarios. */
  autocannon: boolean;
}

/** FULL is the report's profile: about 12 minutes on 2 cores. */
export const FULL: Profile = {
  name: 'full',
  rounds: 5,
  warmupMs: 500,
  durationMs: 3000,
  concurrency: 16,
  handshakeDurationMs: 2500,
  handshakeConcurrency: 8,
  chainDurationMs: 4000,
  chainConcurrency: 8,
  scaleDurationMs: 5000,
  scaleConcurrency: 24,
  rotationRunMs: 31_000,
  rotationPeriodMs: 3000,
  autocannon: true,
};

/** QUICK runs every scenario for a moment: it checks the bench, its figures mean nothing. */
export const QUICK: Profile = {
  name: 'quick',
  rounds: 2,
  warmupMs: 100,
  durationMs: 300,
  concurrency: 4,
  handshakeDurationMs: 300,
  handshakeConcurrency: 2,
  chainDurationMs: 500,
  chainConcurrency: 2,
  scaleDurationMs: 500,
  scaleConcurrency: 6,
  rotationRunMs: 2600,
  rotationPeriodMs: 800,
  autocannon: true,
};
