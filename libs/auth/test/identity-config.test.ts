// identityConfigFromEnv: the environment read once, frozen, and errors that
// name the variable they came from; createIdentitySource built on it.
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { isAuthError } from '../src/errors.ts';
import { createIdentitySource } from '../src/source/create-identity-source.ts';
import { identityConfigFromEnv } from '../src/source/identity-config.ts';
import { createTestTrustDomain, type TestTrustDomain, makeTempDir } from '@shop/auth-testing';

const FILES = { TLS_CERT_FILE: '/x/cert.pem', TLS_KEY_FILE: '/x/key.pem', TLS_CA_FILE: '/x/ca.pem' };

function failure(fn: () => unknown): Error {
  try {
    fn();
  } catch (err) {
    return err as Error;
  }
  throw new Error('it did not fail');
}

describe('identityConfigFromEnv', () => {
  test('positive control: SPIFFE_ENDPOINT_SOCKET gives the Workload API, parsed, and wins over the files', () => {
    const config = identityConfigFromEnv({ SPIFFE_ENDPOINT_SOCKET: ' unix:///run/spire/agent.sock ', ...FILES });
    assert.ok(config.kind === 'spiffe', 'the Workload API');
    assert.equal(config.workload.socketPath, '/run/spire/agent.sock');
    assert.deepEqual(config.ignoredFileVars, ['TLS_CERT_FILE', 'TLS_KEY_FILE', 'TLS_CA_FILE']);
    assert.ok(Object.isFrozen(config), 'read once and frozen');
  });

  test('positive control: the three file variables give a static identity with TRUST_DOMAIN and the bridge', () => {
    const config = identityConfigFromEnv({ ...FILES, TRUST_DOMAIN: 'example.org', TRUST_BRIDGE_CA_FILE: '/x/b.pem' });
    assert.deepEqual(config, {
      kind: 'files',
      files: { certFile: '/x/cert.pem', keyFile: '/x/key.pem', caFile: '/x/ca.pem' },
      trustDomain: 'example.org',
      trustBridgeFile: '/x/b.pem',
    });
    assert.ok(Object.isFrozen(config) && config.kind === 'files' && Object.isFrozen(config.files));
  });

  test('regression: a bad SPIFFE_ENDPOINT_SOCKET is reported as coming from SPIFFE_ENDPOINT_SOCKET, not "the address option"', async () => {
    const env = { SPIFFE_ENDPOINT_SOCKET: 'unix://agent.sock' };
    const err = failure(() => identityConfigFromEnv(env));
    assert.ok(isAuthError(err, 'AUTH_ERR_WORKLOAD_ENDPOINT_INVALID'));
    assert.match(err.message, /\(from SPIFFE_ENDPOINT_SOCKET\)/);
    assert.doesNotMatch(err.message, /address option/);
    // The same through createIdentitySource, which services call.
    await assert.rejects(createIdentitySource({ env, wait: false }), (e: unknown) => {
      assert.ok(isAuthError(e, 'AUTH_ERR_WORKLOAD_ENDPOINT_INVALID'));
      assert.match(e.message, /\(from SPIFFE_ENDPOINT_SOCKET\)/);
      return true;
    });
  });

  test('errors name the variables: missing file variables, a bad TRUST_DOMAIN, nothing set', () => {
    const partial = failure(() => identityConfigFromEnv({ TLS_CERT_FILE: '/x/cert.pem' }));
    assert.ok(isAuthError(partial, 'AUTH_ERR_CONFIG_INVALID'));
    assert.match(partial.message, /TLS_KEY_FILE, TLS_CA_FILE are not set/);
    const td = failure(() => identityConfigFromEnv({ ...FILES, TRUST_DOMAIN: 'Example.org' }));
    assert.ok(isAuthError(td, 'AUTH_ERR_TRUST_DOMAIN_INVALID'));
    assert.match(td.message, /^TRUST_DOMAIN: /);
    const none = failure(() => identityConfigFromEnv({ TLS_CERT_FILE: '  ' }));
    assert.ok(isAuthError(none, 'AUTH_ERR_CONFIG_INVALID'));
    assert.match(none.message, /set SPIFFE_ENDPOINT_SOCKET .* or TLS_CERT_FILE, TLS_KEY_FILE, TLS_CA_FILE/);
    // TRUST_DOMAIN is only the file source's: with the Workload API it is not read.
    assert.equal(
      identityConfigFromEnv({ SPIFFE_ENDPOINT_SOCKET: 'tcp://127.0.0.1:8081', TRUST_DOMAIN: '!' }).kind,
      'spiffe',
    );
  });
});

describe('createIdentitySource from a config', () => {
  let td: TestTrustDomain;
  let dir: string;
  let cleanup: () => Promise<void>;
  before(async () => {
    td = await createTestTrustDomain('example.org');
    ({ dir, cleanup } = await makeTempDir());
    const issued = await td.issue('/order');
    await writeFile(join(dir, 'cert.pem'), issued.certPem);
    await writeFile(join(dir, 'key.pem'), issued.keyPem);
    await writeFile(join(dir, 'ca.pem'), td.ca.certPem);
  });
  after(() => cleanup());

  test('a config read once is used as given, and the environment is not read again', async () => {
    const config = identityConfigFromEnv({
      TLS_CERT_FILE: join(dir, 'cert.pem'),
      TLS_KEY_FILE: join(dir, 'key.pem'),
      TLS_CA_FILE: join(dir, 'ca.pem'),
    });
    const lines: string[] = [];
    // An env that would fail if it were read: the config wins.
    const source = await createIdentitySource({ config, env: {}, log: (l) => lines.push(l) });
    try {
      assert.equal(source.getX509Svid().id.toString(), 'spiffe://example.org/order');
      assert.match(lines.join('\n'), /identity from static files/);
    } finally {
      await source.close();
    }
    // Positive control: the same empty env without a config is refused.
    await assert.rejects(createIdentitySource({ env: {} }), (e: unknown) => isAuthError(e, 'AUTH_ERR_CONFIG_INVALID'));
  });

  test('wait: false still returns at once with a Workload API that is not there', async () => {
    const config = identityConfigFromEnv({ SPIFFE_ENDPOINT_SOCKET: 'unix:///tmp/no-agent-here.sock' });
    const source = await createIdentitySource({ config, wait: false });
    try {
      assert.equal(source.isReady, false);
      assert.equal(source.kind, 'spiffe');
    } finally {
      await source.close();
    }
  });
});
