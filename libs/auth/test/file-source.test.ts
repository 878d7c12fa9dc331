import assert from 'node:assert/strict';
import { once } from 'node:events';
import { rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { isAuthError, type AuthError } from '../src/errors.ts';
import { createIdentitySource } from '../src/source/create-identity-source.ts';
import { FileIdentitySource } from '../src/source/file-source.ts';
import { type IssuedCertificate, makeTempDir, createTestTrustDomain, type TestTrustDomain } from '@shop/auth-testing';

const HOUR = 3_600_000;

describe('FileIdentitySource', () => {
  let td: TestTrustDomain;
  let dir: string;
  let cleanup: () => Promise<void>;
  let n = 0;
  before(async () => {
    td = await createTestTrustDomain('example.org');
    ({ dir, cleanup } = await makeTempDir());
  });
  after(() => cleanup());

  // Each test gets its own file names so watchers never see each other's writes.
  async function files(issued: IssuedCertificate, ca = td.ca.certPem) {
    n++;
    const p = { certFile: join(dir, `c${n}.pem`), keyFile: join(dir, `k${n}.pem`), caFile: join(dir, `ca${n}.pem`) };
    await writeFile(p.certFile, issued.certPem);
    await writeFile(p.keyFile, issued.keyPem);
    await writeFile(p.caFile, ca);
    return p;
  }
  // Writes as deploy tools do: a temp file renamed over the old one.
  async function replace(path: string, text: string): Promise<void> {
    await writeFile(`${path}.tmp`, text);
    await rename(`${path}.tmp`, path);
  }

  test('loads cert, key and CA; trust domain from our own certificate (positive control)', async () => {
    const p = await files(await td.issue('/payment'));
    const source = await FileIdentitySource.create({ ...p, reloadIntervalMs: 20 });
    try {
      assert.equal(source.kind, 'files');
      assert.equal(source.getX509Svid().id.toString(), 'spiffe://example.org/payment');
      assert.deepEqual(source.getX509Bundles().trustDomains().map(String), ['example.org']);
      assert.ok(source.secondsToExpiry() > 3000);
    } finally {
      await source.close();
    }
  });

  const startFailures: [string, () => Promise<Record<string, string>>, string, string][] = [
    [
      'missing file',
      async () => ({ ...(await files(await td.issue('/x'))), keyFile: join(dir, 'nope.pem') }),
      'AUTH_ERR_FILE_UNREADABLE',
      'nope.pem',
    ],
    [
      'PEM that does not parse',
      async () => {
        const p = await files(await td.issue('/x'));
        await writeFile(p.certFile, 'not pem');
        return p;
      },
      'AUTH_ERR_PEM_INVALID',
      'CERTIFICATE',
    ],
    [
      'key of another certificate',
      async () => {
        const p = await files(await td.issue('/x'));
        await writeFile(p.keyFile, (await td.issue('/y')).keyPem);
        return p;
      },
      'AUTH_ERR_KEY_MISMATCH',
      'does not match',
    ],
    [
      'expired certificate',
      async () =>
        files(
          await td.issue('/x', { notBefore: new Date(Date.now() - 2 * HOUR), notAfter: new Date(Date.now() - HOUR) }),
        ),
      'AUTH_ERR_SVID_EXPIRED',
      'valid only from',
    ],
    [
      'CA file without certificates',
      async () => files(await td.issue('/x'), 'nothing here'),
      'AUTH_ERR_BUNDLE_INVALID',
      'CA/bundle file',
    ],
  ];
  for (const [name, make, code, fragment] of startFailures) {
    test(`refuses to start on ${name}, with ${code}`, async () => {
      const p = await make();
      await assert.rejects(
        FileIdentitySource.create({ certFile: p.certFile!, keyFile: p.keyFile!, caFile: p.caFile! }),
        (err: unknown) => isAuthError(err, code as never) && err.message.includes(fragment),
      );
    });
  }

  test('hot reload: a new pair rotates; a half-written or mismatched pair is refused and the last good kept', async () => {
    const first = await td.issue('/payment');
    const p = await files(first);
    const source = await FileIdentitySource.create({ ...p, reloadIntervalMs: 20 });
    const errors: AuthError[] = [];
    source.on('loadError', (e) => errors.push(e));
    try {
      const serial0 = source.getX509Svid().leaf.serialNumber;
      // New cert written, key not yet: mismatched pair.
      const second = await td.issue('/payment');
      await replace(p.certFile, second.certPem);
      await source.reload();
      assert.equal(errors.at(-1)?.code, 'AUTH_ERR_KEY_MISMATCH');
      assert.equal(source.getX509Svid().leaf.serialNumber, serial0, 'last good kept');
      // Then the key arrives: rotation.
      const rotated = once(source, 'rotated');
      await replace(p.keyFile, second.keyPem);
      const [event] = (await rotated) as [
        { svid: { leaf: { serialNumber: string } }; previous?: { svid: { leaf: { serialNumber: string } } } },
      ];
      assert.notEqual(event.svid.leaf.serialNumber, serial0);
      assert.equal(event.previous?.svid.leaf.serialNumber, serial0);
      // Half-written certificate (truncated mid-PEM).
      const serial1 = source.getX509Svid().leaf.serialNumber;
      await writeFile(p.certFile, second.certPem.slice(0, 200));
      await source.reload();
      assert.equal(errors.at(-1)?.code, 'AUTH_ERR_PEM_INVALID');
      assert.equal(source.getX509Svid().leaf.serialNumber, serial1);
      // An expired pair is refused too.
      const expired = await td.issue('/payment', {
        notBefore: new Date(Date.now() - 2 * HOUR),
        notAfter: new Date(Date.now() - HOUR),
      });
      await replace(p.certFile, expired.certPem);
      await replace(p.keyFile, expired.keyPem);
      await source.reload();
      assert.equal(errors.at(-1)?.code, 'AUTH_ERR_SVID_EXPIRED');
      assert.equal(source.getX509Svid().leaf.serialNumber, serial1);
      // A removed file is reported, not fatal.
      await replace(p.certFile, second.certPem);
      await replace(p.keyFile, second.keyPem);
      await source.reload();
      assert.equal(source.getX509Svid().leaf.serialNumber, serial1, 'same good pair again');
    } finally {
      await source.close();
    }
  });

  test('CA file changes are picked up: a new CA is trusted, a removed one is not', async () => {
    const p = await files(await td.issue('/payment'));
    const other = await createTestTrustDomain('example.org');
    const source = await FileIdentitySource.create({ ...p, reloadIntervalMs: 20 });
    try {
      assert.equal(source.getX509Bundles().get('example.org')?.authorities.length, 1);
      await replace(p.caFile, td.ca.certPem + other.ca.certPem);
      await source.reload();
      assert.equal(source.getX509Bundles().get('example.org')?.authorities.length, 2);
      // A CA file our own certificate does not chain to is refused (checkOwnX509Svid), and the last good stays…
      const errors: AuthError[] = [];
      source.on('loadError', (e) => errors.push(e));
      await replace(p.caFile, other.ca.certPem);
      await source.reload();
      assert.equal(errors.at(-1)?.code, 'AUTH_ERR_SVID_UNTRUSTED');
      assert.equal(source.getX509Bundles().get('example.org')?.authorities.length, 2);
      // …until a certificate from the new CA comes with it: then the removed CA is no longer trusted.
      const fromOther = await other.issue('/payment');
      await replace(p.keyFile, fromOther.keyPem);
      await replace(p.certFile, fromOther.certPem);
      await source.reload();
      const cas = source.getX509Bundles().get('example.org')!.authorities;
      assert.equal(cas.length, 1);
      assert.equal(cas[0]!.fingerprint256, other.bundle.authorities[0]!.fingerprint256);
    } finally {
      await source.close();
    }
  });

  test('federated bundle files and SPIFFE bundle JSON are read per trust domain', async () => {
    const partner = await createTestTrustDomain('partner.example');
    const p = await files(await td.issue('/payment'));
    const partnerFile = join(dir, 'partner.json');
    await writeFile(
      partnerFile,
      JSON.stringify({ keys: [{ use: 'x509-svid', kty: 'EC', x5c: [partner.ca.certDer.toString('base64')] }] }),
    );
    const source = await FileIdentitySource.create({ ...p, federatedBundleFiles: { 'partner.example': partnerFile } });
    try {
      assert.deepEqual(source.getX509Bundles().trustDomains().map(String), ['example.org', 'partner.example']);
    } finally {
      await source.close();
    }
  });

  test('expiring fires once when less than the threshold is left', async () => {
    const p = await files(await td.issue('/payment', { notBefore: new Date(Date.now() - 1000), ttlSeconds: 60 }));
    const source = await FileIdentitySource.create({ ...p, expiryWarningSeconds: 59.5 });
    try {
      const [e] = (await once(source, 'expiring')) as [{ secondsToExpiry: number }];
      assert.ok(e.secondsToExpiry <= 60 && e.secondsToExpiry > 0);
    } finally {
      await source.close();
    }
  });
});

describe('createIdentitySource picks by environment', () => {
  let td: TestTrustDomain;
  let dir: string;
  let cleanup: () => Promise<void>;
  before(async () => {
    td = await createTestTrustDomain('example.org');
    ({ dir, cleanup } = await makeTempDir());
  });
  after(() => cleanup());

  test('files when only TLS_* are set, and says so', async () => {
    const issued = await td.issue('/order');
    await writeFile(join(dir, 'c.pem'), issued.certPem);
    await writeFile(join(dir, 'k.pem'), issued.keyPem);
    await writeFile(join(dir, 'ca.pem'), td.ca.certPem);
    const lines: string[] = [];
    const source = await createIdentitySource({
      env: { TLS_CERT_FILE: join(dir, 'c.pem'), TLS_KEY_FILE: join(dir, 'k.pem'), TLS_CA_FILE: join(dir, 'ca.pem') },
      log: (l) => lines.push(l),
    });
    try {
      assert.equal(source.kind, 'files');
      assert.equal(source.getX509Svid().id.toString(), 'spiffe://example.org/order');
      assert.match(lines[0] ?? '', /static files.*SPIFFE_ENDPOINT_SOCKET is not set/);
    } finally {
      await source.close();
    }
  });

  test('half the file variables → the missing ones are named', async () => {
    await assert.rejects(
      createIdentitySource({ env: { TLS_CERT_FILE: '/x' } }),
      (e: unknown) =>
        isAuthError(e, 'AUTH_ERR_CONFIG_INVALID') && /TLS_KEY_FILE, TLS_CA_FILE are not set/.test(e.message),
    );
  });

  test('nothing set → says what to set', async () => {
    await assert.rejects(
      createIdentitySource({ env: {} }),
      (e: unknown) => isAuthError(e, 'AUTH_ERR_CONFIG_INVALID') && e.message.includes('SPIFFE_ENDPOINT_SOCKET'),
    );
  });

  test('a malformed SPIFFE_ENDPOINT_SOCKET is refused with the endpoint error, even when files are set', async () => {
    await assert.rejects(
      createIdentitySource({
        env: {
          SPIFFE_ENDPOINT_SOCKET: 'http://agent:8081',
          TLS_CERT_FILE: '/x',
          TLS_KEY_FILE: '/y',
          TLS_CA_FILE: '/z',
        },
      }),
      (e: unknown) => isAuthError(e) && e.code.startsWith('AUTH_ERR_WORKLOAD_ENDPOINT'),
    );
  });
});
