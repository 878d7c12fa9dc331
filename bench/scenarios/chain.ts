// Scenario 4: orders through the real shop on loopback, as processes: order
// → inventory (gRPC) and → payment (HTTP), all mTLS through @shop/auth,
// with the order service's circuit breakers on and off.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { request } from 'undici';
import { createDevCerts, freePorts, Shop } from '../../scripts/shop.ts';
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

/** metricSum adds up every sample of a Prometheus metric whose labels match `labels`. */
async function metricSum(url: string, name: string, labels: RegExp): Promise<number> {
  const res = await request(`${url}/metrics`);
  const text = await res.body.text();
  let sum = 0;
  for (const m of text.matchAll(new RegExp(`^${name}\\{([^}]*)\\} (\\S+)$`, 'gm'))) {
    if (labels.test(m[1] ?? '')) sum += Number(m[2]);
  }
  return sum;
}

/** chain is scenario 4: orders through the real shop, breakers on and off. */
export const chain: Scenario = {
  id: 'chain',
  title: 'The chain: orders through order → inventory (gRPC) → payment (HTTP), breakers on vs off',
  async run(ctx: BenchContext, cleanup: Cleanup): Promise<ScenarioOutcome> {
    const p = ctx.profile;
    const dir = join(ctx.tmp, 'chain');
    const certsDir = join(dir, 'certs');
    await createDevCerts(certsDir, true);
    const seedFile = join(dir, 'catalogue.json');
    await writeFile(
      seedFile,
      JSON.stringify([
        { product_id: PRODUCT, name: 'Bench item', price_cents: 100, currency: 'EUR', on_hand: 1_000_000_000 },
      ]),
    );
    const exits: string[] = [];
    const onExit = (name: string, code: number | null, signal: string | null): void => {
      exits.push(`${name} exited (${signal ?? code ?? '?'})`);
    };
    const ports = await freePorts();
    const shop = new Shop({
      dataDir: join(dir, 'shop'),
      certsDir,
      ports,
      env: { inventory: { SEED_FILE: seedFile } },
      onExit,
    });
    cleanup.onExit(() => {
      shop.killAllNow();
    });
    cleanup.add('shop', () => shop.stopAll());
    progress('chain: starting inventory, payment, order (breakers on)');
    await shop.startAll();
    // A second order service on its own ports and database, against the same
    // inventory and payment, with opossum replaced by a pass-through.
    const off = await freePorts();
    const shopOff = new Shop({
      dataDir: join(dir, 'shop-breakers-off'),
      certsDir,
      ports: { ...ports, order: off.order, orderOps: off.orderOps },
      env: { order: { BREAKERS: 'off' } },
      onExit,
    });
    cleanup.onExit(() => {
      shopOff.killAllNow();
    });
    cleanup.add('order service (breakers off)', async () => {
      await shopOff.stop('order');
    });
    progress('chain: starting a second order service with breakers off');
    await shopOff.start('order');

    const client = plainClient(cleanup, { connections: p.chainConcurrency });
    const body = JSON.stringify({
      customer_id: 'bench',
      currency: 'EUR',
      items: [{ product_id: PRODUCT, quantity: 1 }],
    });
    const variants = [
      { id: 'breakers-on', label: 'breakers on (opossum, as shipped)', url: shop.orderUrl },
      { id: 'breakers-off', label: 'breakers off (BREAKERS=off)', url: shopOff.orderUrl },
    ];
    const runs = await alternate(
      'chain',
      variants.map((v) => {
        const attempt = httpAttempt({
          url: `${v.url}/orders`,
          dispatcher: client,
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body,
          expect: 201,
          accept: (text) => (JSON.parse(text) as { status?: string }).status === 'confirmed',
        });
        return {
          id: v.id,
          run: (w) =>
            runClosedLoop(attempt, {
              ...w,
              concurrency: p.chainConcurrency,
              meters: [machineCpuMeter('machine'), selfCpuMeter('client')],
            }),
        };
      }),
      p.rounds,
      { warmupMs: p.warmupMs, durationMs: p.chainDurationMs },
    );
    const figures = variants.map((v) => variantFigures(v.id, v.label, runs.get(v.id) ?? []));

    const ops = { on: shop.opsUrl('order'), off: shopOff.opsUrl('order') };
    const successes = {
      on: await metricSum(ops.on, 'shop_circuit_breaker_events_total', /event="success"/),
      off: await metricSum(ops.off, 'shop_circuit_breaker_events_total', /event="success"/),
    };
    const opened = await metricSum(ops.on, 'shop_circuit_breaker_events_total', /event="(open|reject|timeout)"/);
    const checks: Check[] = [
      {
        name: 'breakers on: calls went through opossum, and no breaker opened, rejected or timed out',
        ok: successes.on > 0 && opened === 0,
        detail: `${successes.on} breaker successes, ${opened} open/reject/timeout events`,
      },
      {
        name: 'breakers off: the second order service ran without opossum',
        ok: successes.off === 0,
        detail: `${successes.off} breaker events`,
      },
      {
        name: 'no service exited during the run',
        ok: exits.length === 0,
        detail: exits.join(', ') || 'none',
      },
    ];
    return {
      settings: {
        concurrency: p.chainConcurrency,
        rounds: p.rounds,
        warmupMs: p.warmupMs,
        durationMs: p.chainDurationMs,
      },
      groups: [
        {
          id: 'orders',
          title: `POST /orders, ${p.chainConcurrency} in flight, confirmed orders only`,
          unit: 'orders/s',
          variants: figures,
          comparisons: [compare(figures, 'breakers-off', 'breakers-on', 'what the breakers cost', true)],
        },
      ],
      checks,
      notes: [
        'The real services as processes (scripts/shop.ts), certificates from `spiffe-auth dev-certs`, file sources, default settings (LOG_LEVEL info: the HTTP servers log each request and its authorization). One order = catalogue read (cached 1 s), reserve over gRPC, charge over HTTP, commit over gRPC, SQLite writes in all three.',
        '“Breakers off” is a second order service against the same inventory and payment, started with `BREAKERS=off`: the same retries and per-call timeouts, but upstream calls go straight out instead of through opossum (no breaker, no events, no metrics).',
        'CPU per order is the whole machine’s busy time (all three services, the load generator, anything else running) divided by confirmed orders.',
      ],
    };
  },
};
