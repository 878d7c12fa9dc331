// `npm start`: the whole shop on one machine, no Docker. Creates a
// development CA and service certificates with the library's CLI (if there
// are none), starts inventory, payment and order on loopback, then a traffic
// generator, and shows orders per second, failures by reason and breaker
// states while it runs. Ctrl-C stops everything.
//
//   npm start                       run until Ctrl-C
//   npm start -- --duration 60      run for 60 s, then print a summary and stop
//   npm run start:spiffe            the same, with identities from a real SPIRE
//                                   server and one agent per service (--spiffe)
//   npm start -- --replicas 3 --db postgres  (with --spiffe: SVID logins, see shop-postgres.ts)
//                                   three replicas of each service on one
//                                   throwaway PostgreSQL, behind round-robin
//                                   TCP balancers on the usual ports
//
// The console (tools/console) serves http://127.0.0.1:3000 (--console-port),
// and the services export their spans to it (OTEL_EXPORTER_OTLP_ENDPOINT,
// OTEL_EXPORTER_OTLP_PROTOCOL=http/json) unless the environment names
// another OTLP endpoint.
import { rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { request } from 'undici';
import type { RunningConsole } from '@shop/console';
import { createDevCerts, MAX_REPLICAS, ROOT, Shop, type ServiceName } from './shop.ts';
import { CONSOLE_PORT, otelEnv, startShopConsole } from './shop-console.ts';
import { startShopPostgres, startShopPostgresOnSpire, type ShopPostgres } from './shop-postgres.ts';
import { getSpire } from './spire/get-spire.ts';
import { applyEntries, loadEntries } from './spire/register.ts';
import { agentSocketPath, makeSocketDir } from './spire/socket-dir.ts';
import { Spire } from './spire/spire.ts';
import { newTally, runTraffic, type Tally } from './traffic.ts';

function readArgs() {
  try {
    return parseArgs({
      options: {
        duration: { type: 'string' },
        'payment-failure-rate': { type: 'string', default: '0.03' },
        'inventory-protocol': { type: 'string' },
        concurrency: { type: 'string', default: '4' },
        'data-dir': { type: 'string', default: join(ROOT, '.data') },
        'certs-dir': { type: 'string', default: join(ROOT, '.certs') },
        spiffe: { type: 'boolean', default: false },
        'svid-ttl': { type: 'string', default: '60' },
        replicas: { type: 'string', default: '1' },
        db: { type: 'string', default: 'sqlite' },
        'console-port': { type: 'string', default: String(CONSOLE_PORT) },
      },
    }).values;
  } catch (err) {
    console.error(`npm start: ${(err as Error).message}`);
    console.error(
      'options: --duration <s> --concurrency <n> --inventory-protocol grpc|http --payment-failure-rate <0..1> --spiffe --svid-ttl <s> --replicas <1..8> --db sqlite|postgres --data-dir <dir> --certs-dir <dir> --console-port <port>',
    );
    process.exit(2);
  }
}
const args = readArgs();
const dataDir = resolve(args['data-dir']);
const SERVICES: ServiceName[] = ['inventory', 'payment', 'order'];
let spire: Spire | undefined;
function positive(name: string, value: string | undefined, max: number): void {
  if (value === undefined) return;
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0 || n > max) {
    console.error(`npm start: --${name} must be a number above 0 and at most ${max}, got ${JSON.stringify(value)}`);
    process.exit(2);
  }
}
positive('duration', args.duration, 86_400);
positive('concurrency', args.concurrency, 256);
positive('svid-ttl', args['svid-ttl'], 86_400);
positive('console-port', args['console-port'], 65_535);
const consolePort = Number(args['console-port']);
const failureRate = Number(args['payment-failure-rate']);
if (!(failureRate >= 0 && failureRate <= 1)) {
  console.error(
    `npm start: --payment-failure-rate must be between 0 and 1, got ${JSON.stringify(args['payment-failure-rate'])}`,
  );
  process.exit(2);
}
if (
  args['inventory-protocol'] !== undefined &&
  args['inventory-protocol'] !== 'grpc' &&
  args['inventory-protocol'] !== 'http'
) {
  console.error(
    `npm start: --inventory-protocol must be grpc or http, got ${JSON.stringify(args['inventory-protocol'])}`,
  );
  process.exit(2);
}
const replicas = Number(args.replicas);
if (!Number.isInteger(replicas) || replicas < 1 || replicas > MAX_REPLICAS) {
  console.error(
    `npm start: --replicas must be an integer from 1 to ${MAX_REPLICAS}, got ${JSON.stringify(args.replicas)}`,
  );
  process.exit(2);
}
if (args.db !== 'sqlite' && args.db !== 'postgres') {
  console.error(`npm start: --db must be sqlite or postgres, got ${JSON.stringify(args.db)}`);
  process.exit(2);
}
if (replicas > 1 && args.db === 'sqlite') {
  console.error(
    `npm start: --replicas ${replicas} needs --db postgres: with SQLite each replica would keep its own file (charges twice, oversells)`,
  );
  process.exit(2);
}
const usePostgres = args.db === 'postgres';
// With replicas, HTTP by default: the balancers work per connection, and one
// gRPC channel (one HTTP/2 connection) would tie each order replica to one
// inventory replica.
const inventoryProtocol = args['inventory-protocol'] ?? (replicas > 1 ? 'http' : 'grpc');
let pg: ShopPostgres | undefined;
const certsDir = resolve(args['certs-dir']);
const host = '127.0.0.1';
let stopping = false;
// In SPIFFE mode each service's identity comes from its own agent's socket,
// in a short folder of its own (never under --data-dir: socket paths are
// limited to 104–108 bytes; SHOP_SOCKET_DIR sets it).
const socketDir = args.spiffe ? makeSocketDir() : undefined;
const socketOf = (name: ServiceName): Record<string, string> =>
  socketDir === undefined ? {} : { SPIFFE_ENDPOINT_SOCKET: `unix://${agentSocketPath(socketDir, name)}` };
