// SPIFFE Federation through bundle endpoints (src/federation): the client
// against in-process endpoints with generated PKI, each refusal after a
// positive control on the same client, so "last good bundle kept" is seen.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { connect, type TLSSocket } from 'node:tls';
import { after, before, describe, test } from 'node:test';
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { MemorySource, createTestTrustDomain, type TestTrustDomain } from '@shop/auth-testing';
import { marshalSpiffeBundleJson } from '../src/bundle/spiffe-bundle.ts';
import { JwtBundle } from '../src/bundle/jwt-bundle.ts';
import { X509Bundle } from '../src/bundle/x509-bundle.ts';
import { isAuthError, type AuthErrorCode } from '../src/errors.ts';
import { BundleEndpointClient, type BundleEndpointClientOptions } from '../src/federation/bundle-endpoint-client.ts';
import { BundleEndpointServer } from '../src/federation/bundle-endpoint-server.ts';
import { FederatedSource } from '../src/federation/federated-source.ts';
import { X509Svid } from '../src/svid/x509-svid.ts';
import { verifyX509Svid } from '../src/verify/x509-verify.ts';

const PARTNER = 'partner.example';
const ENDPOINT_ID = `spiffe://${PARTNER}/bundle-endpoint`;

/** partnerDomain makes a trust domain whose CA names it in its URI SAN, as SPIRE's CA does. */
const domain = (name: string): Promise<TestTrustDomain> => createTestTrustDomain(name, { uris: [`spiffe://${name}`] });

function bundleJson(bundle: X509Bundle, extra: { refreshHintSeconds?: number; sequence?: number } = {}): string {
  return marshalSpiffeBundleJson({ x509Bundle: bundle, jwtBundle: new JwtBundle(bundle.trustDomain, []), ...extra });
}

interface Answer {
  status?: number;
  body: string;
  location?: string;
}

/** FakeEndpoint is an HTTPS server a test steers: what certificate it shows and what it answers. */
class FakeEndpoint {
  readonly server: Server;
  /** answer decides the response to a request for `url` (path and query). */
  answer: (url: string) => Answer = () => ({ body: '' });
  /** hits are the requests received: when (ms) and at which path and query, so each test counts only its own client's. */
  readonly hits: { at: number; url: string }[] = [];

  /** hitsAt lists the times of the requests made to `url`. */
  hitsAt(url: string): number[] {
    const want = new URL(url);
    return this.hits.filter((h) => h.url === want.pathname + want.search).map((h) => h.at);
  }

  constructor(tls: { cert: string; key: string }) {
    this.server = createServer({ ...tls }, (req, res) => {
      this.hits.push({ at: Date.now(), url: req.url ?? '' });
      const a = this.answer(req.url ?? '');
      res.writeHead(a.status ?? 200, {
        'content-type': 'application/json',
        ...(a.location === undefined ? {} : { location: a.location }),
      });
      res.end(a.body);
    });
  }

  static async start(tls: { cert: string; key: string }): Promise<FakeEndpoint> {
    const e = new FakeEndpoint(tls);
    e.server.listen(0, '127.0.0.1');
    await once(e.server, 'listening');
    return e;
  }

  present(svid: X509Svid): void {
    this.server.setSecureContext({ key: svid.privateKeyPem(), cert: svid.certChainPem() });
  }

  get url(): string {
    return `https://127.0.0.1:${String((this.server.address() as AddressInfo).port)}/bundle`;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    this.server.close();
    await once(this.server, 'close');
  }
}

const tlsOf = (svid: X509Svid): { cert: string; key: string } => ({
  cert: svid.certChainPem(),
  key: svid.privateKeyPem(),
});

async function until(ok: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > deadline) assert.fail('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function refused(p: Promise<unknown>, code: AuthErrorCode, message?: RegExp): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(isAuthError(err), `not an AuthError: ${String(err)}`);
    assert.equal(err.code, code, err.message);
    if (message) assert.match(err.message, message);
    return true;
  });
}

