// The containers test bed: brings compose files up under a project name of
// its own with testcontainers, and gives the tests what they need to drive and
// observe it. Ryuk (testcontainers' reaper) cannot be pulled here, so it is
// disabled and every project is taken down explicitly, also on failure
// (scripts/containers/test-containers.ts sweeps leftovers as a last resort).
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import { DockerComposeEnvironment, Wait, type StartedDockerComposeEnvironment } from 'testcontainers';
import { request } from 'undici';
import { freePort } from '../../scripts/shop.ts';

const run = promisify(execFile);

/** ROOT is the repository, where compose.yaml lives. */
export const ROOT = resolve(import.meta.dirname, '../..');
/** TEST_PROJECT_PREFIX names every compose project the suite creates. */
export const TEST_PROJECT_PREFIX = 'spiffe-shop-test-';

/** Shop is one compose project of the shop, up and healthy. */
export interface Shop {
  project: string;
  files: string[];
  orderUrl: string;
  env: StartedDockerComposeEnvironment;
  /** compose runs `docker compose -p <project> -f ... <args>`, with `env` added to the environment. */
  compose(args: string[], env?: Record<string, string>): Promise<string>;
  /** logs returns a service's log lines (JSON lines parsed where they parse). */
  logs(service: string): Promise<string[]>;
  down(): Promise<void>;
}

const ONE_SHOTS = ['spire-node-pki', 'spire-register', 'certs', 'trust-init', 'postgres-pki'];
const HEALTHY = ['spire-server', 'spire-agent', 'postgres', 'inventory', 'payment', 'order'];

/**
 * startShop brings `files` up as a fresh project and waits until every
 * service is healthy, each of the shop's services with `replicas` containers
 * (as the files say: compose.scale.yaml's order replicas take ORDER_PORT and
 * the next port).
 */
export async function startShop(files: string[], profiles: string[] = [], replicas = 1): Promise<Shop> {
  const project = `${TEST_PROJECT_PREFIX}${randomBytes(3).toString('hex')}`;
  const port = await freePort();
  const environment: Record<string, string> = {
    // The console's published port too: never 3000, which `npm start` may hold.
    CONSOLE_PORT: String(await freePort()),
    ORDER_PORT: String(port),
    ORDER_PORT_LAST: String(port + replicas - 1),
  };
  for (const k of [
    'NODE_IMAGE',
    'SPIRE_SERVER_IMAGE',
    'SPIRE_AGENT_IMAGE',
    'POSTGRES_IMAGE',
    'PROMETHEUS_IMAGE',
    'SHOP_TAG',
  ]) {
    const v = process.env[k];
    if (v) environment[k] = v;
  }
  let compose = new DockerComposeEnvironment(ROOT, files)
    .withProjectName(project)
    .withEnvironment(environment)
    .withStartupTimeout(180_000);
  if (profiles.length > 0) compose = compose.withProfiles(...profiles);
  const present = new Set(
    (
      await run('docker', ['compose', ...files.flatMap((f) => ['-f', f]), 'config', '--services'], {
        cwd: ROOT,
        env: { ...process.env, ...environment },
      })
    ).stdout.split('\n'),
  );
  for (const s of ONE_SHOTS) if (present.has(s)) compose = compose.withWaitStrategy(`${s}-1`, Wait.forOneShotStartup());
  for (const s of HEALTHY) {
    if (!present.has(s)) continue;
    const count = ['inventory', 'payment', 'order'].includes(s) ? replicas : 1;
    for (let i = 1; i <= count; i++) compose = compose.withWaitStrategy(`${s}-${i}`, Wait.forHealthCheck());
  }
  const dc = async (args: string[], extraEnv: Record<string, string> = {}): Promise<string> => {
    const { stdout } = await run('docker', ['compose', '-p', project, ...files.flatMap((f) => ['-f', f]), ...args], {
      cwd: ROOT,
      env: { ...process.env, ...environment, ...extraEnv },
      maxBuffer: 64 << 20,
    });
    return stdout;
  };
  let env: StartedDockerComposeEnvironment;
  try {
    env = await compose.up();
  } catch (err) {
    // up() failing half-way leaves containers and volumes behind: take them down here.
    await dc(['down', '--volumes', '--timeout', '5']).catch(() => undefined);
    throw err;
  }
  return {
    project,
    files,
    orderUrl: `http://127.0.0.1:${String(port)}`,
    env,
    compose: dc,
    async logs(service) {
      const out = await dc(['logs', '--no-color', '--no-log-prefix', service]);
      return out.split('\n').filter((l) => l.trim() !== '');
    },
    async down() {
      await env.down({ removeVolumes: true, timeout: 5_000 });
    },
  };
}