// The shop is made once the database (if any) is up: its URL is in the services' environment.
let shop: Shop | undefined;
let consoleServer: RunningConsole | undefined;
const consoleUrl = `http://127.0.0.1:${consolePort}`;
// Spans go to the console unless the user named their own OTLP endpoint.
const otel = otelEnv(consoleUrl);
const otelOf = (name: ServiceName): Record<string, string> =>
  Object.keys(otel).length === 0 || process.env.OTEL_SERVICE_NAME !== undefined
    ? otel
    : { ...otel, OTEL_SERVICE_NAME: name };
function makeShop(): Shop {
  const dbEnv = (name: ServiceName): Record<string, string> => pg?.env(name) ?? {};
  const s: Shop = new Shop({
    dataDir,
    certsDir,
    replicas: { order: replicas, payment: replicas, inventory: replicas },
    env: {
      // The demo catalogue has deep stock so the shop keeps selling, and one
      // limited product that sells out, so "out_of_stock" shows up too.
      inventory: {
        SEED_FILE: join(ROOT, 'scripts', 'demo-catalogue.json'),
        ...socketOf('inventory'),
        ...dbEnv('inventory'),
        ...otelOf('inventory'),
      },
      payment: {
        PAYMENT_FAILURE_RATE: args['payment-failure-rate'],
        ...socketOf('payment'),
        ...dbEnv('payment'),
        ...otelOf('payment'),
      },
      order: { INVENTORY_PROTOCOL: inventoryProtocol, ...socketOf('order'), ...dbEnv('order'), ...otelOf('order') },
    },
    onExit: (name, code, signal, replica) => {
      if (!stopping)
        console.error(`\n${name} replica ${replica} exited (${signal ?? code}); see ${s.logFile(name, replica)}`);
    },
  });
  return s;
}

async function breakerStates(): Promise<string> {
  try {
    const res = await request(`http://${host}:9080/metrics`, { signal: AbortSignal.timeout(1000) });
    const text = await res.body.text();
    const names = ['closed', 'half-open', 'OPEN'];
    const states = [...text.matchAll(/^shop_circuit_breaker_state\{breaker="([^"]+)"[^}]*\} (\d)/gm)].map(
      (m) => `${m[1] ?? ''} ${names[Number(m[2])] ?? '?'}`,
    );
    return states.join(', ') || 'n/a';
  } catch {
    return 'order unreachable';
  }
}

function line(t: Tally, rate: number, breakers: string): string {
  const failed =
    Object.entries(t.failed)
      .map(([k, v]) => `${k}=${v}`)
      .join(' ') || 'none';
  const rejected = Object.entries(t.rejected)
    .map(([k, v]) => `${k}=${v}`)
    .join(' ');
  return `${rate.toFixed(1).padStart(5)} orders/s | placed ${t.placed} confirmed ${t.confirmed} pending ${t.pending} | failed: ${failed}${rejected ? ` | refused: ${rejected}` : ''}${t.errors ? ` | errors ${t.errors}` : ''} | breakers: ${breakers}`;
}

async function stopAll(): Promise<void> {
  stopping = true;
  await consoleServer?.close();
  await shop?.stopAll();
  await pg?.stop();
  await spire?.stop();
  if (socketDir !== undefined) await rm(socketDir, { recursive: true, force: true });
}

async function startSpire(): Promise<void> {
  console.log('== SPIRE');
  const binDir = await getSpire();
  const workDir = join(dataDir, 'spire');
  await rm(workDir, { recursive: true, force: true });
  spire = new Spire({
    binDir,
    workDir,
    socketDir,
    serverPort: 8081,
    serverHealthPort: 8082,
    agentHealthPortBase: 8090,
  });
  await spire.startServer();
  for (const name of SERVICES) await spire.startAgent(name);
  const entries = await loadEntries({
    TD: spire.trustDomain,
    UID: String(process.getuid?.() ?? 0),
    SVID_TTL: args['svid-ttl'],
  });
  const report = await applyEntries(spire, entries);
  console.log(
    `SPIRE server and ${SERVICES.length} agents up (logs in ${join(workDir, 'logs')}); entries created: ${report.created.join(', ') || 'none'}; X.509-SVID TTL ${args['svid-ttl']} s`,
  );
}

