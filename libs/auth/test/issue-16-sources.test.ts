// Issue 16: what broke, from a source's side. A bundle with one key entry the
// standards say to ignore failed the whole update, so a new valid key never
// arrived; an expired or foreign X.509-SVID from the agent went straight into
// use; after PermissionDenied the SVID kept being presented. Each case has its
// positive control first.
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { connect, createServer, type Server } from 'node:tls';
import { after, before, describe, test, type TestContext } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { SignJWT } from 'jose';
import type { BundleWarningEvent } from '../src/bundle/bundle-warning.ts';
import type { AuthError } from '../src/errors.ts';
import { FileIdentitySource } from '../src/source/file-source.ts';
import type { X509Svid } from '../src/svid/x509-svid.ts';
import { keepServerIdentityCurrent, mtlsServerOptions } from '../src/tls/server-options.ts';
import { WorkloadJwtSource } from '../src/workloadapi/jwt-source.ts';
import { WorkloadX509Source } from '../src/workloadapi/x509-source.ts';
import { FakeWorkloadApi, createTestTrustDomain, makeTempDir, type TestTrustDomain } from '@shop/auth-testing';

const FAST = { initialMs: 20, maxMs: 80 };
const AUD = ['inventory'];

let td: TestTrustDomain;
let foreign: TestTrustDomain;
let good: X509Svid;
let good2: X509Svid;

before(async () => {
  // `foreign` has the same trust domain name but another CA: its SVIDs do not chain to our bundle.
  [td, foreign] = await Promise.all([createTestTrustDomain('example.org'), createTestTrustDomain('example.org')]);
  [good, good2] = await Promise.all([td.svid('/a'), td.svid('/a')]);
});

async function startFake(t: TestContext): Promise<FakeWorkloadApi> {
  const fake = await FakeWorkloadApi.start();
  t.after(() => fake.close());
  return fake;
}

