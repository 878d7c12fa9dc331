// npm run migrate: the static-certificates-to-SPIRE walkthrough of
// docs/migration.md, executed on this machine with real SPIRE while shoppers
// place orders. It moves one service at a time, rolls one back and forward
// again, then ends the bridge, and prints per step: each service's identity
// mode and certificate issuer, requests ok / failed / retried, p99 latency.
// Exits 1 if any request failed, or if a static certificate is still accepted
// at the end (or was refused before the end).
//
//   npm run migrate                 # non-interactive
//   npm run migrate -- --step       # pause before each step for a reader
//   npm run migrate -- --dwell 10   # seconds of traffic per step (Default: 6)
import { randomUUID } from 'node:crypto';
import { copyFile, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { createInterface } from 'node:readline/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Agent, request } from 'undici';
import { createDevCerts, freePort, freePorts, ROOT, Shop, type ServiceName } from './shop.ts';
import { getSpire } from './spire/get-spire.ts';
import { applyEntries, loadEntries } from './spire/register.ts';
import { Spire } from './spire/spire.ts';

const SERVICES: readonly ServiceName[] = ['inventory', 'payment', 'order'];

function readArgs() {
  try {
    return parseArgs({
      options: {
        step: { type: 'boolean', default: false },
        dwell: { type: 'string', default: '6' },
        concurrency: { type: 'string', default: '4' },
      },
    }).values;
  } catch (err) {
    console.error(`migrate: ${(err as Error).message}`);
    console.error('options: --step --dwell <seconds> --concurrency <n>');
    process.exit(2);
  }
}
const args = readArgs();
const dwellS = Number(args.dwell);
const concurrency = Number(args.concurrency);
if (!Number.isInteger(dwellS) || dwellS < 1 || !Number.isInteger(concurrency) || concurrency < 1) {
  console.error('migrate: --dwell and --concurrency must be integers >= 1');
  process.exit(2);
}

const dataDir = join(ROOT, '.data', 'migrate');
const certsDir = join(dataDir, 'certs');
const trustDir = join(dataDir, 'trust');
/** What static-mode services trust (TLS_CA_FILE): the static CA, plus SPIRE's bundle from step 1. */
const staticTrust = join(trustDir, 'static-services-trust.pem');
/** What SPIFFE-mode services trust besides SPIRE's bundle (TRUST_BRIDGE_CA_FILE): the static CA, until the last step. */
const bridgeFile = join(trustDir, 'static-ca-bridge.pem');

let spire: Spire | undefined;
let shop: Shop | undefined;

// --- traffic: shoppers as a careful client writes them --------------------------------------
// Each order carries an Idempotency-Key; a request that dies on the wire (a
// connection closed by a server that is draining) is sent again with the same
// key, so it is placed at most once. Those are counted as retried, not failed.
interface StepStats {
  ok: number;
  failed: number;
  retried: number;
  latencies: number[];
  failures: string[];
}
const newStats = (): StepStats => ({ ok: 0, failed: 0, retried: 0, latencies: [], failures: [] });
let stats = newStats();
let trafficOn = true;
const TECHNICAL = /inventory_unavailable|payment_unavailable|payment_error|payment_rejected|commit_rejected/;

async function shopper(orderUrl: string): Promise<void> {
  const products = ['sku-espresso', 'sku-grinder', 'sku-kettle'];
  while (trafficOn) {
    const key = randomUUID();
    const body = JSON.stringify({
      customer_id: 'c-migrate',
      currency: 'EUR',
      items: [{ product_id: products[Math.floor(Math.random() * products.length)], quantity: 1 }],
    });
    const t0 = performance.now();
    let outcome: string | undefined;
    for (let attempt = 1; attempt <= 3; attempt++) {
      try {
        const res = await request(`${orderUrl}/orders`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'idempotency-key': key },
          body,
          headersTimeout: 10_000,
        });
        const out = (await res.body.json()) as { status?: string; failure_reason?: string; code?: string };
        if ((res.statusCode === 201 || res.statusCode === 200) && !TECHNICAL.test(out.failure_reason ?? '')) {
          outcome = 'ok';
        } else outcome = `${String(res.statusCode)} ${out.code ?? out.failure_reason ?? ''}`;
        break;
      } catch (err) {
        if (attempt === 3) outcome = `network: ${(err as Error).message}`;
        else stats.retried++;
      }
    }
    const ms = performance.now() - t0;
    if (outcome === 'ok') {
      stats.ok++;
      stats.latencies.push(ms);
    } else {
      stats.failed++;
      stats.failures.push(outcome ?? 'unknown');
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}

function p99(xs: number[]): string {
  if (xs.length === 0) return '-';
  const s = [...xs].sort((a, b) => a - b);
  return `${(s[Math.min(s.length - 1, Math.ceil(s.length * 0.99) - 1)] ?? 0).toFixed(1)} ms`;
}

// --- what each service uses, from its own metrics ----------------------------------------------
/** identityOf reads shop_identity_info and shop_identity_trust_roots from a service's ops port. */
async function identityOf(
  opsUrl: string,
  trustDomain: string,
): Promise<{ mode: string; issuer: string; roots: string }> {
  try {
    const res = await request(`${opsUrl}/metrics`, { signal: AbortSignal.timeout(2000) });
    const text = await res.body.text();
    const info = /^shop_identity_info\{([^}]*)\} 1$/m.exec(text)?.[1] ?? '';
    const label = (k: string): string => new RegExp(`${k}="([^"]*)"`).exec(info)?.[1] ?? '?';
    const roots = new RegExp(`^shop_identity_trust_roots\\{trust_domain="${trustDomain}"[^}]*\\} (\\d+)$`, 'm').exec(
      text,
    )?.[1];
    return { mode: label('source') === 'spiffe' ? 'SPIFFE' : 'files', issuer: label('issuer'), roots: roots ?? '?' };
  } catch (err) {
    return { mode: '?', issuer: (err as Error).message, roots: '?' };
  }
}

