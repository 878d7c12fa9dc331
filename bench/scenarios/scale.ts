// Scenario 7: orders through the whole shop on SQLite and on PostgreSQL, and
// on PostgreSQL with 3 replicas of each service behind the harness's
// round-robin TCP balancers (scripts/tcp-balancer.ts), side by side. Skipped
// when no PostgreSQL server binaries are installed.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createDevCerts, freePorts, Shop, type ServiceName } from '../../scripts/shop.ts';
import { postgresMissing, startShopPostgres, type ShopPostgres } from '../../scripts/shop-postgres.ts';
import { runClosedLoop } from '../load/closed-loop.ts';
import { httpAttempt } from '../load/http-load.ts';
import type { Cleanup } from '../support/cleanup.ts';
import { type BenchContext, type Scenario, type ScenarioOutcome } from '../support/context.ts';
import { machineCpuMeter, selfCpuMeter } from '../support/cpu-meter.ts';
import { compare, variantFigures, type Check } from '../support/figures.ts';
import { plainClient } from '../support/http-clients.ts';
import { progress } from '../support/progress.ts';
import { alternate } from '../support/rounds.ts';

const PRODUCT = 'sku-bench';
const SERVICES: readonly ServiceName[] = ['order', 'payment', 'inventory'];

interface Variant {
  id: string;
  label: string;
  db: 'sqlite' | 'postgres';
  replicas: number;
}

const VARIANTS: Variant[] = [
  { id: 'sqlite-1', label: 'SQLite, 1 replica each (the default)', db: 'sqlite', replicas: 1 },
  { id: 'postgres-1', label: 'PostgreSQL, 1 replica each', db: 'postgres', replicas: 1 },
  { id: 'postgres-3', label: 'PostgreSQL, 3 replicas each (TCP balancers)', db: 'postgres', replicas: 3 },
];