describe('BundleEndpointClient, https_spiffe', () => {
  let partner: TestTrustDomain;
  let endpointSvid: X509Svid;
  let fake: FakeEndpoint;
  const clients: BundleEndpointClient[] = [];
  before(async () => {
    partner = await domain(PARTNER);
    endpointSvid = await partner.svid('/bundle-endpoint');
    fake = await FakeEndpoint.start(tlsOf(endpointSvid));
  });
  after(async () => {
    for (const c of clients) await c.close();
    await fake.close();
  });
  function client(o: Partial<BundleEndpointClientOptions> = {}): BundleEndpointClient {
    const c = new BundleEndpointClient({
      trustDomain: PARTNER,
      url: fake.url,
      profile: { type: 'https_spiffe', endpointSpiffeId: ENDPOINT_ID, bundle: partner.bundle },
      ...o,
    });
    clients.push(c);
    return c;
  }

  test('fetches the bundle, with its refresh hint and sequence', async () => {
    fake.present(endpointSvid);
    fake.answer = () => ({ body: bundleJson(partner.bundle, { refreshHintSeconds: 42, sequence: 7 }) });
    const c = client();
    const b = await c.fetchNow();
    assert.ok(b.x509Bundle.equals(partner.bundle));
    assert.equal(b.refreshHintSeconds, 42);
    assert.equal(b.sequence, 7);
    assert.equal(c.refreshIntervalMs(), 42_000);
    assert.ok(c.getX509BundleForTrustDomain(partner.bundle.trustDomain).equals(partner.bundle));
  });

  const refusals: { name: string; code: AuthErrorCode; message: RegExp; arrange: () => Promise<void> }[] = [
    {
      name: 'an endpoint presenting another SPIFFE ID of the same trust domain',
      code: 'AUTH_ERR_FEDERATION_ENDPOINT_ID_MISMATCH',
      message:
        /presented the X\.509-SVID of spiffe:\/\/partner\.example\/impostor, not spiffe:\/\/partner\.example\/bundle-endpoint/,
      arrange: async () => {
        fake.present(await partner.svid('/impostor'));
      },
    },
    {
      name: 'an endpoint whose SVID chains to a CA outside the bundle',
      code: 'AUTH_ERR_FEDERATION_ENDPOINT_UNVERIFIED',
      message: /presented no valid X\.509-SVID of partner\.example/,
      arrange: async () => {
        fake.present(await (await domain(PARTNER)).svid('/bundle-endpoint'));
      },
    },
    {
      name: 'a bundle of another trust domain',
      code: 'AUTH_ERR_FEDERATION_TRUST_DOMAIN_MISMATCH',
      message: /names spiffe:\/\/evil\.example, not trust domain partner\.example/,
      arrange: async () => {
        const evil = await domain('evil.example');
        fake.answer = () => ({ body: bundleJson(new X509Bundle(PARTNER, [evil.ca.certDer])) });
      },
    },
    {
      name: 'malformed JSON',
      code: 'AUTH_ERR_BUNDLE_INVALID',
      message: /not valid JSON/,
      arrange: () => {
        fake.answer = () => ({ body: '{"keys": [' });
        return Promise.resolve();
      },
    },
    {
      name: 'an older spiffe_sequence than the bundle in use',
      code: 'AUTH_ERR_FEDERATION_BUNDLE_STALE',
      message: /spiffe_sequence 3, older than 7/,
      arrange: () => {
        fake.answer = () => ({ body: bundleJson(partner.bundle, { sequence: 3 }) });
        return Promise.resolve();
      },
    },
    {
      name: 'an HTTP error',
      code: 'AUTH_ERR_FEDERATION_FETCH_FAILED',
      message: /answered HTTP 503/,
      arrange: () => {
        fake.answer = () => ({ status: 503, body: 'down' });
        return Promise.resolve();
      },
    },
  ];
  for (const r of refusals) {
    test(`refuses ${r.name} (${r.code}) and keeps the last good bundle`, async () => {
      // Positive control on the same client: the genuine endpoint and bundle are accepted.
      fake.present(endpointSvid);
      fake.answer = () => ({ body: bundleJson(partner.bundle, { sequence: 7 }) });
      const c = client();
      const errors: string[] = [];
      c.on('fetchError', (e) => errors.push(e.code));
      const good = await c.fetchNow();

      await r.arrange();
      await refused(c.fetchNow(), r.code, r.message);
      assert.equal(c.bundle, good, 'the last good bundle stays in use');
      assert.equal(c.lastError?.code, r.code);
      assert.deepEqual(errors, [r.code]);
    });
  }

  test('a self-serving endpoint is verified with the bootstrap bundle first, then with the latest fetched one (partner CA rotation)', async () => {
    const next = await createTestTrustDomain(PARTNER, { uris: [`spiffe://${PARTNER}`] });
    const both = new X509Bundle(PARTNER, [partner.ca.certDer, next.ca.certDer]);
    fake.present(endpointSvid);
    fake.answer = () => ({ body: bundleJson(both) });
    const c = client();
    assert.ok((await c.fetchNow()).x509Bundle.equals(both), 'the new CA is published before use (§4.1)');

    // The partner now signs with the new CA only and drops the old one.
    fake.present(await next.svid('/bundle-endpoint'));
    fake.answer = () => ({ body: bundleJson(next.bundle) });
    assert.ok((await c.fetchNow()).x509Bundle.equals(next.bundle));
    assert.ok((await c.fetchNow()).x509Bundle.equals(next.bundle), 'and the next connection verifies with it');

    // Control: a client that only ever had the bootstrap bundle cannot verify the rotated endpoint.
    await refused(client().fetchNow(), 'AUTH_ERR_FEDERATION_ENDPOINT_UNVERIFIED');
  });

  test('follows a temporary redirect to another https_spiffe endpoint with the same ID; never to http', async () => {
    fake.present(endpointSvid);
    const target = await FakeEndpoint.start(tlsOf(endpointSvid));
    try {
      target.answer = () => ({ body: bundleJson(partner.bundle, { refreshHintSeconds: 9 }) });
      fake.answer = () => ({ status: 307, body: '', location: target.url });
      const c = client();
      assert.equal((await c.fetchNow()).refreshHintSeconds, 9);
      // The redirect target must authenticate as the same endpoint ID.
      target.present(await partner.svid('/cdn'));
      await refused(c.fetchNow(), 'AUTH_ERR_FEDERATION_ENDPOINT_ID_MISMATCH');
      fake.answer = () => ({ status: 302, body: '', location: 'http://127.0.0.1:1/bundle' });
      await refused(c.fetchNow(), 'AUTH_ERR_CONFIG_INVALID', /must have the scheme "https"/);
    } finally {
      await target.close();
    }
  });

  test('polls on the refresh hint', async () => {
    fake.present(endpointSvid);
    fake.answer = () => ({ body: bundleJson(partner.bundle, { refreshHintSeconds: 1 }) });
    const url = `${fake.url}?test=polls`;
    const c = client({ url });
    await c.start();
    await new Promise((r) => setTimeout(r, 3_200));
    await c.close();
    const hits = fake.hitsAt(url);
    // A timer never fires early; on a loaded machine it may fire late, hence the loose upper bounds.
    assert.ok(hits.length >= 2 && hits.length <= 4, `fetches: ${String(hits.length)}`);
    for (let i = 1; i < hits.length; i++) {
      const gap = (hits[i] ?? 0) - (hits[i - 1] ?? 0);
      assert.ok(gap >= 950 && gap < 2_500, `gap ${String(gap)} ms for a 1 s hint`);
    }
  });

  test('backs off after failures (growing gaps) and recovers', async () => {
    fake.present(endpointSvid);
    let failures = 4;
    fake.answer = (u) =>
      u.endsWith('?test=backoff') && failures-- > 0
        ? { status: 500, body: 'no' }
        : { body: bundleJson(partner.bundle, { refreshHintSeconds: 60 }) };
    const url = `${fake.url}?test=backoff`;
    const c = client({ url, backoff: { initialMs: 100, factor: 2, jitter: 'equal', random: () => 1 } });
    const updated = once(c, 'updated');
    await c.start();
    assert.equal(c.lastError?.code, 'AUTH_ERR_FEDERATION_FETCH_FAILED');
    assert.equal(c.bundle, undefined);
    await updated;
    await c.close();
    const hits = fake.hitsAt(url);
    assert.equal(hits.length, 5);
    const gaps = hits.slice(1).map((t, i) => t - (hits[i] ?? 0));
    // 100, 200, 400, 800 ms (random() = 1 takes the whole capped delay); timers fire late, never early.
    for (const [i, want] of [100, 200, 400, 800].entries()) {
      const gap = gaps[i] ?? 0;
      assert.ok(gap >= want - 5 && gap < want + 1_500, `gap ${String(i)}: ${String(gap)} ms, want ~${String(want)}`);
    }
    assert.equal(c.lastError, undefined);
    assert.ok(c.getX509BundleForTrustDomain(partner.bundle.trustDomain).equals(partner.bundle));
  });

  test('a retry never waits longer than the polling interval, whatever the backoff says', async () => {
    fake.present(endpointSvid);
    fake.answer = () => ({ status: 500, body: 'no' });
    const url = `${fake.url}?test=cap`;
    const c = client({ url, minRefreshSeconds: 1, maxRefreshSeconds: 1, backoff: { initialMs: 60_000 } });
    await c.start();
    await until(() => fake.hitsAt(url).length >= 2, 10_000);
    await c.close();
    const [first = 0, second = 0] = fake.hitsAt(url);
    assert.ok(second - first >= 950 && second - first < 5_000, `retry after ${String(second - first)} ms, not 60 s`);
  });

  test('the polling interval is the hint bounded by floor and ceiling, 300 s by default', () => {
    const c = client({ minRefreshSeconds: 5, maxRefreshSeconds: 600 });
    const b = (hint?: number): Parameters<BundleEndpointClient['refreshIntervalMs']>[0] => ({
      trustDomain: partner.bundle.trustDomain,
      x509Bundle: partner.bundle,
      jwtBundle: new JwtBundle(PARTNER, []),
      warnings: [],
      ...(hint === undefined ? {} : { refreshHintSeconds: hint }),
    });
    assert.equal(c.refreshIntervalMs(b(60)), 60_000);
    assert.equal(c.refreshIntervalMs(b()), 300_000);
    assert.equal(c.refreshIntervalMs(b(0)), 5_000);
    assert.equal(c.refreshIntervalMs(b(86_400)), 600_000);
  });

  test('configuration: https only, no user info, an endpoint ID and a way to verify it', () => {
    const bad = (o: Partial<BundleEndpointClientOptions>, message: RegExp): void => {
      assert.throws(
        () => client(o),
        (e: unknown) => isAuthError(e, 'AUTH_ERR_CONFIG_INVALID') && message.test(e.message),
      );
    };
    assert.ok(client().describe().includes('https_spiffe as spiffe://partner.example/bundle-endpoint'));
    bad({ url: 'http://127.0.0.1/bundle' }, /must have the scheme "https"/);
    bad({ url: 'https://user:pw@127.0.0.1/bundle' }, /must not include user info/);
    bad({ profile: { type: 'https_spiffe', endpointSpiffeId: ENDPOINT_ID } }, /needs the bundle of partner\.example/);
    bad({ profile: { type: 'ftp' } as never }, /must be "https_web" or "https_spiffe"/);
  });
});

