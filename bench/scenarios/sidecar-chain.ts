// Scenario 8, part 2: the shop's chain (order → inventory gRPC → payment
// HTTP) at a fixed order rate, identities from a real SPIRE server and one
// agent per service, with mTLS in-process (@shop/auth, as `npm run
// start:spiffe` runs the shop) against sidecars on every hop: the services
// in SHOP_TRANSPORT=sidecar (plaintext on loopback), a ghostunnel server in
// front of inventory's gRPC port and payment's API, and ghostunnel clients
// beside order. Run by the sidecar scenario in a full run, not in --quick.
import { writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { authorizeId } from '@shop/auth';
import { createMtlsDispatcher } from '@shop/auth/undici';
import { WorkloadX509Source } from '@shop/auth/workloadapi';
import { request, type Dispatcher } from 'undici';
import { freePorts, Shop, type ServiceName } from '../../scripts/shop.ts';
import { GHOSTUNNEL_VERSION } from '../../scripts/sidecar/get-ghostunnel.ts';
import { getSpire } from '../../scripts/spire/get-spire.ts';
import { applyEntries, loadEntries } from '../../scripts/spire/register.ts';
import { Spire } from '../../scripts/spire/spire.ts';
import { httpAttempt } from '../load/http-load.ts';
import { runOpenLoop, type OpenLoopResult } from '../load/open-loop.ts';
import type { Cleanup } from '../support/cleanup.ts';
import type { BenchContext } from '../support/context.ts';
import { processCpuMeter, selfCpuMeter, type CpuMeter } from '../support/cpu-meter.ts';
import { compare, variantFigures, type Check, type Group } from '../support/figures.ts';
import { plainClient } from '../support/http-clients.ts';
import { progress } from '../support/progress.ts';
import { alternate, type Runner } from '../support/rounds.ts';
import {
  freePort,
  ghostunnelClientArgs,
  ghostunnelServerArgs,
  rssMiB,
  spawnListening,
} from '../support/sidecar-process.ts';
import { median, pairedRatio, round, type Spread } from '../support/stats.ts';

/** ChainSettings are the chain part's rate and durations. */
export interface ChainSettings {
  /** rate is the fixed order rate, orders per second (open loop). */
  rate: number;
  rounds: number;
  warmupMs: number;
  durationMs: number;
  /** connections of the load generator to order (keep-alive); maxInFlight bounds outstanding orders. */
  connections: number;
  maxInFlight: number;
  /** svidTtl is the X.509-SVID TTL of the SPIRE entries, seconds (start:spiffe's default). */
  svidTtl: number;
}

/**
 * SIDECAR_CHAIN_FULL is the report's run: about 2 minutes on 2 cores, SPIRE's
 * start included. 50 orders/s: an order costs 10–15 ms of CPU on the path
 * (services, ghostunnels) on a busy 2-core machine, so 100/s saturated it
 * in both variants (p50 over 300 ms in a trial run).
 */
export const SIDECAR_CHAIN_FULL: ChainSettings = {
  rate: 50,
  rounds: 3,
  warmupMs: 3000,
  durationMs: 8000,
  connections: 16,
  maxInFlight: 256,
  svidTtl: 60,
};

/** PATH_TOTAL is the CPU side that adds up every process on an order's path: the 3 services and every ghostunnel. */
export const PATH_TOTAL = 'path total';
/** SPIRE_AGENTS is the CPU side of the 3 SPIRE agents together, outside the path total. */
export const SPIRE_AGENTS = 'SPIRE agents';

/** ChainVariant is one variant's figures at the fixed rate (medians over rounds). */
export interface ChainVariant {
  id: string;
  label: string;
  achieved: number;
  p50: number;
  p99: number;
  p999: number;
  /** failed counts orders that did not come back 201 confirmed, over all rounds. */
  failed: number;
  /** overflow counts orders not sent because maxInFlight were outstanding, over all rounds. */
  overflow: number;
  /** cpuUs is CPU µs per order by process (and PATH_TOTAL, SPIRE_AGENTS, client). */
  cpuUs: Record<string, number>;
  /** rssMiB is the largest resident set size seen per process. */
  rssMiB: Record<string, number>;
}

/** SidecarChainFigures go into ScenarioResult.extra.sidecar.chain. */
export interface SidecarChainFigures {
  rate: number;
  rounds: number;
  variants: ChainVariant[];
  /** ratio is sidecars over in-process, paired round by round (median, min, max). */
  ratio: { p50: Spread; p99: Spread; p999: Spread; pathCpu: Spread; achieved: Spread };
  loadAverage: number[];
  svidTtl: number;
}

const TD = 'example.org';
const ID = (name: string): string => `spiffe://${TD}/${name}`;
const PRODUCT = 'sku-bench';
const NODES: readonly ServiceName[] = ['inventory', 'payment', 'order'];

/** PathProcess is one process whose CPU and memory a variant reports. */
interface PathProcess {
  side: string;
  pid: number | undefined;
  /** onPath: counted in PATH_TOTAL (services and ghostunnels, not SPIRE, not the load generator). */
  onPath: boolean;
}

function sumMeter(side: string, meters: CpuMeter[]): CpuMeter {
  return {
    side,
    read() {
      let sum = 0;
      for (const m of meters) {
        const v = m.read();
        if (v === null) return null;
        sum += v;
      }
      return sum;
    },
  };
}

/** freePortRun finds `n` consecutive free loopback ports (SPIRE's agents take their health ports as base + index). */
async function freePortRun(n: number): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const base = await freePort();
    if (base + n > 65535) continue;
    const rest = await Promise.all(Array.from({ length: n - 1 }, (_, i) => portIsFree(base + i + 1)));
    if (rest.every(Boolean)) return base;
  }
  throw new Error(`no ${n} consecutive free ports found`);
}