/** scale is scenario 7: SQLite vs PostgreSQL, 1 vs 3 replicas. */
export const scale: Scenario = {
  id: 'scale',
  title: 'Scale: orders on SQLite vs PostgreSQL, and 1 vs 3 replicas of each service',
  async run(ctx: BenchContext, cleanup: Cleanup): Promise<ScenarioOutcome> {
    const p = ctx.profile;
    const missing = await postgresMissing();
    if (missing !== undefined)
      return { settings: {}, groups: [], checks: [], notes: [], skipped: `${missing} (scenario 7 needs it)` };
    const dir = join(ctx.tmp, 'scale');
    const certsDir = join(dir, 'certs');
    await createDevCerts(certsDir, true, [...SERVICES, 'postgres']);
    const seedFile = join(dir, 'catalogue.json');
    await writeFile(
      seedFile,
      JSON.stringify([
        { product_id: PRODUCT, name: 'Bench item', price_cents: 100, currency: 'EUR', on_hand: 1_000_000_000 },
      ]),
    );
    const exits: string[] = [];
    const shops = new Map<string, Shop>();
    for (const v of VARIANTS) {
      let pg: ShopPostgres | undefined;
      if (v.db === 'postgres') {
        progress(`scale: ${v.id}: a throwaway PostgreSQL`);
        const started = await startShopPostgres({ certsDir, replicas: v.replicas });
        pg = started;
        cleanup.add(`PostgreSQL of ${v.id}`, () => started.stop());
      }
      const dbEnv = (name: ServiceName): Record<string, string> => pg?.env(name) ?? {};
      const shop = new Shop({
        dataDir: join(dir, v.id),
        certsDir,
        ports: await freePorts(),
        replicas: { order: v.replicas, payment: v.replicas, inventory: v.replicas },
        env: {
          inventory: { SEED_FILE: seedFile, ...dbEnv('inventory') },
          payment: dbEnv('payment'),
          // Inventory over HTTP in every variant: a per-connection balancer
          // would pin gRPC's one HTTP/2 connection to one inventory replica.
          order: { INVENTORY_PROTOCOL: 'http', ...dbEnv('order') },
        },
        onExit: (name, code, signal, replica) => {
          exits.push(`${v.id}: ${name}-${replica} exited (${signal ?? code ?? '?'})`);
        },
      });
      cleanup.onExit(() => {
        shop.killAllNow();
      });
      cleanup.add(`shop ${v.id}`, () => shop.stopAll());
      progress(`scale: ${v.id}: starting ${v.replicas} replica(s) of each service`);
      await shop.startAll();
      shops.set(v.id, shop);
    }

    const client = plainClient(cleanup, { connections: p.scaleConcurrency });
    const body = JSON.stringify({
      customer_id: 'bench',
      currency: 'EUR',
      items: [{ product_id: PRODUCT, quantity: 1 }],
    });
    // What the orders that were not confirmed said, per variant (status:reason), for the report.
    const refused = new Map<string, Map<string, number>>(VARIANTS.map((v) => [v.id, new Map()]));
    const runs = await alternate(
      'scale',
      VARIANTS.map((v) => {
        const attempt = httpAttempt({
          url: `${shops.get(v.id)?.orderUrl ?? ''}/orders`,
          dispatcher: client,
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body,
          expect: 201,
          accept: (text) => {
            const b = JSON.parse(text) as { status?: string; failure_reason?: string | null };
            if (b.status === 'confirmed') return true;
            const k = `${b.status ?? '?'}:${b.failure_reason ?? ''}`;
            const m = refused.get(v.id);
            m?.set(k, (m.get(k) ?? 0) + 1);
            return false;
          },
        });
        return {
          id: v.id,
          run: (w) =>
            runClosedLoop(attempt, {
              ...w,
              concurrency: p.scaleConcurrency,
              meters: [machineCpuMeter('machine'), selfCpuMeter('client')],
            }),
        };
      }),
      p.rounds,
      { warmupMs: p.warmupMs, durationMs: p.scaleDurationMs },
    );
    const figures = VARIANTS.map((v) => {
      const f = variantFigures(v.id, v.label, runs.get(v.id) ?? []);
      const m = refused.get(v.id);
      // Orders answered but not confirmed (counted as errors): what they said.
      if (m && m.size > 0) f.extra = Object.fromEntries([...m].map(([k, n]) => [`not confirmed ${k}`, n]));
      return f;
    });

    const threeUp = shops.get('postgres-3');
    const spread = SERVICES.map((n) => {
      const counts = threeUp?.balancers(n)[0]?.connections;
      return `${n}: ${[...(counts?.values() ?? [])].join('/')}`;
    });
    const everyReplica = SERVICES.every((n) => {
      const counts = threeUp?.balancers(n)[0]?.connections;
      return counts !== undefined && counts.size === 3;
    });
    const checks: Check[] = [
      {
        name: 'postgres-3: every replica of every service took connections through its balancer',
        ok: everyReplica,
        detail: spread.join(', '),
      },
      { name: 'no service exited during the run', ok: exits.length === 0, detail: exits.join(', ') || 'none' },
    ];
    return {
      settings: {
        concurrency: p.scaleConcurrency,
        rounds: p.rounds,
        warmupMs: p.warmupMs,
        durationMs: p.scaleDurationMs,
      },
      groups: [
        {
          id: 'orders',
          title: `POST /orders, ${p.scaleConcurrency} in flight, confirmed orders only`,
          unit: 'orders/s',
          variants: figures,
          comparisons: [
            compare(figures, 'postgres-1', 'sqlite-1', 'PostgreSQL against SQLite, one replica each', true),
            compare(figures, 'postgres-3', 'postgres-1', '3 replicas against 1, on PostgreSQL', true),
          ],
        },
      ],
      checks,
      notes: [
        'Three shops side by side, each on its own ports: SQLite files; a throwaway PostgreSQL 15 (@shop/pg-testing: TLS, one role and database per service, certificate logins, fsync off); and a second PostgreSQL with 3 replicas of each service behind round-robin TCP balancers that pass mTLS through (scripts/tcp-balancer.ts). Inventory over HTTP in all three.',
        'All of it on one machine: replicas share its cores with each other, with PostgreSQL and with the load generator, so “3 replicas” measures what replication costs here (more processes, more connections, database locks taken for real), not what it gains across machines.',
        'CPU per order is the whole machine’s busy time divided by confirmed orders.',
      ],
    };
  },
};