describe('BundleEndpointClient, https_web', () => {
  let webCa: TestTrustDomain;
  let partner: TestTrustDomain;
  let fake: FakeEndpoint;
  before(async () => {
    webCa = await createTestTrustDomain('web-pki.invalid');
    partner = await domain(PARTNER);
    const ip = new x509.SubjectAlternativeNameExtension([{ type: 'ip', value: '127.0.0.1' }]);
    const cert = await webCa.ca.issue({ subject: 'CN=bundles.partner.example', extraExtensions: [ip] });
    fake = await FakeEndpoint.start({ cert: cert.certPem, key: cert.keyPem });
    fake.answer = () => ({ body: bundleJson(partner.bundle, { refreshHintSeconds: 30 }) });
  });
  after(() => fake.close());

  test('fetches over Web PKI from a trusted CA naming the host; refuses untrusted CAs and wrong host names', async () => {
    const c = new BundleEndpointClient({
      trustDomain: PARTNER,
      url: fake.url,
      profile: { type: 'https_web', ca: webCa.ca.certPem },
    });
    assert.ok((await c.fetchNow()).x509Bundle.equals(partner.bundle));

    // Node's default roots do not hold the test CA.
    const untrusted = new BundleEndpointClient({ trustDomain: PARTNER, url: fake.url, profile: { type: 'https_web' } });
    await refused(untrusted.fetchNow(), 'AUTH_ERR_FEDERATION_ENDPOINT_UNVERIFIED', /does not verify with Web PKI/);
    // The certificate names 127.0.0.1, not localhost (RFC 6125 host name check).
    const port = new URL(fake.url).port;
    const wrongHost = new BundleEndpointClient({
      trustDomain: PARTNER,
      url: `https://localhost:${port}/bundle`,
      profile: { type: 'https_web', ca: webCa.ca.certPem },
    });
    await refused(wrongHost.fetchNow(), 'AUTH_ERR_FEDERATION_ENDPOINT_UNVERIFIED');
    assert.ok(c.bundle, 'the first client kept its bundle');
  });
});

