// `npm run bench`: what mutual TLS and @shop/auth cost, side by side in one
// run. Usage: node bench/run.ts [--quick] [--only <scenario>[,<scenario>…]] [--out <dir>]
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { writeReport } from './report/write-report.ts';
import { keepAlive } from './scenarios/keep-alive.ts';
import { newConnection } from './scenarios/new-connection.ts';
import { grpcUnary } from './scenarios/grpc-unary.ts';
import { chain } from './scenarios/chain.ts';
import { rotation } from './scenarios/rotation.ts';
import { goPeer } from './scenarios/go-peer.ts';
import { scale } from './scenarios/scale.ts';
import { otel } from './scenarios/otel.ts';
import { Cleanup, withCleanup } from './support/cleanup.ts';
import { BENCH_DIR, type BenchContext, type Scenario } from './support/context.ts';
import type { ScenarioResult } from './support/figures.ts';
import { describeMachine } from './support/machine.ts';
import { createBenchPki } from './support/pki.ts';
import { FULL, QUICK } from './support/profile.ts';
import { progress } from './support/progress.ts';

const SCENARIOS: Scenario[] = [keepAlive, newConnection, grpcUnary, chain, rotation, goPeer, scale, otel];

/** RunResult is the whole JSON file. */
export interface RunResult {
  startedAt: string;
  profile: typeof FULL;
  machine: ReturnType<typeof describeMachine>;
  loadAverageAtEnd: number[];
  seconds: number;
  scenarios: ScenarioResult[];
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      only: { type: 'string' },
      out: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(
      `usage: node bench/run.ts [--quick] [--only ${SCENARIOS.map((s) => s.id).join('|')}[,…]] [--out <dir>]\n`,
    );
    return 0;
  }
  const only = values.only?.split(',').map((s) => s.trim());
  const unknown = only?.filter((id) => !SCENARIOS.some((s) => s.id === id)) ?? [];
  if (unknown.length > 0) {
    process.stderr.write(
      `--only must name scenarios among ${SCENARIOS.map((s) => s.id).join(', ')} (got ${unknown.join(', ')})\n`,
    );
    return 2;
  }
  const selected = SCENARIOS.filter((s) => !only || only.includes(s.id));
  const profile = values.quick ? QUICK : FULL;
  // Only a complete full run goes to bench/results; anything else to a temporary folder unless --out says.
  const complete = profile === FULL && selected.length === SCENARIOS.length;
  const outDir = values.out ?? (complete ? join(BENCH_DIR, 'results') : join(tmpdir(), 'shop-bench'));

  const root = new Cleanup();
  process.on('exit', () => {
    root.exitNow();
  });
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      progress(`${signal}: stopping everything the bench started`);
      void root.run().finally(() => process.exit(130));
    });
  }

  const started = new Date();
  const t0 = performance.now();
  const machine = describeMachine();
  progress(
    `bench (${profile.name}): ${selected.map((s) => s.id).join(', ')} on ${machine.cpus} × ${machine.model}, load ${machine.loadAverage.join(' ')}`,
  );
  const tmp = await mkdtemp(join(tmpdir(), 'shop-bench-run-'));
  root.add('temporary directory', () => rm(tmp, { recursive: true, force: true }));
  const results: ScenarioResult[] = [];
  let failed = false;
  try {
    const ctx: BenchContext = { profile, pki: await createBenchPki(tmp), tmp };
    for (const s of selected) {
      const s0 = performance.now();
      progress(`== ${s.id}: ${s.title}`);
      try {
        const r = await withCleanup(root, (cleanup) => s.run(ctx, cleanup));
        results.push({ id: s.id, title: s.title, ...r, seconds: Math.round((performance.now() - s0) / 1000) });
        for (const c of r.checks) {
          progress(`  check ${c.ok ? 'ok  ' : 'FAIL'} ${c.name}: ${c.detail}`);
          if (!c.ok) failed = true;
        }
      } catch (err) {
        failed = true;
        progress(`  ${s.id} failed: ${(err as Error).stack ?? String(err)}`);
        results.push({
          id: s.id,
          title: s.title,
          settings: {},
          groups: [],
          checks: [{ name: 'scenario ran to the end', ok: false, detail: (err as Error).message }],
          notes: [],
          seconds: Math.round((performance.now() - s0) / 1000),
        });
      }
    }
  } finally {
    await root.run();
  }
  const run: RunResult = {
    startedAt: started.toISOString(),
    profile,
    machine,
    loadAverageAtEnd: describeMachine().loadAverage,
    seconds: Math.round((performance.now() - t0) / 1000),
    scenarios: results,
  };
  const written = await writeReport(run, outDir, { updateLatest: outDir === join(BENCH_DIR, 'results') });
  progress(`done in ${run.seconds} s: ${written.markdown}`);
  process.stdout.write(written.summary);
  return failed ? 1 : 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  },
);
