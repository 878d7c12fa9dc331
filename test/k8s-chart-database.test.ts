// The chart's database values (issue 13 item 4), checked on what `helm
// template` renders: no cluster, only the cached helm (built when missing by
// scripts/k8s/get-k8s.ts). Each mode (SQLite by default, PostgreSQL with no
// credentials, with a password, with the service's own identity) must give
// the service the DATABASE_* variables it reads and mount the Secrets those
// variables point at; bad values fail naming the value.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { before, describe, test } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { getHelm } from '../scripts/k8s/get-k8s.ts';

const run = promisify(execFile);
const CHART = join(import.meta.dirname, '..', 'deploy/helm/spiffe-shop');
const SERVICES = ['order', 'payment', 'inventory'] as const;
type Service = (typeof SERVICES)[number];

interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: { secretKeyRef?: { name: string; key: string } };
}
interface Mount {
  name: string;
  mountPath: string;
  readOnly?: boolean;
}
interface Volume {
  name: string;
  secret?: { secretName: string; items?: { key: string; path: string }[] };
  emptyDir?: object;
  hostPath?: object;
}
interface Rendered {
  env: EnvVar[];
  mounts: Mount[];
  volumes: Volume[];
}

let helm = '';

/** render runs helm template with `--set` pairs and returns each service's container env, mounts and volumes. */
async function render(sets: Record<string, string | number> = {}): Promise<Record<Service, Rendered>> {
  const args = ['template', 'shop', CHART, '-n', 'shop'];
  for (const [k, v] of Object.entries(sets)) args.push(typeof v === 'number' ? '--set' : '--set-string', `${k}=${v}`);
  const { stdout } = await run(helm, args, { maxBuffer: 16 << 20 });
  const out: Partial<Record<Service, Rendered>> = {};
  for (const doc of parseAllDocuments(stdout)) {
    const o = doc.toJS() as {
      kind?: string;
      metadata?: { name?: string };
      spec?: {
        template?: {
          spec?: { containers?: { env?: EnvVar[]; volumeMounts?: Mount[] }[]; volumes?: Volume[] };
        };
      };
    } | null;
    const name = o?.metadata?.name as Service;
    if (o?.kind !== 'Deployment' || !SERVICES.includes(name)) continue;
    const pod = o.spec?.template?.spec;
    const c = pod?.containers?.[0];
    out[name] = { env: c?.env ?? [], mounts: c?.volumeMounts ?? [], volumes: pod?.volumes ?? [] };
  }
  for (const s of SERVICES) assert.ok(out[s], `no Deployment ${s} rendered`);
  return out as Record<Service, Rendered>;
}

/** helmFails runs helm template expecting a schema failure and returns its message. */
async function helmFails(sets: Record<string, string | number>): Promise<string> {
  try {
    await render(sets);
  } catch (err) {
    return (err as { stderr?: string }).stderr ?? String(err);
  }
  assert.fail(`helm template succeeded with ${JSON.stringify(sets)}`);
}

const envOf = (r: Rendered, name: string): EnvVar | undefined => r.env.find((e) => e.name === name);
const dbEnvNames = (r: Rendered): string[] => r.env.map((e) => e.name).filter((n) => n.startsWith('DATABASE_'));

/** fileBehind resolves a file path in the container to the Secret (and key) mounted there, following mount + items. */
function fileBehind(r: Rendered, path: string): { secret: string; key: string } | undefined {
  for (const m of r.mounts) {
    if (!path.startsWith(`${m.mountPath}/`)) continue;
    const v = r.volumes.find((x) => x.name === m.name);
    if (!v?.secret) return undefined;
    assert.equal(m.readOnly, true, `${m.mountPath} must be mounted read-only`);
    const rel = path.slice(m.mountPath.length + 1);
    const item = v.secret.items ? v.secret.items.find((i) => i.path === rel) : { key: rel, path: rel };
    return item ? { secret: v.secret.secretName, key: item.key } : undefined;
  }
  return undefined;
}

const PAYMENT_URL = 'postgres://payment@db.shop.svc.cluster.local:5432/payment';
const P = 'services.payment.database';