describe('BundleEndpointServer', () => {
  let ours: TestTrustDomain;
  let svid: X509Svid;
  let source: MemorySource;
  let server: BundleEndpointServer;
  before(async () => {
    ours = await domain('example.org');
    svid = await ours.svid('/bundle-endpoint');
    source = MemorySource.create(svid, [ours.bundle]);
    server = new BundleEndpointServer({
      trustDomain: 'example.org',
      bundleSource: source,
      profile: { type: 'https_spiffe', svidSource: source, events: source },
      refreshHintSeconds: 15,
      path: '/bundle',
    });
    await server.listen();
  });
  after(() => server.close());

  const client = (): BundleEndpointClient =>
    new BundleEndpointClient({
      trustDomain: 'example.org',
      url: server.url,
      profile: { type: 'https_spiffe', endpointSpiffeId: 'spiffe://example.org/bundle-endpoint', bundle: ours.bundle },
    });

  test('serves our bundle as SPIFFE bundle JSON with the refresh hint, over https_spiffe, to a client without a certificate', async () => {
    const b = await client().fetchNow();
    assert.ok(b.x509Bundle.equals(ours.bundle));
    assert.equal(b.refreshHintSeconds, 15);
    assert.equal(b.sequence, 1);
  });

  test('answers 404 off its path and 405 to other methods; the content type is application/json', async () => {
    const raw = async (method: string, path: string): Promise<{ status: number; type: string | undefined }> => {
      const socket: TLSSocket = connect({ host: '127.0.0.1', port: server.port, rejectUnauthorized: false });
      await once(socket, 'secureConnect');
      socket.end(`${method} ${path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n`);
      let text = '';
      for await (const chunk of socket) text += String(chunk);
      const status = Number(/^HTTP\/1\.1 (\d+)/.exec(text)?.[1]);
      return { status, type: /content-type: ([^\r]+)/i.exec(text)?.[1] };
    };
    assert.deepEqual(await raw('GET', '/bundle'), { status: 200, type: 'application/json; charset=utf-8' });
    assert.equal((await raw('GET', '/other')).status, 404);
    assert.equal((await raw('POST', '/bundle')).status, 405);
  });

  test('presents a rotated SVID from the next handshake and serves a changed bundle with the next sequence', async () => {
    const next = await createTestTrustDomain('example.org', { uris: ['spiffe://example.org'] });
    const both = new X509Bundle('example.org', [ours.ca.certDer, next.ca.certDer]);
    const c = client();
    await c.fetchNow();
    // The new CA is published first (§4.1), then the SVID it signs is put in use.
    source.set(svid, [both]);
    const b = await c.fetchNow();
    assert.ok(b.x509Bundle.equals(both));
    assert.equal(b.sequence, 2);
    source.set(await next.svid('/bundle-endpoint'), [both]);
    assert.equal((await c.fetchNow()).sequence, 2, 'same bundle, same sequence');
    const socket = connect({ host: '127.0.0.1', port: server.port, rejectUnauthorized: false });
    await once(socket, 'secureConnect');
    const presented = socket.getPeerX509Certificate();
    socket.destroy();
    const nextRoot = next.bundle.authorities[0];
    assert.ok(presented && nextRoot && presented.verify(nextRoot.publicKey), 'the new SVID is presented');
  });
});