async function until(predicate: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

describe('issue 16: an X.509-SVID from the Workload API is checked before use', () => {
  async function source(t: TestContext, fake: FakeWorkloadApi): Promise<WorkloadX509Source> {
    const s = await WorkloadX509Source.create({ address: fake.address, backoff: FAST, timeoutMs: 3000 });
    t.after(() => s.close());
    return s;
  }

  test('positive control: a valid SVID that chains to its bundle is put in use', async (t) => {
    const fake = await startFake(t);
    fake.setX509Context({ svids: [{ svid: good }], bundle: td.bundle });
    const s = await source(t, fake);
    fake.setX509Context({ svids: [{ svid: good2 }], bundle: td.bundle });
    await until(() => s.getX509Svid().leaf.serialNumber === good2.leaf.serialNumber, 'rotation');
  });

  const refused: [string, () => Promise<X509Svid>, string, RegExp][] = [
    [
      'expired',
      () => td.svid('/a', { notBefore: new Date(Date.now() - 7_200_000), ttlSeconds: 3600 }),
      'AUTH_ERR_SVID_EXPIRED',
      /is valid only from .* refused, the last good X\.509-SVID stays in use/,
    ],
    [
      'not yet valid',
      () => td.svid('/a', { notBefore: new Date(Date.now() + 3_600_000), ttlSeconds: 3600 }),
      'AUTH_ERR_SVID_EXPIRED',
      /is valid only from/,
    ],
    [
      "signed by a CA that is not in our trust domain's bundle",
      () => foreign.svid('/a'),
      'AUTH_ERR_SVID_UNTRUSTED',
      /does not verify against the bundle of its own trust domain "example\.org"/,
    ],
  ];
  for (const [name, make, code, message] of refused) {
    test(`an SVID ${name} is refused with a loadError and the last good one stays`, async (t) => {
      const fake = await startFake(t);
      fake.setX509Context({ svids: [{ svid: good }], bundle: td.bundle });
      const s = await source(t, fake);
      const errors: AuthError[] = [];
      s.on('loadError', (e) => errors.push(e));
      fake.setX509Context({ svids: [{ svid: await make() }], bundle: td.bundle });
      await until(() => errors.length >= 1, 'a loadError');
      assert.equal(errors[0]?.code, code);
      assert.match(errors[0].message, message);
      assert.equal(s.getX509Svid().leaf.serialNumber, good.leaf.serialNumber);
      assert.equal(s.isReady, true);
      // And the next good one is taken.
      fake.setX509Context({ svids: [{ svid: good2 }], bundle: td.bundle });
      await until(() => s.getX509Svid().leaf.serialNumber === good2.leaf.serialNumber, 'the next good SVID');
      assert.equal(s.lastError, undefined);
    });
  }

  test('an SVID refused at start-up leaves the source not ready, and lastError says why', async (t) => {
    const fake = await startFake(t);
    fake.setX509Context({ svids: [{ svid: await foreign.svid('/a') }], bundle: td.bundle });
    const s = WorkloadX509Source.open({ address: fake.address, backoff: FAST, timeoutMs: Number.POSITIVE_INFINITY });
    t.after(() => s.close());
    await until(() => s.lastError !== undefined, 'a loadError');
    assert.equal(s.isReady, false);
    assert.equal(s.lastError?.code, 'AUTH_ERR_SVID_UNTRUSTED');
  });
});

describe('issue 16: the file source makes the same check', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  before(async () => {
    ({ dir, cleanup } = await makeTempDir());
  });
  after(() => cleanup());

  test('a certificate that chains to the CA file loads (positive control); one that does not is refused', async () => {
    const ours = await td.issue('/a');
    const theirs = await foreign.issue('/a');
    const write = async (name: string, certPem: string, keyPem: string) => {
      const p = {
        certFile: join(dir, `${name}.crt`),
        keyFile: join(dir, `${name}.key`),
        caFile: join(dir, `${name}.ca`),
      };
      await writeFile(p.certFile, certPem);
      await writeFile(p.keyFile, keyPem);
      await writeFile(p.caFile, td.ca.certPem);
      return p;
    };
    const ok = await FileIdentitySource.create(await write('ok', ours.certPem, ours.keyPem));
    await ok.close();
    await assert.rejects(
      FileIdentitySource.create(await write('bad', theirs.certPem, theirs.keyPem)),
      (e: AuthError) => {
        assert.equal(e.code, 'AUTH_ERR_SVID_UNTRUSTED');
        assert.match(e.message, /certificate file .*bad\.crt/);
        return true;
      },
    );
  });

  test('a TLS_CA_FILE in SPIFFE bundle JSON with one bad key: the good key is used and bundleWarnings names the bad one', async () => {
    const ours = await td.issue('/a');
    const p = { certFile: join(dir, 'j.crt'), keyFile: join(dir, 'j.key'), caFile: join(dir, 'j.json') };
    await writeFile(p.certFile, ours.certPem);
    await writeFile(p.keyFile, ours.keyPem);
    const goodKey = { use: 'x509-svid', kty: 'EC', x5c: [td.ca.certDer.toString('base64')] };
    await writeFile(p.caFile, JSON.stringify({ keys: [{ use: 'x509-svid', kty: 'PQC', x5c: ['AAAA'] }, goodKey] }));
    const s = await FileIdentitySource.create({ ...p, reloadIntervalMs: 20 });
    try {
      assert.equal(s.getX509Bundles().get('example.org')?.authorities.length, 1);
      assert.equal(s.bundleWarnings.length, 1);
      assert.equal(s.bundleWarnings[0]?.index, 0);
      assert.match(s.bundleWarnings[0].message, /j\.json.*keys\[0\].*unknown "kty"/);
      // The same file without the bad key: same bundle, no warning (and a later warning is an event).
      const events: BundleWarningEvent[] = [];
      s.on('bundleWarning', (e) => events.push(e));
      await writeFile(p.caFile, JSON.stringify({ keys: [goodKey] }));
      await until(() => s.bundleWarnings.length === 0, 'the reload');
      assert.equal(s.getX509Bundles().get('example.org')?.authorities.length, 1);
      await writeFile(p.caFile, JSON.stringify({ keys: [goodKey, { use: 'nope', kty: 'EC' }] }));
      await until(() => events.length === 1, 'a bundleWarning event');
      assert.equal(events[0]?.warnings[0]?.index, 1);
    } finally {
      await s.close();
    }
  });
});

