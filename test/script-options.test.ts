// The scripts' command lines: bad input gets a clear message and exit code 2
// (usage) before anything starts, and good input is accepted.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { freePort } from '../scripts/shop.ts';

const ROOT = join(import.meta.dirname, '..');

interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

async function script(file: string, args: string[], env: Record<string, string> = {}): Promise<Ran> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [join(ROOT, file), ...args], {
      env: { ...process.env, ...env },
      timeout: 30_000,
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

describe('script options', () => {
  test('traffic: a valid run finishes with a summary; bad options exit 2 naming the option', async () => {
    // Positive control: valid options against an order URL nobody listens on.
    const port = await freePort();
    const ok = await script('scripts/traffic.ts', ['--url', `http://127.0.0.1:${String(port)}`, '--duration', '1']);
    assert.equal(ok.code, 0, ok.stderr);
    const summary = JSON.parse(ok.stdout) as { placed: number; errors: number };
    assert.equal(summary.placed, 0);
    assert.ok(summary.errors > 0);
    for (const [args, says] of [
      [['--durations', '1'], /Unknown option '--durations'/],
      [['--duration=-1'], /--duration must be an integer >= 0/],
      [['--concurrency', '0'], /--concurrency must be an integer >= 1/],
      [['--report', 'soon'], /--report must be an integer >= 0/],
    ] as const) {
      const r = await script('scripts/traffic.ts', [...args]);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, says);
    }
  });

  test('migrate: bad options exit 2 before SPIRE or any service starts', async () => {
    // The positive control is `npm run migrate` itself (CI runs it).
    for (const [args, says] of [
      [['--dwel', '3'], /Unknown option '--dwel'/],
      [['--dwell', '0'], /--dwell and --concurrency must be integers >= 1/],
      [['--concurrency', 'many'], /--dwell and --concurrency must be integers >= 1/],
    ] as const) {
      const r = await script('scripts/migrate.ts', [...args]);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, says);
      assert.doesNotMatch(r.stdout, /== 0\./);
    }
  });

  test('local-images: an unknown option exits 2 and says the only option', async () => {
    const r = await script('scripts/containers/local-images.ts', ['--rebuilt']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /the only option is --rebuild/);
  });

  test('register: without --entries it says what is required', async () => {
    const r = await script('scripts/spire/register.ts', []);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /--entries <file> is required/);
  });
});

describe('trust-files (compose.migrate.yaml)', () => {
  let dir: string;
  const env = (): Record<string, string> => ({ TRUST_DIR: join(dir, 'trust'), STATIC_CA_FILE: join(dir, 'ca.pem') });
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'trust-files-'));
    await promisify(execFile)('mkdir', ['-p', join(dir, 'trust')]);
  });
  after(() => rm(dir, { recursive: true, force: true }));

  test('a missing static CA fails clearly and writes nothing; init writes both files once; end-bridge empties the bridge', async () => {
    const missing = await script('scripts/containers/trust-files.ts', ['init'], env());
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /ca\.pem/);
    await assert.rejects(readFile(join(dir, 'trust', 'static-ca-bridge.pem')));

    const ca = '-----BEGIN CERTIFICATE-----\nstatic\n-----END CERTIFICATE-----\n';
    await writeFile(join(dir, 'ca.pem'), ca);
    assert.equal((await script('scripts/containers/trust-files.ts', ['init'], env())).code, 0);
    assert.equal(await readFile(join(dir, 'trust', 'static-services-trust.pem'), 'utf8'), ca);
    assert.equal(await readFile(join(dir, 'trust', 'static-ca-bridge.pem'), 'utf8'), ca);
    // A bridged trust file is not undone by init running again (compose runs it at every `up`).
    await writeFile(join(dir, 'trust', 'static-services-trust.pem'), `${ca}bridged`);
    assert.equal((await script('scripts/containers/trust-files.ts', ['init'], env())).code, 0);
    assert.equal(await readFile(join(dir, 'trust', 'static-services-trust.pem'), 'utf8'), `${ca}bridged`);

    assert.equal((await script('scripts/containers/trust-files.ts', ['end-bridge'], env())).code, 0);
    assert.equal(await readFile(join(dir, 'trust', 'static-ca-bridge.pem'), 'utf8'), '');
  });

  test('an unknown command exits 2 and lists the commands', async () => {
    const r = await script('scripts/containers/trust-files.ts', ['bridges'], env());
    assert.equal(r.code, 2);
    assert.match(r.stderr, /use init \| bridge \| end-bridge/);
  });
});
