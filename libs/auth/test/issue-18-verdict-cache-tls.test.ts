// Issue 18: over real TLS connections, a resumed session (or a reconnecting
// peer) is served from the verdict cache in both roles, the allow rule still
// runs on every request and connection, and a bundle change is seen at once.
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { after, before, describe, test } from 'node:test';
import Fastify, { type FastifyInstance } from 'fastify';
import { request, type Dispatcher } from 'undici';
import { X509Svid } from '../src/svid/x509-svid.ts';
import { authorizeId } from '../src/authorize/authorizer.ts';
import { fastifyMtlsOptions, spiffeAuth } from '../src/adapters/fastify.ts';
import { createMtlsDispatcher } from '../src/adapters/undici.ts';
import { isAuthError } from '../src/errors.ts';
import { connectMtls, type ResumableSession } from '../src/tls/client-connect.ts';
import { VerdictCache } from '../src/verify/verdict-cache.ts';
import { MemorySource, createTestTrustDomain, type TestTrustDomain } from '@shop/auth-testing';

const SERVER_ID = 'spiffe://example.org/payment';
const CLIENT_ID = 'spiffe://example.org/order';

describe('issue 18: verdict cache over TLS, both roles', () => {
  let td: TestTrustDomain;
  let serverSource: MemorySource;
  let clientSource: MemorySource;
  let serverVerdicts: VerdictCache;
  let app: FastifyInstance;
  let port: number;
  const resumedOnServer: boolean[] = [];

  before(async () => {
    td = await createTestTrustDomain('example.org');
    serverSource = MemorySource.create(await td.svid('/payment'), [td.bundle]);
    clientSource = MemorySource.create(await td.svid('/order'), [td.bundle]);
    serverVerdicts = new VerdictCache();
    app = Fastify({ https: fastifyMtlsOptions(serverSource), logger: false });
    await app.register(spiffeAuth, { source: serverSource, allow: [CLIENT_ID], verdicts: serverVerdicts });
    app.server.on('secureConnection', (s: TLSSocket) => resumedOnServer.push(s.isSessionReused()));
    app.get('/whoami', (req) => ({ caller: req.peer?.id.toString() }));
    app.get('/inventory-only', { config: { spiffe: { allow: ['spiffe://example.org/inventory'] } } }, () => 'no');
    await app.listen({ host: '127.0.0.1', port: 0 });
    port = (app.server.address() as AddressInfo).port;
  });
  after(async () => {
    await app.close();
  });

  const get = async (dispatcher: Dispatcher, path: string): Promise<{ status: number; body: string }> => {
    const res = await request(`https://127.0.0.1:${port}${path}`, { dispatcher, reset: true });
    return { status: res.statusCode, body: await res.body.text() };
  };

  test('positive control: new resumed connections are served from both caches, counted, and really resumed', async () => {
    const clientVerdicts = new VerdictCache();
    const dispatcher = createMtlsDispatcher({
      source: clientSource,
      authorize: authorizeId(SERVER_ID),
      verdicts: clientVerdicts,
    });
    const before = serverVerdicts.stats();
    resumedOnServer.length = 0;
    try {
      for (let i = 0; i < 4; i++) {
        const r = await get(dispatcher, '/whoami');
        assert.equal(r.status, 200);
        assert.equal((JSON.parse(r.body) as { caller: string }).caller, CLIENT_ID);
      }
    } finally {
      await dispatcher.close();
    }
    assert.equal(resumedOnServer.length, 4, 'one connection per request');
    assert.ok(resumedOnServer.slice(1).some(Boolean), `later connections resumed: ${resumedOnServer.join(',')}`);
    const server = serverVerdicts.stats();
    assert.ok(server.hits - before.hits >= 3, `server hits ${server.hits - before.hits}`);
    assert.ok(server.misses - before.misses <= 1, `server misses ${server.misses - before.misses}`);
    const client = clientVerdicts.stats();
    assert.ok(client.hits >= 3, `client hits ${client.hits}`);
    assert.equal(client.misses, 1);
  });

  test('server role: the allow rule still runs on a cached verdict (403 on a route for another ID)', async () => {
    const dispatcher = createMtlsDispatcher({ source: clientSource, authorize: authorizeId(SERVER_ID) });
    const before = serverVerdicts.stats().hits;
    try {
      assert.equal((await get(dispatcher, '/whoami')).status, 200, 'positive control');
      const refused = await get(dispatcher, '/inventory-only');
      assert.equal(refused.status, 403);
      assert.equal((JSON.parse(refused.body) as { caller: string }).caller, CLIENT_ID);
    } finally {
      await dispatcher.close();
    }
    assert.ok(serverVerdicts.stats().hits - before >= 2, 'both requests were verified from the cache');
  });

  test('client role: a resumed session served from the cache is still refused by another authorizer', async () => {
    const verdicts = new VerdictCache();
    let session: ResumableSession | undefined;
    const first = await connectMtls({
      host: '127.0.0.1',
      port,
      source: clientSource,
      authorize: authorizeId(SERVER_ID),
      verdicts,
      onSession: (s) => (session = s),
    });
    first.socket.write('GET /whoami HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n');
    await new Promise((resolve) => first.socket.once('end', resolve).resume());
    assert.ok(session, 'the server issued a session ticket');
    const ok = await connectMtls({
      host: '127.0.0.1',
      port,
      source: clientSource,
      authorize: authorizeId(SERVER_ID),
      verdicts,
      session,
    });
    assert.equal(ok.socket.isSessionReused(), true, 'positive control: resumed and accepted');
    ok.socket.destroy();
    await assert.rejects(
      connectMtls({
        host: '127.0.0.1',
        port,
        source: clientSource,
        authorize: authorizeId('spiffe://example.org/inventory'),
        verdicts,
        session,
      }),
      (e: unknown) => isAuthError(e, 'AUTH_ERR_PEER_UNAUTHORIZED'),
    );
    assert.deepEqual([verdicts.stats().misses, verdicts.stats().hits], [1, 2], 'the refusal came from authorization');
  });

  test('server role: a bundle change is seen by the next connection (401), and trust restored is served again', async () => {
    const other = await createTestTrustDomain('example.org');
    const dispatcher = createMtlsDispatcher({ source: clientSource, authorize: authorizeId(SERVER_ID) });
    try {
      assert.equal((await get(dispatcher, '/whoami')).status, 200, 'positive control');
      serverSource.set(serverSource.getX509Svid(), [other.bundle]);
      const refused = await get(dispatcher, '/whoami');
      assert.equal(refused.status, 401);
      assert.equal((JSON.parse(refused.body) as { code: string }).code, 'AUTH_ERR_PEER_UNVERIFIED');
      serverSource.set(serverSource.getX509Svid(), [td.bundle]);
      const misses = serverVerdicts.stats().misses;
      assert.equal((await get(dispatcher, '/whoami')).status, 200);
      assert.equal(serverVerdicts.stats().misses, misses + 1, 'verified in full against the new bundles');
    } finally {
      serverSource.set(serverSource.getX509Svid(), [td.bundle]);
      await dispatcher.close();
    }
  });

  test('regression: a keep-alive client behind an intermediate CA is re-verified with its whole chain after a bundle change', async () => {
    // Node links a peer's chain only on the first getPeerX509Certificate();
    // the verifier keeps it per socket, so re-verification still has the intermediate.
    const intermediate = await td.ca.issueIntermediate({ subject: 'CN=order intermediate' });
    const issued = await intermediate.issueSvid(CLIENT_ID);
    const nested = MemorySource.create(X509Svid.fromDer(issued.chainDer, issued.keyDer), [td.bundle]);
    const dispatcher = createMtlsDispatcher({ source: nested, authorize: authorizeId(SERVER_ID), connections: 1 });
    resumedOnServer.length = 0;
    try {
      const keepAlive = async (): Promise<number> =>
        (await request(`https://127.0.0.1:${port}/whoami`, { dispatcher })).statusCode;
      assert.equal(await keepAlive(), 200, 'positive control: the chain through the intermediate verifies');
      const misses = serverVerdicts.stats().misses;
      serverSource.set(serverSource.getX509Svid(), [td.bundle]); // same CA, a new bundle generation
      assert.equal(await keepAlive(), 200, 'the same connection, re-verified against the new generation');
      assert.equal(serverVerdicts.stats().misses, misses + 1, 'verified in full again, with the intermediate');
      assert.equal(resumedOnServer.length, 1, 'both requests on one connection');
    } finally {
      await dispatcher.close();
    }
  });
});