/** staticClientStatus calls payment as order with order's static certificate; returns the HTTP status. */
async function staticClientStatus(paymentPort: number): Promise<number> {
  const [cert, key] = await Promise.all([
    readFile(join(certsDir, 'order.crt.pem'), 'utf8'),
    readFile(join(certsDir, 'order.key.pem'), 'utf8'),
  ]);
  // A test client: it does not verify the server, only shows what payment does with it.
  const dispatcher = new Agent({ connect: { cert, key, rejectUnauthorized: false } });
  try {
    const res = await request(`https://127.0.0.1:${String(paymentPort)}/api/payments?order_id=migrate-check`, {
      dispatcher,
    });
    await res.body.dump();
    return res.statusCode;
  } finally {
    await dispatcher.close();
  }
}

// --- the walkthrough ---------------------------------------------------------------------------
interface Step {
  title: string;
  run: () => Promise<void>;
}

async function main(): Promise<number> {
  await rm(dataDir, { recursive: true, force: true });
  await mkdir(trustDir, { recursive: true });
  await createDevCerts(certsDir, true);
  await copyFile(join(certsDir, 'ca.crt.pem'), staticTrust);
  await copyFile(join(certsDir, 'ca.crt.pem'), bridgeFile);

  const binDir = await getSpire();
  const [serverPort, serverHealthPort, agentBase] = [await freePort(), await freePort(), await freePort()];
  spire = new Spire({
    binDir,
    workDir: join(dataDir, 'spire'),
    serverPort,
    serverHealthPort,
    agentHealthPortBase: agentBase,
    x509SvidTtl: '5m',
  });
  await spire.startServer();
  for (const s of SERVICES) await spire.startAgent(s);
  await applyEntries(
    spire,
    await loadEntries({ TD: spire.trustDomain, UID: String(process.getuid?.() ?? 0), SVID_TTL: '300' }),
  );

  const ports = await freePorts();
  const common = { LISTEN_REUSE_PORT: 'true', TLS_CA_FILE: staticTrust, LOG_LEVEL: 'warn' };
  shop = new Shop({
    dataDir,
    certsDir,
    ports,
    env: {
      inventory: { ...common, SEED_FILE: join(ROOT, 'scripts', 'demo-catalogue.json') },
      payment: common,
      order: common,
    },
    onExit: (name, code) => {
      console.error(`migrate: ${name} exited unexpectedly (code ${String(code)})`);
    },
  });
  const theSpire = spire;
  const theShop = shop;
  const toSpiffe = async (name: ServiceName): Promise<void> => {
    await theShop.handover(name, {
      SPIFFE_ENDPOINT_SOCKET: theSpire.agentAddress(name),
      TRUST_BRIDGE_CA_FILE: bridgeFile,
    });
  };
  const toFiles = async (name: ServiceName): Promise<void> => {
    await theShop.handover(name, { SPIFFE_ENDPOINT_SOCKET: '', TRUST_BRIDGE_CA_FILE: '' });
  };

  let staticBeforeEnd = 0;
  const steps: Step[] = [
    { title: '0. all static: files from the CLI, one CA', run: () => theShop.startAll() },
    {
      title: "1. bridge trust: static services also trust SPIRE's bundle (CA file hot-reloaded)",
      run: async () => {
        const text = `${await readFile(join(certsDir, 'ca.crt.pem'), 'utf8')}${await theSpire.bundlePem()}`;
        await writeFile(`${staticTrust}.tmp`, text);
        await rename(`${staticTrust}.tmp`, staticTrust);
        await new Promise((r) => setTimeout(r, 2000));
      },
    },
    {
      title: '2. inventory → SPIFFE (trusts the static CA through TRUST_BRIDGE_CA_FILE)',
      run: () => toSpiffe('inventory'),
    },
    { title: '3. payment → SPIFFE', run: () => toSpiffe('payment') },
    { title: '4. rollback: payment → static files', run: () => toFiles('payment') },
    { title: '5. payment → SPIFFE again', run: () => toSpiffe('payment') },
    {
      title: '6. order → SPIFFE: every service on SPIRE',
      run: async () => {
        await toSpiffe('order');
        staticBeforeEnd = await staticClientStatus(ports.payment);
      },
    },
    {
      title: '7. end the bridge: the static CA leaves every trust (file emptied, hot-reloaded)',
      run: async () => {
        await writeFile(`${bridgeFile}.tmp`, '');
        await rename(`${bridgeFile}.tmp`, bridgeFile);
        await new Promise((r) => setTimeout(r, 2000));
      },
    },
  ];

  const rl = args.step ? createInterface({ input: process.stdin, output: process.stdout }) : undefined;
  const rows: string[][] = [];
  let load: Promise<unknown> | undefined;
  let totalFailed = 0;
  for (const step of steps) {
    if (rl) await rl.question(`\nNext: ${step.title}\nPress Enter to run it… `);
    console.log(`\n== ${step.title}`);
    stats = newStats();
    await step.run();
    load ??= Promise.all(Array.from({ length: concurrency }, () => shopper(theShop.orderUrl)));
    await new Promise((r) => setTimeout(r, dwellS * 1000));
    const s = stats;
    totalFailed += s.failed;
    const ids = await Promise.all(SERVICES.map((n) => identityOf(theShop.opsUrl(n), theSpire.trustDomain)));
    const row = [
      step.title.split(':')[0] ?? step.title,
      ...ids.map((i) => `${i.mode} (${i.issuer})`),
      ids.map((i) => i.roots).join(' / '),
      String(s.ok),
      String(s.failed),
      String(s.retried),
      p99(s.latencies),
    ];
    rows.push(row);
    console.log(
      `   ${SERVICES.map((n, i) => `${n}: ${row[i + 1] ?? ''}`).join('  ')}\n   trust roots ${row[4] ?? ''}  ok ${row[5] ?? ''}  failed ${row[6] ?? ''}  retried ${row[7] ?? ''}  p99 ${row[8] ?? ''}`,
    );
    for (const f of s.failures.slice(0, 5)) console.log(`   failure: ${f}`);
  }
  trafficOn = false;
  await load;
  rl?.close();

  const staticAfterEnd = await staticClientStatus(ports.payment);
  const header = [
    'step',
    'inventory',
    'payment',
    'order',
    `${theSpire.trustDomain} roots (inv / pay / ord)`,
    'ok',
    'failed',
    'retried',
    'p99',
  ];
  console.log(`\n| ${header.join(' | ')} |\n| ${header.map(() => '---').join(' | ')} |`);
  for (const r of rows) console.log(`| ${r.join(' | ')} |`);
  console.log(
    `\nA client holding order's static certificate, calling payment: before step 7 → HTTP ${String(staticBeforeEnd)}, after step 7 → HTTP ${String(staticAfterEnd)}`,
  );
  const problems: string[] = [];
  if (totalFailed > 0) problems.push(`${String(totalFailed)} request(s) failed`);
  if (staticBeforeEnd === 401 || staticBeforeEnd === 403)
    problems.push('the static certificate was refused before the bridge ended');
  if (staticAfterEnd !== 401)
    problems.push(`the static certificate was not refused after the bridge ended (HTTP ${String(staticAfterEnd)})`);
  if (problems.length > 0) {
    console.log(`\nmigrate: FAILED: ${problems.join('; ')}`);
    return 1;
  }
  console.log('\nmigrate: every step served every request; the static certificate is refused at the end.');
  return 0;
}

async function cleanup(): Promise<void> {
  trafficOn = false;
  await shop?.stopAll();
  await spire?.stop();
}

process.once('SIGINT', () => {
  void cleanup().then(() => process.exit(130));
});
let code = 1;
try {
  code = await main();
} catch (err) {
  console.error(`migrate: ${(err as Error).stack ?? String(err)}`);
} finally {
  await cleanup();
}
process.exit(code);
