// `npm start`: the whole shop on one machine, no Docker. Creates a
// development CA and service certificates with the library's CLI (if there
// are none), starts inventory, payment and order on loopback, then a traffic
// generator, and shows orders per second, failures by reason and breaker
// states while it runs. Ctrl-C stops everything.
//
//   npm start                       run until Ctrl-C
//   npm start -- --duration 60      run for 60 s, then print a summary and stop
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { request } from 'undici';
import { newTally, runTraffic, type Tally } from './traffic.ts';

const root = resolve(import.meta.dirname, '..');
const { values: args } = parseArgs({
  options: {
    duration: { type: 'string' },
    'payment-failure-rate': { type: 'string', default: '0.03' },
    'inventory-protocol': { type: 'string', default: 'grpc' },
    concurrency: { type: 'string', default: '4' },
    'data-dir': { type: 'string', default: join(root, '.data') },
    'certs-dir': { type: 'string', default: join(root, '.certs') },
  },
});
const dataDir = resolve(args['data-dir']);
const certsDir = resolve(args['certs-dir']);
const host = '127.0.0.1';

interface ServiceSpec {
  name: 'inventory' | 'payment' | 'order';
  port: number;
  opsPort: number;
  env: Record<string, string>;
}

const services: ServiceSpec[] = [
  { name: 'inventory', port: 8444, opsPort: 9444, env: { GRPC_PORT: '50051' } },
  { name: 'payment', port: 8443, opsPort: 9443, env: { PAYMENT_FAILURE_RATE: args['payment-failure-rate'] } },
  {
    name: 'order',
    port: 8080,
    opsPort: 9080,
    env: {
      INVENTORY_URL: `https://${host}:8444`,
      INVENTORY_GRPC_TARGET: `${host}:50051`,
      INVENTORY_PROTOCOL: args['inventory-protocol'],
      PAYMENT_URL: `https://${host}:8443`,
    },
  },
];

const children = new Map<string, ChildProcess>();

function run(cmd: string, argv: string[]): Promise<number> {
  return new Promise((done) => {
    const p = spawn(cmd, argv, { stdio: 'inherit', cwd: root });
    p.on('exit', (code) => {
      done(code ?? 1);
    });
  });
}

function startService(s: ServiceSpec): void {
  mkdirSync(join(dataDir, 'logs'), { recursive: true });
  const logFile = join(dataDir, 'logs', `${s.name}.log`);
  const out = createWriteStream(logFile, { flags: 'a' });
  const child = spawn(process.execPath, [join(root, 'services', s.name, 'src', 'server.ts')], {
    cwd: root,
    env: {
      ...process.env,
      HOST: host,
      PORT: String(s.port),
      OPS_PORT: String(s.opsPort),
      DATA_DIR: join(dataDir, s.name),
      TLS_CERT_FILE: join(certsDir, `${s.name}.crt.pem`),
      TLS_KEY_FILE: join(certsDir, `${s.name}.key.pem`),
      TLS_CA_FILE: join(certsDir, 'ca.crt.pem'),
      SPIFFE_ENDPOINT_SOCKET: '',
      ...s.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout.pipe(out);
  child.stderr.pipe(out);
  child.on('exit', (code, signal) => {
    children.delete(s.name);
    if (!stopping) console.error(`\n${s.name} exited (${signal ?? code}); see ${logFile}`);
  });
  children.set(s.name, child);
}

async function waitReady(s: ServiceSpec, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!children.has(s.name)) throw new Error(`${s.name} exited during start-up; see ${join(dataDir, 'logs', `${s.name}.log`)}`);
    try {
      const res = await request(`http://${host}:${s.opsPort}/health/ready`, { signal: AbortSignal.timeout(1000) });
      await res.body.dump();
      if (res.statusCode === 200) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${s.name} was not ready within ${timeoutMs / 1000} s; see ${join(dataDir, 'logs', `${s.name}.log`)}`);
}

async function breakerStates(): Promise<string> {
  try {
    const res = await request(`http://${host}:9080/metrics`, { signal: AbortSignal.timeout(1000) });
    const text = await res.body.text();
    const names = ['closed', 'half-open', 'OPEN'];
    const states = [...text.matchAll(/^shop_circuit_breaker_state\{breaker="([^"]+)"[^}]*\} (\d)/gm)].map((m) => `${m[1] ?? ''} ${names[Number(m[2])] ?? '?'}`);
    return states.join(', ') || 'n/a';
  } catch {
    return 'order unreachable';
  }
}

function line(t: Tally, rate: number, breakers: string): string {
  const failed = Object.entries(t.failed).map(([k, v]) => `${k}=${v}`).join(' ') || 'none';
  const rejected = Object.entries(t.rejected).map(([k, v]) => `${k}=${v}`).join(' ');
  return `${rate.toFixed(1).padStart(5)} orders/s | placed ${t.placed} confirmed ${t.confirmed} pending ${t.pending} | failed: ${failed}${rejected ? ` | refused: ${rejected}` : ''}${t.errors ? ` | errors ${t.errors}` : ''} | breakers: ${breakers}`;
}

let stopping = false;
async function stopAll(): Promise<void> {
  stopping = true;
  const exits = [...children.values()].map((c) => new Promise((r) => c.once('exit', r)));
  // Order first, so nothing calls an upstream that has already gone.
  for (const name of ['order', 'payment', 'inventory']) children.get(name)?.kill('SIGTERM');
  const timer = setTimeout(() => {
    for (const c of children.values()) c.kill('SIGKILL');
  }, 10_000);
  await Promise.all(exits);
  clearTimeout(timer);
}

async function main(): Promise<void> {
  console.log('== certificates');
  const code = await run(process.execPath, [join(root, 'libs/auth/src/cli/main.ts'), 'dev-certs', '--out-dir', certsDir, '--services', 'order,payment,inventory']);
  if (code !== 0) throw new Error('could not create the development certificates');
  console.log('== starting inventory, payment, order (logs in .data/logs/)');
  for (const s of services) startService(s);
  for (const s of services) await waitReady(s);
  console.log(`
The shop is up (mTLS between services, identities from ${certsDir}):
  order API      http://${host}:8080/products   POST http://${host}:8080/orders
  order ops      http://${host}:9080/metrics    /health/ready
  payment ops    http://${host}:9443/metrics    inventory ops http://${host}:9444/metrics
Ctrl-C stops everything.
`);
  const controller = new AbortController();
  const tally = newTally();
  const traffic = runTraffic({ url: `http://${host}:8080`, concurrency: Number(args.concurrency), signal: controller.signal }, tally);
  let last = 0;
  const started = Date.now();
  const ticker = setInterval(() => {
    void breakerStates().then((b) => {
      console.log(line(tally, (tally.placed - last) / 2, b));
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
  for (const c of children.values()) c.kill('SIGKILL');
});

main().catch(async (err: unknown) => {
  console.error(`npm start failed: ${(err as Error).message}`);
  await stopAll();
  process.exit(1);
});
