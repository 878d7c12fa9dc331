// Interoperability with go-spiffe v2, the reference Go library, against one
// real SPIRE deployment: a Go client (test/interop/go) calls payment and
// inventory, and @shop/auth calls a Go server, each side verifying and
// authorizing the other by SPIFFE ID.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { request } from 'undici';
import { authorizeId, createIdentitySource, isAuthError, type IdentitySource } from '@shop/auth';
import { createMtlsDispatcher } from '@shop/auth/undici';
import { ROOT, type Shop } from '../scripts/shop.ts';
import { freePort, startSpiffeShop, startSpire, type SpireWorld } from './support/spire-shop.ts';

const GO_DIR = join(ROOT, 'test', 'interop', 'go');

const ID = {
  order: 'spiffe://example.org/order',
  payment: 'spiffe://example.org/payment',
  inventory: 'spiffe://example.org/inventory',
  stranger: 'spiffe://example.org/stranger',
  goServer: 'spiffe://example.org/go-server',
} as const;

/** The extra nodes of this file and the one identity each agent serves. */
const GO_NODES = { 'go-allowed': ID.order, 'go-denied': ID.stranger, 'go-server': ID.goServer } as const;
type GoNode = keyof typeof GO_NODES;

let tmp: string;
let bin: string;
let world: SpireWorld | undefined;
let shop: Shop | undefined;
let orderSource: IdentitySource | undefined;
const children = new Set<ChildProcess>();

// Every process this file started is stopped here, also when a test failed.
after(async () => {
  for (const c of children) await stopChild(c);
  await orderSource?.close();
  await shop?.stopAll();
  await world?.stop();
  await rm(tmp, { recursive: true, force: true });
});
process.on('exit', () => {
  for (const c of children) c.kill('SIGKILL');
});

before(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'spire-interop-'));
  bin = join(tmp, 'interop');
  // Build while SPIRE starts; allSettled so a failed build still leaves `world` for after().
  const settled = await Promise.allSettled([
    goBuild(bin),
    startSpire({ nodes: ['inventory', 'payment', 'order', ...(Object.keys(GO_NODES) as GoNode[])] }).then((w) => {
      world = w;
    }),
  ]);
  for (const s of settled) if (s.status === 'rejected') throw s.reason;
  const w = world!;
  await w.register(300);
  for (const [node, spiffeId] of Object.entries(GO_NODES)) {
    await w.spire.createEntry({
      spiffe_id: spiffeId,
      parent_id: w.spire.nodeId(node),
      selectors: [`unix:uid:${w.uid}`],
      x509_svid_ttl: 300,
    });
  }
  const starting = startSpiffeShop(w).then((s) => {
    shop = s;
  });
  await Promise.all([starting, ...Object.entries(GO_NODES).map(([node, id]) => waitForSvid(node as GoNode, id))]);
  orderSource = await createIdentitySource({ env: { SPIFFE_ENDPOINT_SOCKET: w.spire.agentAddress('order') } });
});

