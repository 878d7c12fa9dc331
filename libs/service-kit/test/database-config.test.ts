import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Env } from '../src/config.ts';
import { databaseWhere, readDatabaseConfig } from '../src/db/database-config.ts';

const sqlite = { dataDir: '/data/payment', file: 'payment.db' };
const read = (env: NodeJS.ProcessEnv): ReturnType<typeof readDatabaseConfig> =>
  readDatabaseConfig(new Env(env), sqlite);

describe('readDatabaseConfig', () => {
  test('DATABASE_URL unset keeps SQLite under DATA_DIR', () => {
    assert.deepEqual(read({}), { engine: 'sqlite', file: '/data/payment/payment.db' });
  });

  test('postgres:// selects PostgreSQL with defaults; the password never reaches a log line', () => {
    const c = read({ DATABASE_URL: 'postgres://payment:s3cret@db.test:5432/payment' });
    assert.deepEqual(c, {
      engine: 'postgres',
      url: 'postgres://payment:s3cret@db.test:5432/payment',
      redactedUrl: 'postgres://payment:***@db.test:5432/payment',
      poolMax: 10,
      statementTimeoutMs: 5000,
      connectWaitSeconds: 30,
      caFile: undefined,
      auth: 'password',
      passwordFile: undefined,
    });
    assert.equal(databaseWhere(c), 'postgres://payment:***@db.test:5432/payment');
  });

  test('identity auth with a CA file; password auth with a password file', () => {
    const id = read({
      DATABASE_URL: 'postgresql://payment@db.test/payment',
      DATABASE_AUTH: 'identity',
      DATABASE_CA_FILE: '/run/ca.pem',
      DATABASE_POOL_MAX: '3',
      DATABASE_STATEMENT_TIMEOUT_MS: '0',
    });
    assert.equal(id.engine === 'postgres' && id.auth, 'identity');
    assert.equal(id.engine === 'postgres' && id.caFile, '/run/ca.pem');
    assert.equal(id.engine === 'postgres' && id.poolMax, 3);
    assert.equal(id.engine === 'postgres' && id.statementTimeoutMs, 0);
    const pw = read({
      DATABASE_URL: 'postgresql://payment@db.test/payment',
      DATABASE_AUTH: 'password',
      DATABASE_PASSWORD_FILE: '/run/pw',
    });
    assert.equal(pw.engine === 'postgres' && pw.passwordFile, '/run/pw');
  });

  const bad: [NodeJS.ProcessEnv, string, RegExp][] = [
    [{ DATABASE_URL: 'not a url' }, 'DATABASE_URL', /must be a URL/],
    [{ DATABASE_URL: 'mysql://db/payment' }, 'DATABASE_URL', /must use postgres: or postgresql:/],
    [{ DATABASE_URL: 'postgres://db.test' }, 'DATABASE_URL', /must name a database/],
    [{ DATABASE_URL: 'postgres://u@db.test/p', DATABASE_POOL_MAX: '0' }, 'DATABASE_POOL_MAX', /between 1 and 1000/],
    [
      { DATABASE_URL: 'postgres://u@db.test/p', DATABASE_STATEMENT_TIMEOUT_MS: 'x' },
      'DATABASE_STATEMENT_TIMEOUT_MS',
      /integer/,
    ],
    [{ DATABASE_URL: 'postgres://u@db.test/p', DATABASE_AUTH: 'kerberos' }, 'DATABASE_AUTH', /must be one of/],
    [
      { DATABASE_URL: 'postgres://u@db.test/p', DATABASE_AUTH: 'password' },
      'DATABASE_PASSWORD_FILE',
      /must name the file/,
    ],
    [{ DATABASE_URL: 'postgres://u@db.test/p', DATABASE_AUTH: 'identity' }, 'DATABASE_CA_FILE', /CA bundle/],
    [{ DATABASE_URL: 'postgres://u@db.test/p', DATABASE_PASSWORD_FILE: '/pw' }, 'DATABASE_PASSWORD_FILE', /only read/],
    // Behind a sidecar the process has no SVID to log in with (the positive control: identity auth is read above).
    [
      {
        DATABASE_URL: 'postgres://u@db.test/p',
        DATABASE_AUTH: 'identity',
        DATABASE_CA_FILE: '/run/ca.pem',
        SHOP_TRANSPORT: 'sidecar',
      },
      'DATABASE_AUTH',
      /must not be identity when SHOP_TRANSPORT=sidecar/,
    ],
  ];
  for (const [env, variable, message] of bad) {
    test(`${JSON.stringify(env)} is refused, naming ${variable}`, () => {
      assert.throws(
        () => read(env),
        (err: Error & { code?: string; variable?: string }) => {
          assert.equal(err.code, 'SVC_ERR_CONFIG_INVALID');
          assert.equal(err.variable, variable);
          assert.match(err.message, message);
          return true;
        },
      );
    });
  }
});