describe('FederatedSource', () => {
  test('adds the federated bundle per trust domain: a partner peer verifies against its own bundle only, and a partner rotation arrives', async () => {
    const ours = await domain('example.org');
    const partner = await domain(PARTNER);
    const partnerSource = MemorySource.create(await partner.svid('/bundle-endpoint'), [partner.bundle]);
    const endpoint = new BundleEndpointServer({
      trustDomain: PARTNER,
      bundleSource: partnerSource,
      profile: { type: 'https_spiffe', svidSource: partnerSource, events: partnerSource },
      refreshHintSeconds: 1,
    });
    await endpoint.listen();
    const inner = MemorySource.create(await ours.svid('/inventory'), [ours.bundle]);
    const source = await FederatedSource.create({
      inner,
      federatesWith: [
        {
          trustDomain: PARTNER,
          url: endpoint.url,
          profile: { type: 'https_spiffe', endpointSpiffeId: ENDPOINT_ID, bundle: partner.bundle },
        },
      ],
    });
    try {
      assert.deepEqual(
        source
          .getX509Bundles()
          .trustDomains()
          .map((t) => t.name),
        ['example.org', PARTNER],
      );
      const reader = await partner.svid('/reader');
      const verify = (peer: X509Svid): string =>
        verifyX509Svid(peer.chainDer(), source, { peerRole: 'client' }).id.toString();
      assert.equal(verify(reader), `spiffe://${PARTNER}/reader`);
      // The same partner ID signed by our own CA is refused: bundles are never pooled.
      const forged = await ours.ca.issueSvid(`spiffe://${PARTNER}/reader`);
      assert.throws(
        () => verify(X509Svid.fromDer(forged.chainDer, forged.keyDer)),
        (e: unknown) => isAuthError(e, 'AUTH_ERR_PEER_UNVERIFIED'),
      );

      // The partner rotates: its endpoint publishes the new CA, and the source trusts it with nobody acting.
      const next = await domain(PARTNER);
      const rotatedReader = await next.svid('/reader');
      assert.throws(
        () => verify(rotatedReader),
        (e: unknown) => isAuthError(e, 'AUTH_ERR_PEER_UNVERIFIED'),
      );
      const rotated = once(source, 'rotated');
      partnerSource.set(await partner.svid('/bundle-endpoint'), [
        new X509Bundle(PARTNER, [partner.ca.certDer, next.ca.certDer]),
      ]);
      await rotated;
      assert.equal(verify(rotatedReader), `spiffe://${PARTNER}/reader`);
    } finally {
      await source.close();
      await endpoint.close();
    }
  });
});