describe('the chart’s database values (helm template, no cluster)', () => {
  before(async () => {
    helm = await getHelm();
  });

  test('default: every service keeps SQLite under DATA_DIR, no DATABASE_* variable, no database Secret', async () => {
    const r = await render();
    for (const s of SERVICES) {
      assert.equal(envOf(r[s], 'DATA_DIR')?.value, `/data/${s}`, s);
      assert.deepEqual(dbEnvNames(r[s]), [], s);
      assert.deepEqual(
        r[s].volumes.filter((v) => v.name.startsWith('database')),
        [],
        s,
      );
    }
  });

  test('url with auth none: DATABASE_URL only on that service; the others stay on SQLite', async () => {
    const r = await render({ [`${P}.url`]: PAYMENT_URL, [`${P}.auth`]: 'none' });
    assert.equal(envOf(r.payment, 'DATABASE_URL')?.value, PAYMENT_URL);
    assert.equal(envOf(r.payment, 'DATABASE_AUTH')?.value, 'none');
    assert.deepEqual(dbEnvNames(r.payment).sort(), ['DATABASE_AUTH', 'DATABASE_URL']);
    // Without auth the service chooses (password when the URL has one, else none): nothing is passed.
    const unset = await render({ [`${P}.url`]: PAYMENT_URL });
    assert.deepEqual(dbEnvNames(unset.payment), ['DATABASE_URL']);
    for (const s of ['order', 'inventory'] as const) assert.deepEqual(dbEnvNames(r[s]), [], s);
  });

  test('password: URL and password from Secrets, the server verified with the CA Secret', async () => {
    const r = await render({
      [`${P}.urlSecret`]: 'payment-db-url',
      [`${P}.auth`]: 'password',
      [`${P}.passwordSecret`]: 'payment-db-password',
      [`${P}.caSecret`]: 'db-ca',
    });
    const url = envOf(r.payment, 'DATABASE_URL');
    assert.equal(url?.value, undefined, 'the URL is not written into the Deployment');
    assert.deepEqual(url?.valueFrom, { secretKeyRef: { name: 'payment-db-url', key: 'url' } });
    assert.equal(envOf(r.payment, 'DATABASE_AUTH')?.value, 'password');
    const pwFile = envOf(r.payment, 'DATABASE_PASSWORD_FILE')?.value ?? '';
    assert.deepEqual(fileBehind(r.payment, pwFile), { secret: 'payment-db-password', key: 'password' });
    const caFile = envOf(r.payment, 'DATABASE_CA_FILE')?.value ?? '';
    assert.deepEqual(fileBehind(r.payment, caFile), { secret: 'db-ca', key: 'ca.crt' });
    // The password never appears in the rendered objects' env values.
    assert.ok(!r.payment.env.some((e) => e.value?.includes('payment-db-password')));
  });

  test('identity under SPIRE: DATABASE_AUTH=identity beside the Workload API socket, CA from its Secret, no password', async () => {
    const r = await render({ [`${P}.url`]: PAYMENT_URL, [`${P}.auth`]: 'identity', [`${P}.caSecret`]: 'db-ca' });
    assert.equal(envOf(r.payment, 'DATABASE_AUTH')?.value, 'identity');
    assert.match(envOf(r.payment, 'SPIFFE_ENDPOINT_SOCKET')?.value ?? '', /^unix:\/\/\/spiffe-workload-api\//);
    assert.deepEqual(fileBehind(r.payment, envOf(r.payment, 'DATABASE_CA_FILE')?.value ?? ''), {
      secret: 'db-ca',
      key: 'ca.crt',
    });
    assert.equal(envOf(r.payment, 'DATABASE_PASSWORD_FILE'), undefined);
    assert.equal(
      r.payment.volumes.some((v) => v.name === 'database-password'),
      false,
    );
  });

  test('identity in files mode: the client certificate is the service’s own tls Secret', async () => {
    const r = await render({
      'services.payment.identity': 'files',
      [`${P}.url`]: PAYMENT_URL,
      [`${P}.auth`]: 'identity',
      [`${P}.caSecret`]: 'db-ca',
    });
    assert.equal(envOf(r.payment, 'DATABASE_AUTH')?.value, 'identity');
    assert.deepEqual(fileBehind(r.payment, envOf(r.payment, 'TLS_CERT_FILE')?.value ?? ''), {
      secret: 'payment-tls',
      key: 'tls.crt',
    });
    assert.deepEqual(fileBehind(r.payment, envOf(r.payment, 'DATABASE_CA_FILE')?.value ?? ''), {
      secret: 'db-ca',
      key: 'ca.crt',
    });
  });

  test('pool and timeouts are passed when set, 0 included, and left to the service when not', async () => {
    const r = await render({
      [`${P}.url`]: PAYMENT_URL,
      [`${P}.poolMax`]: 4,
      [`${P}.statementTimeoutMs`]: 0,
      [`${P}.connectWaitSeconds`]: 120,
    });
    assert.equal(envOf(r.payment, 'DATABASE_POOL_MAX')?.value, '4');
    assert.equal(envOf(r.payment, 'DATABASE_STATEMENT_TIMEOUT_MS')?.value, '0');
    assert.equal(envOf(r.payment, 'DATABASE_CONNECT_WAIT_SECONDS')?.value, '120');
    const unset = await render({ [`${P}.url`]: PAYMENT_URL });
    assert.equal(envOf(unset.payment, 'DATABASE_POOL_MAX'), undefined);
    assert.equal(envOf(unset.payment, 'DATABASE_STATEMENT_TIMEOUT_MS'), undefined);
  });

  test('every service takes its own database values', async () => {
    const sets: Record<string, string> = {};
    for (const s of SERVICES) sets[`services.${s}.database.url`] = `postgres://${s}@db:5432/${s}`;
    const r = await render(sets);
    for (const s of SERVICES) assert.equal(envOf(r[s], 'DATABASE_URL')?.value, `postgres://${s}@db:5432/${s}`, s);
  });

  test('bad database values fail naming the value (positive control: good values render)', async () => {
    await render({ [`${P}.url`]: PAYMENT_URL, [`${P}.auth`]: 'identity', [`${P}.caSecret`]: 'db-ca' });
    const cases: [Record<string, string | number>, RegExp][] = [
      [
        { [`${P}.url`]: 'mysql://db/payment' },
        /at '\/services\/payment\/database\/url': 'mysql:\/\/db\/payment' does not match/,
      ],
      [
        { [`${P}.url`]: 'postgres://payment:hunter2@db:5432/payment' },
        /at '\/services\/payment\/database\/url': .* does not match/,
      ],
      [
        { [`${P}.url`]: PAYMENT_URL, [`${P}.auth`]: 'ldap' },
        /at '\/services\/payment\/database\/auth': value must be one of/,
      ],
      [
        { [`${P}.url`]: PAYMENT_URL, [`${P}.auth`]: 'identity' },
        /at '\/services\/payment\/database\/caSecret': minLength: got 0, want 1/,
      ],
      [
        { [`${P}.url`]: PAYMENT_URL, [`${P}.auth`]: 'password' },
        /at '\/services\/payment\/database\/passwordSecret': minLength: got 0, want 1/,
      ],
      [
        { [`${P}.url`]: PAYMENT_URL, [`${P}.urlSecret`]: 'u' },
        /at '\/services\/payment\/database\/urlSecret': value must be ''/,
      ],
      [{ [`${P}.caSecret`]: 'db-ca' }, /at '\/services\/payment\/database\/caSecret': value must be ''/],
      [
        { [`${P}.url`]: PAYMENT_URL, [`${P}.poolMax`]: 0 },
        /at '\/services\/payment\/database\/poolMax': minimum: got 0, want 1/,
      ],
      [{ [`${P}.url`]: PAYMENT_URL, [`${P}.pool`]: 3 }, /additional properties 'pool' not allowed/],
    ];
    for (const [sets, message] of cases) {
      const stderr = await helmFails(sets);
      assert.match(stderr, /values don't meet the specifications of the schema/, JSON.stringify(sets));
      assert.match(stderr, message, JSON.stringify(sets));
    }
  });
});