describe('issue 16: a JWT bundle from the Workload API with one bad key keeps its good keys', () => {
  test('FetchJWTBundles: the good key validates, a bundleWarning names the bad one once, the update is not dropped', async (t) => {
    const fake = await startFake(t);
    const key = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const goodJwk = { use: 'jwt-svid', kid: 'k1', ...key.publicKey.export({ format: 'jwk' }) };
    const jwks = (keys: unknown[]) => [{ trustDomain: 'example.org', jwks: JSON.stringify({ keys }) }];
    fake.setJwtBundles(jwks([goodJwk]));
    const s = await WorkloadJwtSource.create({ address: fake.address, backoff: FAST, timeoutMs: 3000 });
    t.after(() => s.close());
    const now = Math.floor(Date.now() / 1000);
    const token = await new SignJWT({ sub: 'spiffe://example.org/a', aud: AUD, exp: now + 300 })
      .setProtectedHeader({ alg: 'ES256', kid: 'k1', typ: 'JWT' })
      .sign(key.privateKey);
    assert.equal((await s.validate(token, AUD)).id.toString(), 'spiffe://example.org/a'); // positive control
    const warnings: BundleWarningEvent[] = [];
    const errors: AuthError[] = [];
    s.on('bundleWarning', (e) => warnings.push(e));
    s.on('loadError', (e) => errors.push(e));
    const withBad = jwks([{ use: 'jwt-svid', kty: 'EC', crv: 'P-256', x: 'AA', y: 'AA' }, goodJwk]);
    fake.setJwtBundles(withBad);
    await until(() => warnings.length === 1, 'a bundleWarning');
    fake.setJwtBundles(withBad); // the same bundle again: not reported twice
    await sleep(100);
    assert.equal(warnings.length, 1);
    assert.deepEqual(errors, []);
    assert.match(warnings[0]!.warnings[0]!.message, /keys\[0\] \(use "jwt-svid"\) has no "kid"/);
    assert.equal((await s.validate(token, AUD)).id.toString(), 'spiffe://example.org/a');
    assert.equal(s.bundleWarnings.length, 1);
  });

  test('PermissionDenied on FetchJWTBundles drops the bundles (§6.2.2) unless keepBundlesOnPermissionDenied', async (t) => {
    for (const keep of [true, false]) {
      const fake = await startFake(t);
      fake.setJwtBundles([{ trustDomain: 'example.org', jwks: '{"keys":[]}' }]);
      const s = await WorkloadJwtSource.create({
        address: fake.address,
        backoff: FAST,
        timeoutMs: 3000,
        keepBundlesOnPermissionDenied: keep,
      });
      t.after(() => s.close());
      const errors: AuthError[] = [];
      s.on('loadError', (e) => errors.push(e));
      fake.setError('FetchJWTBundles', grpc.status.PERMISSION_DENIED);
      await until(() => errors.length >= 1, 'a loadError');
      assert.equal(s.isReady, keep);
      if (keep) assert.ok(s.getJwtBundles());
      else assert.throws(() => s.getJwtBundles(), /dropped, as the Workload API standard asks/);
    }
  });
});

describe('issue 16: a withdrawn SVID is no longer presented by a server', () => {
  test('after PermissionDenied new TLS handshakes fail; after the next SVID they succeed again', async (t) => {
    const fake = await startFake(t);
    fake.setX509Context({ svids: [{ svid: good }], bundle: td.bundle });
    const s = await WorkloadX509Source.create({ address: fake.address, backoff: FAST, timeoutMs: 3000 });
    t.after(() => s.close());
    const server: Server = createServer(mtlsServerOptions(s), (socket) => socket.end());
    const stop = keepServerIdentityCurrent(server, s);
    t.after(() => {
      stop();
      server.close();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as { port: number }).port;
    const handshake = () =>
      new Promise<string>((resolve) => {
        const c = connect({ host: '127.0.0.1', port, rejectUnauthorized: false, minVersion: 'TLSv1.3' });
        c.once('secureConnect', () => {
          resolve(c.getPeerX509Certificate()?.serialNumber ?? 'none');
          c.destroy();
        });
        c.once('error', () => {
          resolve('failed');
        });
      });
    assert.equal(await handshake(), good.leaf.serialNumber); // positive control
    fake.setX509Error(grpc.status.PERMISSION_DENIED);
    await until(() => !s.isReady, 'the withdrawal');
    assert.equal(await handshake(), 'failed');
    fake.clearX509Error();
    fake.setX509Context({ svids: [{ svid: good2 }], bundle: td.bundle });
    await until(() => s.isReady, 'the next SVID');
    assert.equal(await handshake(), good2.leaf.serialNumber);
  });
});
