// Builds payment apps for inject() tests: a test trust domain, callers picked by header, a temp DATA_DIR
// (SQLite, or with SHOP_TEST_DATABASE=postgres a database of a test cluster keyed by it).
import { Writable } from 'node:stream';
import type { TestContext } from 'node:test';
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify';
import {
  MemorySource,
  TEST_PEER_HEADER,
  createHeaderPeerResolver,
  createTestTrustDomain,
  makeTempDir,
  type TestTrustDomain,
} from '@shop/auth-testing';
import { createLogger, type DatabaseConfig } from '@shop/service-kit';
import { testDatabaseConfig } from '@shop/service-kit/testing';
import { buildApp } from '../src/app.ts';
import { PaymentService } from '../src/payments.ts';
import { CardProcessor, type CardProcessorOptions } from '../src/processor.ts';
import { PaymentStore } from '../src/store.ts';

/** ORDER, PAYMENT and INVENTORY are the callers the tests present. */
export const ORDER = 'spiffe://example.org/order';
export const PAYMENT = 'spiffe://example.org/payment';
export const INVENTORY = 'spiffe://example.org/inventory';

/** Identity is a trust domain, our own source and a header peer resolver for it. */
export interface Identity {
  td: TestTrustDomain;
  source: MemorySource;
  resolvePeer: Awaited<ReturnType<typeof createHeaderPeerResolver>>;
}

/** createIdentity issues the SVIDs of `paths` in a fresh test trust domain. */
export async function createIdentity(paths = ['/order', '/payment', '/inventory']): Promise<Identity> {
  const td = await createTestTrustDomain('example.org');
  const source = MemorySource.create(await td.svid('/payment'), [td.bundle]);
  return { td, source, resolvePeer: await createHeaderPeerResolver(td, paths) };
}

/** Harness is one payment app on a data directory, with its log lines. */
export interface Harness {
  app: FastifyInstance;
  store: PaymentStore;
  processor: CardProcessor;
  dir: string;
  lines: Record<string, unknown>[];
  /** close stops the app and closes the store (the data directory stays). */
  close: () => Promise<void>;
}

/** HarnessOptions configure startPayment. */
export interface HarnessOptions {
  /** dir is the DATA_DIR; default a fresh temp dir removed when the test ends. */
  dir?: string;
  processor?: CardProcessorOptions;
  now?: () => number;
  orderId?: string;
  /** database replaces the one of `dir`: e.g. one PostgreSQL database shared by several replicas. */
  database?: DatabaseConfig;
}

/**
 * startPayment builds a payment app for test `t`; the app, its store and (if
 * made here) its data directory are removed when the test ends, pass or fail.
 */
export async function startPayment(t: TestContext, id: Identity, o: HarnessOptions = {}): Promise<Harness> {
  let dir = o.dir;
  let removeDir = async (): Promise<void> => {};
  if (!dir) {
    const tmp = await makeTempDir('payment-test-');
    dir = tmp.dir;
    removeDir = tmp.cleanup;
  }
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n').filter(Boolean))
        lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  let store: PaymentStore;
  try {
    store = await PaymentStore.open(o.database ?? (await testDatabaseConfig(dir, 'payment.db')));
  } catch (err) {
    await removeDir();
    throw err;
  }
  const processor = new CardProcessor(o.processor);
  let app: FastifyInstance;
  try {
    app = await buildApp({
      config: { orderId: o.orderId ?? ORDER },
      source: id.source,
      payments: new PaymentService(store, processor, o.now ? { now: o.now } : {}),
      resolvePeer: id.resolvePeer,
      log: createLogger('payment', 'info', stream),
    });
  } catch (err) {
    await store.close();
    await removeDir();
    throw err;
  }
  let closed = false;
  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    await app.close();
    await store.close();
  };
  t.after(async () => {
    await close();
    await removeDir();
  });
  return { app, store, processor, dir, lines, close };
}

/** Body is a JSON request body; tests leave fields out or make them wrong on purpose. */
export type Body = Record<string, unknown>;

/** chargeBody returns a valid charge body for `orderId`, with `extra` merged in. */
export function chargeBody(orderId: string, extra: Body = {}): Body {
  return { order_id: orderId, amount: 1999, currency: 'EUR', user_id: 'user-1', ...extra };
}

/** post sends a JSON POST as `peer` (null: no identity) with an Idempotency-Key (null: none). */
export function post(
  app: FastifyInstance,
  url: string,
  body: unknown,
  opts: { key?: string | null; peer?: string | null; headers?: Record<string, string> } = {},
): Promise<LightMyRequestResponse> {
  const headers: Record<string, string> = { 'content-type': 'application/json', ...opts.headers };
  const peer = opts.peer === undefined ? ORDER : opts.peer;
  if (peer !== null) headers[TEST_PEER_HEADER] = peer;
  if (opts.key !== null) headers['idempotency-key'] = opts.key ?? `key-${Math.random().toString(36).slice(2)}`;
  const req: InjectOptions = {
    method: 'POST',
    url,
    headers,
    payload: typeof body === 'string' ? body : JSON.stringify(body),
  };
  return app.inject(req);
}

/** get sends a GET as `peer` (null: no identity). */
export function get(app: FastifyInstance, url: string, peer: string | null = ORDER): Promise<LightMyRequestResponse> {
  return app.inject({ method: 'GET', url, headers: peer === null ? {} : { [TEST_PEER_HEADER]: peer } });
}

/** errorOf reads `{ code, message }` from an error answer. */
export function errorOf(res: LightMyRequestResponse): { code: string; message: string } & Body {
  return res.json<{ code: string; message: string } & Body>();
}