/** identityOf reads a service's shop_identity_info from its ops port, inside its container. */
export async function identityOf(shop: Shop, service: string): Promise<{ source: string; issuer: string }> {
  const out = await shop.compose([
    'exec',
    '-T',
    service,
    'node',
    '-e',
    'fetch(`http://127.0.0.1:${process.env.OPS_PORT}/metrics`).then((r) => r.text()).then((t) => console.log(t))',
  ]);
  const info = /^shop_identity_info\{([^}]*)\} 1$/m.exec(out)?.[1] ?? '';
  const label = (k: string): string => new RegExp(`${k}="([^"]*)"`).exec(info)?.[1] ?? '';
  return { source: label('source'), issuer: label('issuer') };
}

/** OrderResult is what a shopper saw for one order. */
export interface OrderResult {
  status: number;
  ms: number;
  body: { status?: string; code?: string; order_id?: string; failure_reason?: string };
  retryAfter?: string;
}

/** placeOrder places one order for an item that never runs out (sku-espresso). */
export async function placeOrder(orderUrl: string, quantity = 1): Promise<OrderResult> {
  const t0 = performance.now();
  const res = await request(`${orderUrl}/orders`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      customer_id: 'c-containers',
      currency: 'EUR',
      items: [{ product_id: 'sku-espresso', quantity }],
    }),
    headersTimeout: 15_000,
    bodyTimeout: 15_000,
  });
  const body = (await res.body.json()) as OrderResult['body'];
  const retryAfter = res.headers['retry-after'];
  return {
    status: res.statusCode,
    ms: performance.now() - t0,
    body,
    retryAfter: typeof retryAfter === 'string' ? retryAfter : undefined,
  };
}

/** parseJsonLines keeps the lines that are JSON objects. */
export function parseJsonLines(lines: string[]): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  for (const l of lines) {
    try {
      const v = JSON.parse(l) as unknown;
      if (v && typeof v === 'object') out.push(v as Record<string, unknown>);
    } catch {
      // not JSON (a banner, a stack trace): skipped
    }
  }
  return out;
}

/** runProbe runs test/containers/probe.ts in a throw-away container on the project's network, with `label`. */
export async function runProbe(
  shop: Shop,
  label: string,
  extra: { volumes?: string[]; env?: Record<string, string> } = {},
): Promise<Record<string, unknown>> {
  const name = `${shop.project}-probe-${randomBytes(2).toString('hex')}`;
  const more = [
    ...(extra.volumes ?? []).flatMap((v) => ['-v', `${shop.project}_${v}`]),
    ...Object.entries(extra.env ?? {}).flatMap(([k, v]) => ['-e', `${k}=${v}`]),
  ];
  try {
    const { stdout } = await run(
      'docker',
      [
        'run',
        '--rm',
        '--name',
        name,
        '--network',
        `${shop.project}_default`,
        '--label',
        `org.spiffe-shop.service=${label}`,
        '-v',
        `${shop.project}_spire-agent-socket:/run/spire/agent/public:ro`,
        '-v',
        `${resolve(import.meta.dirname, 'probe.ts')}:/app/probe.ts:ro`,
        '--health-cmd',
        'true',
        ...more,
        `spiffe-shop/order:${process.env.SHOP_TAG ?? 'dev'}`,
        'node',
        'probe.ts',
      ],
      { timeout: 60_000 },
    );
    const last = stdout.trim().split('\n').pop() ?? '{}';
    return JSON.parse(last) as Record<string, unknown>;
  } finally {
    await run('docker', ['rm', '-f', name]).catch(() => undefined);
  }
}