async function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => {
      resolve(false);
    });
    s.listen(port, '127.0.0.1', () => {
      s.close(() => {
        resolve(true);
      });
    });
  });
}

/** ChainPart is what the chain adds to the sidecar scenario's outcome. */
export interface ChainPart {
  group: Group;
  checks: Check[];
  notes: string[];
  figures: SidecarChainFigures;
  settings: Record<string, number | string>;
}

/**
 * runSidecarChain runs the chain part: real SPIRE (server + an agent per
 * service), the shop twice (in-process mTLS, and sidecar mode behind
 * ghostunnels), a positive control of each, then alternating open-loop
 * rounds at `s.rate` orders/s. Everything it starts is registered with
 * `cleanup`.
 */
export async function runSidecarChain(
  ctx: BenchContext,
  cleanup: Cleanup,
  ghostunnel: string,
  s: ChainSettings,
): Promise<ChainPart> {
  const loadAverage = loadavg().map((x) => round(x));
  const dir = join(ctx.tmp, 'sidecar-chain');
  progress('sidecar chain: SPIRE (npm run spire:get: built once, cached), a server and an agent per service');
  const binDir = await getSpire();
  const agentBase = await freePortRun(NODES.length);
  const spire = new Spire({
    binDir,
    workDir: join(dir, 'spire'),
    serverPort: await freePort(),
    serverHealthPort: await freePort(),
    agentHealthPortBase: agentBase,
  });
  cleanup.onExit(() => {
    spire.killAllNow();
  });
  cleanup.add('SPIRE', () => spire.stop());
  await spire.startServer();
  for (const node of NODES) await spire.startAgent(node);
  await applyEntries(
    spire,
    await loadEntries({ TD: spire.trustDomain, UID: String(process.getuid?.() ?? 0), SVID_TTL: String(s.svidTtl) }),
  );

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
  const socketOf = (name: ServiceName): Record<string, string> => ({
    SPIFFE_ENDPOINT_SOCKET: spire.agentAddress(name),
  });

  // In-process: as `npm run start:spiffe` runs the shop, one agent socket per service.
  progress('sidecar chain: the shop in-process (SPIFFE_ENDPOINT_SOCKET, @shop/auth mTLS)');
  const inProcess = new Shop({
    dataDir: join(dir, 'in-process'),
    certsDir: join(dir, 'no-certs'),
    ports: await freePorts(),
    env: {
      inventory: { SEED_FILE: seedFile, ...socketOf('inventory') },
      payment: socketOf('payment'),
      order: socketOf('order'),
    },
    onExit: (name, code, signal) => {
      onExit(`in-process ${name}`, code, signal);
    },
  });
  cleanup.onExit(() => {
    inProcess.killAllNow();
  });
  cleanup.add('shop (in-process mTLS)', () => inProcess.stopAll());
  await inProcess.startAll();

  // Sidecars: the services plaintext on loopback with no identity; ghostunnel
  // servers in front of inventory's gRPC port and payment's API, allowing only
  // order, as the in-process allow-lists of Reserve/Commit/Release and of
  // payment do; ghostunnel clients beside order, each verifying its upstream.
  progress('sidecar chain: the shop in sidecar mode (SHOP_TRANSPORT=sidecar) behind ghostunnels');
  const ports = await freePorts();
  const [guInventory, guPayment, clInventory, clPayment] = await Promise.all([
    freePort(),
    freePort(),
    freePort(),
    freePort(),
  ]);
  const noIdentity = { SHOP_TRANSPORT: 'sidecar', TLS_CERT_FILE: '', TLS_KEY_FILE: '', TLS_CA_FILE: '' };
  const sidecars = new Shop({
    dataDir: join(dir, 'sidecars'),
    certsDir: join(dir, 'no-certs'),
    ports,
    env: {
      inventory: { SEED_FILE: seedFile, ...noIdentity },
      payment: noIdentity,
      order: {
        ...noIdentity,
        INVENTORY_PROTOCOL: 'grpc',
        INVENTORY_GRPC_TARGET: `127.0.0.1:${clInventory}`,
        PAYMENT_URL: `http://127.0.0.1:${clPayment}`,
        // Not called with INVENTORY_PROTOCOL=grpc; sidecar mode wants an http: URL on loopback.
        INVENTORY_URL: `http://127.0.0.1:${ports.inventory}`,
      },
    },
    onExit: (name, code, signal) => {
      onExit(`sidecar-mode ${name}`, code, signal);
    },
  });
  cleanup.onExit(() => {
    sidecars.killAllNow();
  });
  cleanup.add('shop (sidecar mode)', () => sidecars.stopAll());
  await sidecars.start('inventory');
  await sidecars.start('payment');
  const workload = (node: ServiceName): { workloadApi: string } => ({ workloadApi: spire.agentAddress(node) });
  const gu = {
    inventoryServer: await spawnListening(
      cleanup,
      'ghostunnel server (inventory gRPC)',
      ghostunnel,
      ghostunnelServerArgs(workload('inventory'), guInventory, ports.inventoryGrpc, ID('order')),
      guInventory,
    ),
    paymentServer: await spawnListening(
      cleanup,
      'ghostunnel server (payment)',
      ghostunnel,
      ghostunnelServerArgs(workload('payment'), guPayment, ports.payment, ID('order')),
      guPayment,
    ),
    inventoryClient: await spawnListening(
      cleanup,
      'ghostunnel client (order → inventory)',
      ghostunnel,
      ghostunnelClientArgs(workload('order'), clInventory, guInventory, ID('inventory')),
      clInventory,
    ),
    paymentClient: await spawnListening(
      cleanup,
      'ghostunnel client (order → payment)',
      ghostunnel,
      ghostunnelClientArgs(workload('order'), clPayment, guPayment, ID('payment')),
      clPayment,
    ),
  };
  await sidecars.start('order');

  const client = plainClient(cleanup, { connections: s.connections });
  const body = JSON.stringify({ customer_id: 'bench', currency: 'EUR', items: [{ product_id: PRODUCT, quantity: 1 }] });
  const orderOf = (url: string): Promise<string> =>
    request(`${url}/orders`, {
      dispatcher: client,
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
    }).then(
      async (res) => `${res.statusCode} ${String((JSON.parse(await res.body.text()) as { status?: string }).status)}`,
    );

  // Positive controls before measuring: an order through each variant, then
  // the sidecar really authorizing: order's SVID in, another service's out.
  const checks: Check[] = [];
  for (const [name, shop] of [
    ['in-process', inProcess],
    ['sidecars', sidecars],
  ] as const) {
    const got = await orderOf(shop.orderUrl).catch((err: unknown) => `failed: ${(err as Error).message}`);
    checks.push({
      name: `chain, ${name}: one order confirms before measuring`,
      ok: got === '201 confirmed',
      detail: got,
    });
  }
  const probe = async (as: ServiceName): Promise<string> => {
    const source = await WorkloadX509Source.create({ address: spire.agentAddress(as) });
    const dispatcher: Dispatcher = createMtlsDispatcher({ source, authorize: authorizeId(ID('payment')) });
    try {
      const res = await request(`https://127.0.0.1:${guPayment}/api/payments?order_id=probe`, { dispatcher });
      await res.body.dump();
      return `HTTP ${res.statusCode}`;
    } catch (err) {
      return `refused (${(err as { code?: string }).code ?? (err as Error).message})`;
    } finally {
      await dispatcher.close();
      await source.close();
    }
  };
  const asOrder = await probe('order');
  const asInventory = await probe('inventory');
  checks.push(
    {
      name: 'chain: payment’s ghostunnel lets order’s SVID in (--allow-uri, positive control)',
      ok: asOrder.startsWith('HTTP '),
      detail: `${ID('order')}: ${asOrder}`,
    },
    {
      name: 'chain: payment’s ghostunnel refuses another workload’s SVID (inventory’s)',
      ok: asInventory.startsWith('refused'),
      detail: `${ID('inventory')}: ${asInventory}`,
    },
  );

  const agents: PathProcess[] = NODES.map((n) => ({ side: `spire-agent ${n}`, pid: spire.agentPid(n), onPath: false }));
  const service = (shop: Shop, n: ServiceName): PathProcess => ({ side: n, pid: shop.pid(n), onPath: true });
  const variants = [
    {
      id: 'in-process',
      label: 'mTLS in-process (@shop/auth, SVIDs from the SPIRE agents)',
      url: inProcess.orderUrl,
      procs: NODES.map((n) => service(inProcess, n)),
    },
    {
      id: 'sidecars',
      label: `ghostunnel ${GHOSTUNNEL_VERSION} on every hop (services plaintext on loopback, SHOP_TRANSPORT=sidecar)`,
      url: sidecars.orderUrl,
      procs: [
        ...NODES.map((n) => service(sidecars, n)),
        { side: 'ghostunnel client → inventory', pid: gu.inventoryClient.pid, onPath: true },
        { side: 'ghostunnel client → payment', pid: gu.paymentClient.pid, onPath: true },
        { side: 'ghostunnel server inventory', pid: gu.inventoryServer.pid, onPath: true },
        { side: 'ghostunnel server payment', pid: gu.paymentServer.pid, onPath: true },
      ],
    },
  ];
  const rss = new Map<string, Map<string, number>>();
  const runners: Runner[] = variants.map((v) => {
    const attempt = httpAttempt({
      url: `${v.url}/orders`,
      dispatcher: client,
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
      expect: 201,
      accept: (text) => (JSON.parse(text) as { status?: string }).status === 'confirmed',
    });
    const perProcess = v.procs.map((p) => processCpuMeter(p.side, p.pid));
    const path = sumMeter(
      PATH_TOTAL,
      perProcess.filter((_, i) => v.procs[i]?.onPath === true),
    );
    const agentMeter = sumMeter(
      SPIRE_AGENTS,
      agents.map((a) => processCpuMeter(a.side, a.pid)),
    );
    const meters = [selfCpuMeter('client'), ...perProcess, path, agentMeter];
    return {
      id: v.id,
      run: async (w) => {
        const r = await runOpenLoop(attempt, { rate: s.rate, ...w, maxInFlight: s.maxInFlight, meters });
        const by = rss.get(v.id) ?? new Map<string, number>();
        rss.set(v.id, by);
        for (const p of [...v.procs, ...agents, { side: 'client', pid: process.pid }]) {
          const x = rssMiB(p.pid);
          if (x !== null) by.set(p.side, Math.max(by.get(p.side) ?? 0, x));
        }
        return r;
      },
    };
  });
  progress(`sidecar chain: ${s.rate} orders/s, open loop, ${s.rounds} alternating rounds`);
  const runs = await alternate('sidecar chain', runners, s.rounds, { warmupMs: s.warmupMs, durationMs: s.durationMs });

  const figures = variants.map((v) => {
    const r = (runs.get(v.id) ?? []) as OpenLoopResult[];
    const f = variantFigures(v.id, v.label, r);
    const by = rss.get(v.id) ?? new Map<string, number>();
    f.extra = {
      'target orders/s': s.rate,
      'p99.9 ms': round(median(r.map((x) => x.p999))),
      overflow: r.reduce((sum, x) => sum + x.overflow, 0),
      ...Object.fromEntries([...by].map(([side, mib]) => [`RSS ${side} MiB`, round(mib)])),
    };
    return { f, r, by };
  });
  const chainVariants: ChainVariant[] = figures.map(({ f, r, by }) => ({
    id: f.id,
    label: f.label,
    achieved: round(f.throughput.median),
    p50: round(f.p50.median),
    p99: round(f.p99.median),
    p999: round(median(r.map((x) => x.p999))),
    failed: f.errors,
    overflow: r.reduce((sum, x) => sum + x.overflow, 0),
    cpuUs: Object.fromEntries(Object.entries(f.cpu).map(([side, sp]) => [side, round(sp.median)])),
    rssMiB: Object.fromEntries([...by].map(([side, mib]) => [side, round(mib)])),
  }));
  const [a, b] = [figures[1]?.r ?? [], figures[0]?.r ?? []];
  const pathOf = (x: OpenLoopResult[]): number[] => x.map((y) => y.cpuUsPerRequest[PATH_TOTAL] ?? Number.NaN);
  const ratio = {
    p50: pairedRatio(
      a.map((x) => x.p50),
      b.map((x) => x.p50),
    ),
    p99: pairedRatio(
      a.map((x) => x.p99),
      b.map((x) => x.p99),
    ),
    p999: pairedRatio(
      a.map((x) => x.p999),
      b.map((x) => x.p999),
    ),
    pathCpu: pairedRatio(pathOf(a), pathOf(b)),
    achieved: pairedRatio(
      a.map((x) => x.throughput),
      b.map((x) => x.throughput),
    ),
  };
  const failed = chainVariants.reduce((sum, v) => sum + v.failed, 0);
  checks.push(
    { name: 'chain: no order failed in either variant', ok: failed === 0, detail: `${failed} failed` },
    { name: 'chain: no service exited during the run', ok: exits.length === 0, detail: exits.join(', ') || 'none' },
  );
  const vf = figures.map((x) => x.f);
  return {
    group: {
      id: 'chain',
      title: `the chain at ${s.rate} orders/s (open loop): order → inventory (gRPC) → payment (HTTP), identities from real SPIRE`,
      unit: 'orders/s',
      variants: vf,
      comparisons: [compare(vf, 'sidecars', 'in-process', 'sidecars on every hop vs mTLS in-process', true)],
    },
    checks,
    notes: [
      `The chain: real SPIRE (spire-server and one spire-agent per service, join-token attestation, unix:uid selectors, X.509-SVID TTL ${s.svidTtl} s as in \`npm run start:spiffe\`), the shop twice on loopback. In-process: the services with SPIFFE_ENDPOINT_SOCKET, as start:spiffe runs them. Sidecars: the services with SHOP_TRANSPORT=sidecar (plaintext on 127.0.0.1, no identity), a ghostunnel server in front of inventory’s gRPC port and of payment’s API (--use-workload-api-addr on the service’s agent, --allow-uri ${ID('order')} only), and two ghostunnel clients beside order (order’s agent, --verify-uri the callee). Order’s public API is plaintext in both variants (the load generator is a customer, not a workload), so it has no sidecar.`,
      `ghostunnel authorizes per connection, not per method: in-process, inventory lets any workload of ${TD} call GetStock and ListProducts and only order Reserve, Release and Commit; its sidecar lets only order connect. For this chain (order is the only caller) they accept the same calls.`,
      `CPU per order: “${PATH_TOTAL}” adds up the 3 services and, for sidecars, the 4 ghostunnels (/proc/<pid>/stat); “${SPIRE_AGENTS}” is the 3 agents, shown apart and not in the path total (they serve both variants’ workloads at once: SVID rotations every ${s.svidTtl / 2} s or so); “client” is the load generator (the bench process), the same plaintext HTTP in both.`,
      'Both shops run during every round, the idle one costing next to nothing; rounds alternate between the variants.',
    ],
    figures: {
      rate: s.rate,
      rounds: s.rounds,
      variants: chainVariants,
      ratio: {
        p50: roundSpread(ratio.p50),
        p99: roundSpread(ratio.p99),
        p999: roundSpread(ratio.p999),
        pathCpu: roundSpread(ratio.pathCpu),
        achieved: roundSpread(ratio.achieved),
      },
      loadAverage,
      svidTtl: s.svidTtl,
    },
    settings: {
      'chain rate orders/s': s.rate,
      'chain rounds': s.rounds,
      'chain warmupMs': s.warmupMs,
      'chain durationMs': s.durationMs,
      'chain connections': s.connections,
      'chain SVID TTL s': s.svidTtl,
      'chain load average at start': loadAverage.join(' / '),
    },
  };
}

function roundSpread(x: Spread): Spread {
  return { median: round(x.median), min: round(x.min), max: round(x.max) };
}
