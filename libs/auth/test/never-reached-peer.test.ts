// neverReachedPeer over real failures on loopback: what a caller of the
// undici adapter (request() and fetch()) gets when the call never left, and
// positive controls where the request did reach the server.
import assert from 'node:assert/strict';
import { createServer as createNetServer, type AddressInfo, type Server as NetServer } from 'node:net';
import { after, before, describe, test } from 'node:test';
import Fastify, { type FastifyInstance } from 'fastify';
import { Agent, fetch, request } from 'undici';
import { authorizeId } from '../src/authorize/authorizer.ts';
import { fastifyMtlsOptions, spiffeAuth } from '../src/adapters/fastify.ts';
import { createMtlsDispatcher } from '../src/adapters/undici.ts';
import { AuthError } from '../src/errors.ts';
import { neverReachedPeer } from '../src/never-reached-peer.ts';
import { MemorySource, createTestTrustDomain, type TestTrustDomain } from '@shop/auth-testing';

const SERVER = 'spiffe://example.org/server';

let td: TestTrustDomain;
let client: MemorySource;

before(async () => {
  td = await createTestTrustDomain('example.org');
  client = MemorySource.create(await td.svid('/client'), [td.bundle]);
});

async function failureOf(call: () => Promise<unknown>): Promise<unknown> {
  try {
    await call();
  } catch (err) {
    return err;
  }
  throw new Error('the call succeeded');
}

// A port nobody listens on: bound, noted, closed.
async function closedPort(): Promise<number> {
  const s = createNetServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((resolve) =>
    s.close(() => {
      resolve();
    }),
  );
  return port;
}

async function mtlsServer(source: MemorySource, slow = false): Promise<{ app: FastifyInstance; url: string }> {
  const app = Fastify({ https: fastifyMtlsOptions(source), logger: false });
  await app.register(spiffeAuth, { source });
  app.get('/ok', () => ({ ok: true }));
  // Answers only after the caller has given up: the request was received.
  app.get(
    '/slow',
    () =>
      new Promise((resolve) =>
        setTimeout(
          () => {
            resolve({ ok: true });
          },
          slow ? 2000 : 0,
        ),
      ),
  );
  await app.listen({ host: '127.0.0.1', port: 0 });
  return { app, url: `https://127.0.0.1:${(app.server.address() as AddressInfo).port}` };
}

describe('neverReachedPeer', () => {
  let good: { app: FastifyInstance; url: string };
  let rogue: { app: FastifyInstance; url: string };
  let dispatcher: Agent;

  before(async () => {
    good = await mtlsServer(MemorySource.create(await td.svid('/server'), [td.bundle]), true);
    // Same SPIFFE ID, but issued by a CA the client does not trust.
    const other = await createTestTrustDomain('example.org');
    rogue = await mtlsServer(MemorySource.create(await other.svid('/server'), [td.bundle]));
    dispatcher = createMtlsDispatcher({ source: client, authorize: authorizeId(SERVER), connectTimeoutMs: 2000 });
  });
  after(async () => {
    await dispatcher.close();
    await good.app.close();
    await rogue.app.close();
  });

  test('positive control: the good server answers, so the failures below are the cases, not the set-up', async () => {
    const res = await request(`${good.url}/ok`, { dispatcher });
    assert.equal(res.statusCode, 200);
    await res.body.dump();
  });

  test('a refused port never reached the peer: request(), fetch(), and plain undici without our connector', async () => {
    const url = `https://127.0.0.1:${await closedPort()}/ok`;
    const viaRequest = await failureOf(() => request(url, { dispatcher }));
    assert.equal((viaRequest as AuthError).code, 'AUTH_ERR_TLS_CONNECT', 'what reaches a caller of the adapter');
    assert.equal(neverReachedPeer(viaRequest), true);
    const viaFetch = await failureOf(() => fetch(url, { dispatcher }));
    assert.equal((viaFetch as Error).message, 'fetch failed', 'fetch hides the cause one level down');
    assert.equal(neverReachedPeer(viaFetch), true);
    const plain = new Agent();
    try {
      const viaPlain = await failureOf(() => request(url, { dispatcher: plain }));
      assert.equal((viaPlain as { code?: string }).code, 'ECONNREFUSED');
      assert.equal(neverReachedPeer(viaPlain), true);
    } finally {
      await plain.close();
    }
  });

  test('a server whose SVID fails verification, or is not the one we meant to call, never reached the peer', async () => {
    const unverified = await failureOf(() => request(`${rogue.url}/ok`, { dispatcher }));
    assert.equal((unverified as AuthError).code, 'AUTH_ERR_PEER_UNVERIFIED');
    assert.equal(neverReachedPeer(unverified), true);
    const wrongId = createMtlsDispatcher({ source: client, authorize: authorizeId('spiffe://example.org/payment') });
    try {
      const unauthorized = await failureOf(() => fetch(`${good.url}/ok`, { dispatcher: wrongId }));
      assert.equal(neverReachedPeer(unauthorized), true);
    } finally {
      await wrongId.close();
    }
  });

  test('positive control: a timeout after the request was sent may have reached the peer', async () => {
    const headers = await failureOf(() => request(`${good.url}/slow`, { dispatcher, headersTimeout: 300 }));
    assert.equal((headers as { code?: string }).code, 'UND_ERR_HEADERS_TIMEOUT');
    assert.equal(neverReachedPeer(headers), false);
    const aborted = await failureOf(() => fetch(`${good.url}/slow`, { dispatcher, signal: AbortSignal.timeout(300) }));
    assert.equal(neverReachedPeer(aborted), false);
  });

  test('positive control: a connection reset after the request was written may have reached the peer', async () => {
    // A TLS-less listener that reads a little and resets: to the mTLS
    // client it is a failed handshake, so this uses plain TCP and HTTP.
    const server: NetServer = createNetServer((socket) => {
      socket.once('data', () => socket.resetAndDestroy());
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const plain = new Agent();
    try {
      const { port } = server.address() as AddressInfo;
      const reset = await failureOf(() => request(`http://127.0.0.1:${port}/`, { dispatcher: plain }));
      assert.notEqual((reset as { code?: string }).code, undefined);
      assert.equal(neverReachedPeer(reset), false);
    } finally {
      await plain.close();
      await new Promise<void>((resolve) =>
        server.close(() => {
          resolve();
        }),
      );
    }
  });

  test('values that are not connect failures answer false; a wrapper with its own code speaks for itself', () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
    assert.equal(neverReachedPeer(new Error('wrapped', { cause: refused })), true, 'positive control');
    const values = [undefined, null, 'ECONNREFUSED', 42, new Error('boom'), { code: 23 }];
    for (const [i, value] of values.entries()) assert.equal(neverReachedPeer(value), false, `value #${i}`);
    const own = Object.assign(new Error('later failure'), { code: 'UND_ERR_SOCKET', cause: refused });
    assert.equal(neverReachedPeer(own), false);
    assert.equal(neverReachedPeer(new AuthError('AUTH_ERR_CONFIG_INVALID', 'x')), false);
  });
});