function goBuild(out: string): Promise<void> {
  return new Promise((res, rej) => {
    const p = spawn('go', ['build', '-o', out, '.'], { cwd: GO_DIR, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.once('error', (err) => {
      rej(new Error(`this test needs Go >= 1.26 on PATH to build ${GO_DIR}: ${err.message}`));
    });
    p.once('close', (code) => {
      if (code === 0) res();
      else rej(new Error(`go build in ${GO_DIR} exited ${code}: ${stderr}`));
    });
  });
}

async function stopChild(c: ChildProcess): Promise<void> {
  if (c.exitCode === null && c.signalCode === null) {
    const exited = new Promise((r) => c.once('exit', r));
    c.kill('SIGTERM');
    const timer = setTimeout(() => c.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  }
  children.delete(c);
}

interface GoOutput {
  status?: number;
  body?: unknown;
  error?: string;
  id?: string;
}

/** runGo runs the interop binary to completion: exit code and its one JSON line. */
function runGo(args: string[], timeoutMs = 20_000): Promise<{ code: number | null; out: GoOutput; stderr: string }> {
  return new Promise((res, rej) => {
    const p = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(p);
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.once('error', rej);
    p.once('close', (code) => {
      clearTimeout(timer);
      children.delete(p);
      try {
        res({ code, out: JSON.parse(stdout) as GoOutput, stderr });
      } catch {
        rej(new Error(`interop ${args[0]} printed no JSON line (exit ${code}): ${stdout} ${stderr}`));
      }
    });
  });
}

/** waitForSvid polls until the agent of `node` serves `spiffeId` (SPIRE agents sync entries every few seconds). */
async function waitForSvid(node: GoNode, spiffeId: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: GoOutput = {};
  while (Date.now() < deadline) {
    last = (await runGo(['svid', '-socket', world!.spire.agentAddress(node), '-timeout', '2s'])).out;
    if (last.id === spiffeId) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  assert.fail(
    `the ${node} agent did not serve ${spiffeId} within ${timeoutMs / 1000} s; last: ${JSON.stringify(last)}`,
  );
}

/** goClient calls one of the shop's mTLS APIs from the Go client, as the identity of `node`. */
function goClient(
  node: GoNode,
  url: string,
  serverId: string,
  o: { method?: string; body?: unknown; headers?: string[] } = {},
): ReturnType<typeof runGo> {
  const args = ['client', '-socket', world!.spire.agentAddress(node), '-url', url, '-server-id', serverId];
  if (o.method) args.push('-method', o.method);
  if (o.body !== undefined) args.push('-body', JSON.stringify(o.body));
  for (const h of o.headers ?? []) args.push('-header', h);
  return runGo(args);
}

const paymentUrl = (path: string): string => `https://127.0.0.1:${shop!.ports.payment}${path}`;
const inventoryUrl = (path: string): string => `https://127.0.0.1:${shop!.ports.inventory}${path}`;

interface GoServer {
  port: number;
  /** log is what the server wrote on stderr so far (handshake refusals name the peer). */
  log: () => string;
  stop: () => Promise<void>;
}

/** startGoServer starts the Go server on the go-server agent's identity, admitting only `allow`. */
async function startGoServer(allow: string): Promise<GoServer> {
  const port = await freePort();
  const p = spawn(
    bin,
    ['server', '-socket', world!.spire.agentAddress('go-server'), '-listen', `127.0.0.1:${port}`, '-allow', allow],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  children.add(p);
  let stdout = '';
  let stderr = '';
  p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  await new Promise<void>((res, rej) => {
    const timer = setTimeout(() => {
      rej(new Error(`interop server did not say "listening" within 30 s: ${stdout} ${stderr}`));
    }, 30_000);
    p.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      if (stdout.split('\n').includes('listening')) {
        clearTimeout(timer);
        res();
      }
    });
    p.once('exit', (code) => {
      clearTimeout(timer);
      rej(new Error(`interop server exited ${code} during start-up: ${stdout} ${stderr}`));
    });
  });
  return {
    port,
    log: () => stderr,
    stop: async () => {
      await stopChild(p);
      assert.equal(p.exitCode, 0, `interop server did not exit cleanly on SIGTERM: ${stderr}`);
    },
  };
}

describe('go-spiffe client → the shop', () => {
  const cases = [
    {
      name: 'payment POST /api/charge',
      call: (node: GoNode) => {
        const orderId = `interop-${randomUUID()}`;
        return goClient(node, paymentUrl('/api/charge'), ID.payment, {
          method: 'POST',
          body: { order_id: orderId, amount: 1999, currency: 'EUR', user_id: 'u-interop' },
          headers: [`Idempotency-Key: ${orderId}-charge`],
        });
      },
      order: { status: 201, has: { status: 'succeeded', amount: 1999, currency: 'EUR' } },
      stranger: 403,
    },
    {
      name: 'inventory POST /api/stock/sku-a/reserve',
      call: (node: GoNode) =>
        goClient(node, inventoryUrl('/api/stock/sku-a/reserve'), ID.inventory, {
          method: 'POST',
          body: { quantity: 1, order_id: `interop-${randomUUID()}` },
        }),
      order: { status: 201, has: { product_id: 'sku-a', quantity: 1, status: 'reserved' } },
      stranger: 403,
    },
    {
      name: 'inventory GET /api/stock/sku-a (any member of the trust domain)',
      call: (node: GoNode) => goClient(node, inventoryUrl('/api/stock/sku-a'), ID.inventory),
      order: { status: 200, has: { product_id: 'sku-a' } },
      stranger: 200,
    },
  ];

  for (const c of cases) {
    test(`${c.name}: the order ID → ${c.order.status}; stranger → ${c.stranger}`, async () => {
      const allowed = await c.call('go-allowed');
      assert.equal(allowed.code, 0, JSON.stringify(allowed));
      assert.equal(allowed.out.status, c.order.status, JSON.stringify(allowed.out));
      assert.partialDeepStrictEqual(allowed.out.body, c.order.has);

      const stranger = await c.call('go-denied');
      assert.equal(stranger.code, 0, JSON.stringify(stranger));
      assert.equal(stranger.out.status, c.stranger, JSON.stringify(stranger.out));
      if (c.stranger === 403) {
        assert.partialDeepStrictEqual(stranger.out.body, { code: 'AUTH_ERR_PEER_UNAUTHORIZED', caller: ID.stranger });
      }
    });
  }

  test('the Go client refuses a server whose ID is not the one it authorizes, naming that ID', async () => {
    const right = await goClient('go-allowed', paymentUrl('/api/payments/pay_none'), ID.payment);
    assert.equal(right.code, 0, JSON.stringify(right));
    assert.equal(right.out.status, 404, JSON.stringify(right.out));

    const wrong = await goClient('go-allowed', paymentUrl('/api/payments/pay_none'), ID.inventory);
    assert.equal(wrong.code, 2, JSON.stringify(wrong));
    assert.match(wrong.out.error ?? '', /unexpected ID "spiffe:\/\/example\.org\/payment"/);
  });
});

describe('@shop/auth → go-spiffe server', () => {
  async function hello(port: number, serverId: string): Promise<{ status: number; body: unknown }> {
    const dispatcher = createMtlsDispatcher({ source: orderSource!, authorize: authorizeId(serverId) });
    try {
      const res = await request(`https://127.0.0.1:${port}/hello`, { dispatcher });
      return { status: res.statusCode, body: await res.body.json() };
    } finally {
      await dispatcher.close();
    }
  }

  test('our order identity calls the Go server; authorizing another server ID is refused', async () => {
    const server = await startGoServer(ID.order);
    try {
      assert.deepEqual(await hello(server.port, ID.goServer), {
        status: 200,
        body: { server: 'go', caller: ID.order },
      });
      await assert.rejects(hello(server.port, ID.payment), (err: unknown) => {
        assert.ok(isAuthError(err), String(err));
        assert.equal(err.code, 'AUTH_ERR_PEER_UNAUTHORIZED');
        assert.match(err.message, /unexpected ID "spiffe:\/\/example\.org\/go-server"/);
        return true;
      });
    } finally {
      await server.stop();
    }
  });

  test('a Go server admitting only payment refuses our order identity', async () => {
    const admitsOrder = await startGoServer(ID.order);
    const admitsPayment = await startGoServer(ID.payment);
    try {
      assert.equal((await hello(admitsOrder.port, ID.goServer)).status, 200);
      // In TLS 1.3 the server judges our certificate after our side of the
      // handshake is done, so its refusal reaches undici on the open socket.
      await assert.rejects(hello(admitsPayment.port, ID.goServer));
      assert.match(admitsPayment.log(), /unexpected ID "spiffe:\/\/example\.org\/order"/);
    } finally {
      await admitsOrder.stop();
      await admitsPayment.stop();
    }
  });
});
