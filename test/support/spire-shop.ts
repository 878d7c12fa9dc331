// A real SPIRE deployment (server + one agent per node) and, optionally, the
// shop on top of it, in a temporary directory with free loopback ports: the
// SPIRE tests' shared fixture. stop() ends every process it started.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, freePorts, Shop, type ServiceName, type ShopOptions } from '../../scripts/shop.ts';
import { getSpire } from '../../scripts/spire/get-spire.ts';
import { applyEntries, loadEntries } from '../../scripts/spire/register.ts';
import { Spire, type EntrySpec, type SpireFederation } from '../../scripts/spire/spire.ts';

// Re-exported for the SPIRE tests, which pick extra ports for their own peers.
export { freePort };

/** SERVICES are the shop's services, one SPIRE node each. */
export const SERVICES: ServiceName[] = ['inventory', 'payment', 'order'];

/** freeConsecutivePorts finds `n` consecutive free ports (agent health ports are base + index). */
export async function freeConsecutivePorts(n: number): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 20_000 + Math.floor(Math.random() * 30_000);
    const ok = await Promise.all(
      Array.from(
        { length: n },
        (_, i) =>
          new Promise<boolean>((res) => {
            const s = createServer();
            s.once('error', () => {
              res(false);
            });
            s.listen(base + i, '127.0.0.1', () =>
              s.close(() => {
                res(true);
              }),
            );
          }),
      ),
    );
    if (ok.every(Boolean)) return base;
  }
  throw new Error('no free consecutive ports');
}

/** SpireWorld is a running SPIRE deployment in a temporary directory. */
export interface SpireWorld {
  dir: string;
  spire: Spire;
  uid: string;
  /** register applies spire/entries.json with the given SVID TTL (seconds). */
  register(svidTtlSeconds: number): Promise<void>;
  /** entryOf finds the registered entry of a SPIFFE ID. */
  entryOf(spiffeId: string): Promise<EntrySpec & { id: string }>;
  stop(): Promise<void>;
}

/** startSpire starts a SPIRE server and one agent per node in `nodes`. */
export async function startSpire(o: SpireWorldOptions = { nodes: SERVICES }): Promise<SpireWorld> {
  // Ports are found free, then bound by SPIRE a moment later; another
  // process may take one in between (SPIRE then only logs it), so a start
  // that fails is tried once more on fresh ports in a fresh directory.
  try {
    return await startSpireOnce(o);
  } catch {
    return startSpireOnce(o.dir ? { ...o, dir: `${o.dir}-retry` } : o);
  }
}

/** SpireWorldOptions: agents (one per node), trust domain, SVID TTL, directory, and an optional upstream CA. */
export interface SpireWorldOptions {
  nodes: string[];
  trustDomain?: string;
  x509SvidTtl?: string;
  dir?: string;
  upstreamAuthority?: { certFile: string; keyFile: string };
  /** federation turns on the server's bundle endpoint and its federates_with relationships. Default: off. */
  federation?: SpireFederation;
}

async function startSpireOnce(o: SpireWorldOptions): Promise<SpireWorld> {
  const binDir = await getSpire();
  const dir = o.dir ?? (await mkdtemp(join(tmpdir(), 'spire-')));
  const spire = new Spire({
    binDir,
    workDir: dir,
    trustDomain: o.trustDomain,
    serverPort: await freePort(),
    serverHealthPort: await freePort(),
    agentHealthPortBase: await freeConsecutivePorts(o.nodes.length + 4),
    x509SvidTtl: o.x509SvidTtl ?? '1h',
    logLevel: 'INFO',
    upstreamAuthority: o.upstreamAuthority,
    federation: o.federation,
  });
  const onExit = (): void => {
    spire.killAllNow();
  };
  process.on('exit', onExit);
  try {
    await spire.startServer();
    for (const n of o.nodes) await spire.startAgent(n);
  } catch (err) {
    await spire.stop();
    process.off('exit', onExit);
    if (!o.dir) await rm(dir, { recursive: true, force: true });
    throw err;
  }
  const uid = String(process.getuid?.() ?? 0);
  return {
    dir,
    spire,
    uid,
    async register(svidTtlSeconds) {
      await applyEntries(
        spire,
        await loadEntries({ TD: spire.trustDomain, UID: uid, SVID_TTL: String(svidTtlSeconds) }),
      );
    },
    async entryOf(spiffeId) {
      const e = (await spire.entries()).find((x) => x.spiffe_id === spiffeId);
      if (!e) throw new Error(`no entry for ${spiffeId}`);
      return e;
    },
    async stop() {
      await spire.stop();
      process.off('exit', onExit);
      if (!o.dir) await rm(dir, { recursive: true, force: true });
    },
  };
}

/** startSpiffeShop starts the three services, each on its own agent's Workload API socket. */
export async function startSpiffeShop(
  world: SpireWorld,
  env: ShopOptions['env'] = {},
  seed?: unknown[],
): Promise<Shop> {
  const seedFile = join(world.dir, 'catalogue.json');
  await writeFile(
    seedFile,
    JSON.stringify(
      seed ?? [{ product_id: 'sku-a', name: 'Product A', price_cents: 1000, currency: 'EUR', on_hand: 100000 }],
    ),
  );
  const socket = (n: ServiceName): Record<string, string> => ({ SPIFFE_ENDPOINT_SOCKET: world.spire.agentAddress(n) });
  const shop = new Shop({
    dataDir: join(world.dir, 'shop'),
    // No certificate files: identities come from SPIRE only.
    certsDir: join(world.dir, 'no-certs'),
    ports: await freePorts(),
    env: {
      inventory: { SEED_FILE: seedFile, ...socket('inventory'), ...env.inventory },
      payment: { ...socket('payment'), ...env.payment },
      order: { RECONCILE_INTERVAL_MS: '200', PENDING_GRACE_MS: '500', ...socket('order'), ...env.order },
    },
  });
  process.on('exit', () => {
    shop.killAllNow();
  });
  await shop.startAll();
  return shop;
}