async function rotations(): Promise<string> {
  const parts = await Promise.all(
    SERVICES.map(async (name) => {
      try {
        if (!shop) throw new Error('not started');
        const text = await (
          await request(`${shop.opsUrl(name)}/metrics`, { signal: AbortSignal.timeout(1000) })
        ).body.text();
        return `${name} ${/^shop_identity_rotations_total\{[^}]*\} (\d+)/m.exec(text)?.[1] ?? '?'}`;
      } catch {
        return `${name} ?`;
      }
    }),
  );
  return parts.join(', ');
}

async function main(): Promise<void> {
  if (args.spiffe) await startSpire();
  else {
    console.log('== certificates');
    // With Postgres, the server gets a certificate from the same development CA.
    await createDevCerts(certsDir, false, usePostgres ? [...SERVICES, 'postgres'] : SERVICES);
  }
  if (usePostgres && spire) {
    console.log(
      "== PostgreSQL (throwaway cluster: TLS, one role and database per service, SVID logins; client CA = SPIRE's bundle, reloaded when it changes)",
    );
    pg = await startShopPostgresOnSpire({ spire, replicas });
  } else if (usePostgres) {
    console.log('== PostgreSQL (throwaway cluster: TLS, one role and database per service, certificate logins)');
    pg = await startShopPostgres({ certsDir, replicas });
  }
  shop = makeShop();
  // The console first, so the services' first spans have somewhere to go.
  consoleServer = await startShopConsole({
    shop,
    mode: args.spiffe ? 'spiffe' : 'files',
    certsDir,
    spire,
    port: consolePort,
    trustDomain: spire?.trustDomain ?? 'example.org',
  });
  console.log(`== console on ${consoleServer.url}`);
  console.log(
    `== starting inventory, payment, order${replicas > 1 ? ` (${replicas} replicas each)` : ''} (logs in ${join(dataDir, 'logs')})`,
  );
  await shop.startAll();
  const balanced =
    replicas > 1
      ? `\n  ${replicas} replicas of each service; ports 8080, 8443, 8444 and 50051 are round-robin TCP balancers (mTLS passes through);\n  the ops and admin ports above are replica 1's; the other replicas' ops ports: ${SERVICES.flatMap((n) => Array.from({ length: replicas - 1 }, (_, i) => `${n}-${i + 2} ${shop?.opsUrl(n, i + 2) ?? ''}`)).join(', ')}\n  order → inventory over ${inventoryProtocol}${args['inventory-protocol'] === undefined ? ' (the default with replicas: gRPC would keep each order replica on one inventory replica)' : ''}`
      : '';
  console.log(`
The shop is up (mTLS between services, identities from ${args.spiffe ? 'SPIRE agents (Workload API)' : certsDir}; data in ${pg ? `PostgreSQL on 127.0.0.1:${pg.port}` : 'SQLite'}):
  order API      http://${host}:8080/products   POST http://${host}:8080/orders
  order ops      http://${host}:9080/metrics    /health/ready
  payment ops    http://${host}:9443/metrics    inventory ops http://${host}:9444/metrics
  payment faults curl -XPOST http://${host}:9543/admin/faults -H 'content-type: application/json' -d '{"latency_ms":1500}'${balanced}
  console        ${consoleServer.url}   (spans: ${Object.keys(otel).length > 0 ? `exported here as OTLP/HTTP JSON` : `to ${process.env.OTEL_EXPORTER_OTLP_ENDPOINT ?? process.env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ?? ''}, as you set`})
Ctrl-C stops everything.
`);
  const controller = new AbortController();
  const tally = newTally();
  const traffic = runTraffic(
    { url: `http://${host}:8080`, concurrency: Number(args.concurrency), signal: controller.signal },
    tally,
  );
  let last = 0;
  const started = Date.now();
  const ticker = setInterval(() => {
    void Promise.all([breakerStates(), args.spiffe ? rotations() : Promise.resolve('')]).then(([b, r]) => {
      console.log(line(tally, (tally.placed - last) / 2, b) + (r ? ` | rotations: ${r}` : ''));
      last = tally.placed;
    });
  }, 2000);
  const stop = new Promise<void>((resolveStop) => {
    process.once('SIGINT', () => {
      resolveStop();
    });
    process.once('SIGTERM', () => {
      resolveStop();
    });
    if (args.duration) setTimeout(resolveStop, Number(args.duration) * 1000);
  });
  await stop;
  clearInterval(ticker);
  controller.abort();
  await traffic;
  console.log(`\n== stopping (${((Date.now() - started) / 1000).toFixed(0)} s of traffic)`);
  console.log(line(tally, tally.placed / ((Date.now() - started) / 1000), await breakerStates()));
  console.log(`confirmed order total: ${(tally.confirmedTotalCents / 100).toFixed(2)} EUR`);
  await stopAll();
}

process.on('exit', () => {
  shop?.killAllNow();
  spire?.killAllNow();
});

main().catch(async (err: unknown) => {
  console.error(`npm start failed: ${(err as Error).message}`);
  await stopAll();
  process.exit(1);
});
