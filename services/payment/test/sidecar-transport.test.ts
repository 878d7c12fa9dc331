// SHOP_TRANSPORT=sidecar: the payment process serves plaintext on loopback
// with no identity of its own, behind a sidecar that authorizes callers; a
// non-loopback HOST is refused at start. The default (mTLS, identity
// required) is proven by server.test.ts ("charges over mTLS as order (403 as
// inventory)") and by the last test here.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { makeTempDir } from '@shop/auth-testing';
import { spawnService } from '@shop/service-kit/testing';

const SERVER = join(import.meta.dirname, '..', 'src', 'server.ts');

describe('SHOP_TRANSPORT=sidecar', () => {
  let dir: string;
  let cleanup: () => Promise<void>;

  before(async () => {
    ({ dir, cleanup } = await makeTempDir('payment-sidecar-'));
  });
  after(async () => {
    await cleanup();
  });

  test('serves plaintext on loopback without an identity, says the sidecar authorizes, audits the caller as unknown', async (t) => {
    const s = spawnService(t, SERVER, { SHOP_TRANSPORT: 'sidecar', ADMIN_PORT: '0', DATA_DIR: join(dir, 'ok') });
    const started = await s.line('payment started');
    assert.equal(started.transport, 'sidecar');
    assert.match(String(started.authorization), /ghostunnel --allow-uri/);
    const api = new URL(String(started.api));
    assert.equal(api.protocol, 'http:');
    assert.equal(api.hostname, '127.0.0.1');

    const res = await fetch(`${api.origin}/api/charge`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'idempotency-key': 'sidecar-key-0001' },
      body: JSON.stringify({ order_id: 'o-sidecar', amount: 100, currency: 'EUR', user_id: 'u-1' }),
    });
    assert.equal(res.status, 201, await res.clone().text());
    const ops = String(started.ops);
    const identity = (await (await fetch(`${ops}/identity`)).json()) as { mode: string; spiffeId: string | null };
    assert.equal(identity.mode, 'sidecar');
    assert.equal(identity.spiffeId, null);
    const ready = await fetch(`${ops}/health/ready`);
    assert.deepEqual(await ready.json(), { status: 'ready', checks: { started: true, store: true } });
    const charged = s.lines.find((l) => (l.audit as { operation?: string } | undefined)?.operation === 'charge');
    assert.equal((charged?.audit as { caller?: string } | undefined)?.caller, 'unknown: authorized by the sidecar');
    assert.ok(
      s.lines.some((l) => l.msg === 'authz by sidecar'),
      'one audit line per request',
    );

    s.kill('SIGTERM');
    assert.equal(await s.exited, 0);
  });

  const refused: [string, NodeJS.ProcessEnv][] = [
    ['HOST=0.0.0.0', { HOST: '0.0.0.0' }],
    ['HOST=::', { HOST: '::' }],
    ['HOST=10.0.0.1', { HOST: '10.0.0.1' }],
  ];
  for (const [name, env] of refused) {
    test(`${name} is refused at start with SVC_ERR_SIDECAR_NOT_LOOPBACK, naming HOST`, async (t) => {
      const s = spawnService(t, SERVER, {
        SHOP_TRANSPORT: 'sidecar',
        ADMIN_PORT: '0',
        DATA_DIR: join(dir, 'bad'),
        ...env,
      });
      assert.equal(await s.exited, 1);
      assert.match(
        s.stderr(),
        /^payment: failed to start: SVC_ERR_SIDECAR_NOT_LOOPBACK: HOST: must be a loopback address .* when SHOP_TRANSPORT=sidecar/m,
      );
    });
  }

  test('the default transport still requires an identity: without one it never serves', async (t) => {
    const s = spawnService(t, SERVER, { ADMIN_PORT: '0', DATA_DIR: join(dir, 'default'), IDENTITY_WAIT_SECONDS: '1' });
    assert.equal(await s.exited, 1);
    assert.match(s.stderr(), /^payment: failed to start: AUTH_ERR_CONFIG_INVALID: /m);
    assert.ok(!s.lines.some((l) => l.msg === 'payment started'));
  });
});
