// The spiffe-auth CLI, run as a child process the way a user runs it; every
// assertion is about what the user sees: exit status, output, files and modes.
import 'reflect-metadata';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { cp, mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import * as x509 from '@peculiar/x509';
import type { CertificateReport } from '../src/cli/cert-report.ts';
import { X509Bundle, X509BundleSet, X509Svid, verifyX509Svid, type VerifiedPeer } from '@shop/auth';
import {
  FakeWorkloadApi,
  createTestTrustDomain,
  type IssuedCertificate,
  type TestTrustDomain,
} from '@shop/auth-testing';
import { parseCertificate, pemBlocksOfType } from '@shop/auth/x509';
import { MAX_SERVICE_NAME_BYTES, dnsNameProblem } from '../src/cli/service-cert.ts';
import { CertificateAuthority } from '../src/dev-ca.ts';

const MAIN = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url));
const HOUR = 3600;

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

// Asynchronous on purpose: the fake Workload API runs in this process and must keep serving while the CLI runs.
function run(
  args: string[],
  options: { env?: NodeJS.ProcessEnv; cwd?: string; direct?: boolean; stdin?: string } = {},
): Promise<Result> {
  const env = { ...process.env, ...options.env };
  delete env.NODE_OPTIONS;
  delete env.NODE_TEST_CONTEXT;
  if (options.env && 'SPIFFE_ENDPOINT_SOCKET' in options.env && options.env.SPIFFE_ENDPOINT_SOCKET === undefined) {
    delete env.SPIFFE_ENDPOINT_SOCKET;
  }
  const [file, argv] = options.direct === true ? [MAIN, args] : [process.execPath, [MAIN, ...args]];
  return new Promise((resolve) => {
    const child = execFile(
      file,
      argv,
      { env, cwd: options.cwd, encoding: 'utf8', timeout: 120_000 },
      (err, stdout, stderr) => {
        const code = err === null ? 0 : typeof err.code === 'number' ? err.code : -1;
        resolve({ code, stdout, stderr });
      },
    );
    child.stdin?.end(options.stdin ?? '');
  });
}

function json(r: Result): unknown {
  assert.equal(r.code, 0, `expected exit 0, got ${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

function ok(r: Result): Result {
  assert.equal(r.code, 0, `expected exit 0, got ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return r;
}

/** assertCliError checks the user-facing shape of an expected error: exit 2, `error <CODE>: ...`, a hint, no stack. */
function assertCliError(r: Result, code: string, messagePart?: string | RegExp): void {
  assert.equal(r.code, 2, `expected exit 2 (${code}), got ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  assert.match(r.stderr, new RegExp(`^error ${code}: `, 'm'), r.stderr);
  assert.match(r.stderr, /^hint: \S/m);
  assert.doesNotMatch(r.stderr, /^\s+at /m, 'no stack trace for an expected error');
  if (typeof messagePart === 'string')
    assert.ok(r.stderr.includes(messagePart), `stderr lacks ${JSON.stringify(messagePart)}: ${r.stderr}`);
  else if (messagePart) assert.match(r.stderr, messagePart);
}

const temps: string[] = [];
async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'spiffe-auth-cli-'));
  temps.push(dir);
  return dir;
}
after(async () => {
  await Promise.all(temps.map((d) => rm(d, { recursive: true, force: true })));
});

/** snapshot maps every file name under `dir` to its content, so a test can prove nothing changed. */
async function snapshot(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return out;
  }
  for (const n of names.sort()) {
    const st = await stat(join(dir, n));
    out.set(n, st.isFile() ? (await readFile(join(dir, n))).toString('base64') : '<dir>');
  }
  return out;
}

async function modeOf(path: string): Promise<number> {
  return (await stat(path)).mode & 0o777;
}

async function loadSvid(dir: string, service: string): Promise<X509Svid> {
  return X509Svid.fromPem(
    await readFile(join(dir, `${service}.crt.pem`), 'utf8'),
    await readFile(join(dir, `${service}.key.pem`), 'utf8'),
  );
}

async function bundleOf(caDir: string, trustDomain: string): Promise<X509BundleSet> {
  return new X509BundleSet([X509Bundle.fromPem(trustDomain, await readFile(join(caDir, 'ca.crt.pem'), 'utf8'))]);
}

async function writeIssued(dir: string, name: string, issued: IssuedCertificate): Promise<void> {
  await writeFile(join(dir, `${name}.crt.pem`), issued.certPem);
  await writeFile(join(dir, `${name}.key.pem`), issued.keyPem, { mode: 0o600 });
}

/** verifyAsService verifies an SVID in both TLS roles, since a service both serves and calls, and returns the peer. */
function verifyAsService(chain: readonly Uint8Array[], bundles: X509BundleSet): VerifiedPeer {
  verifyX509Svid(chain, bundles, { peerRole: 'client' });
  return verifyX509Svid(chain, bundles, { peerRole: 'server' });
}

function dnsSansOf(svid: X509Svid): string[] {
  return parseCertificate(svid.chainDer()[0]!).dnsSans;
}

describe('spiffe-auth: entry point and help', () => {
  test('main.ts is an executable with a node shebang, and runs directly', async () => {
    assert.ok(((await stat(MAIN)).mode & 0o111) !== 0, 'main.ts must be executable');
    assert.match(await readFile(MAIN, 'utf8'), /^#!\/usr\/bin\/env node\n/);
    // `env node` must find the pinned Node (it strips types), as npm scripts arrange with node_modules/.bin.
    const PATH = `${dirname(process.execPath)}${delimiter}${process.env.PATH ?? ''}`;
    const r = ok(await run(['--help'], { direct: true, env: { PATH } }));
    assert.match(r.stdout, /Usage: spiffe-auth/);
  });

  test('--help lists every command; each command has its own --help', async () => {
    const r = ok(await run(['--help']));
    const commands = ['ca create', 'cert issue', 'dev-certs', 'inspect', 'check-expiry', 'fetch'];
    for (const c of commands) assert.ok(r.stdout.includes(c), `top help lacks ${c}`);
    for (const c of commands) {
      const h = ok(await run([...c.split(' '), '--help']));
      assert.match(h.stdout, new RegExp(`Usage: spiffe-auth ${c}`));
      assert.match(h.stdout, /Default:/);
    }
    assert.match(ok(await run(['help', 'inspect'])).stdout, /Usage: spiffe-auth inspect/);
    assert.match(ok(await run(['--version'])).stdout, /^\d+\.\d+\.\d+\n$/);
  });

  test('no command, an unknown command or a missing subcommand is a usage error (exit 2)', async () => {
    const none = await run([]);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /Usage: spiffe-auth/);
    assertCliError(await run(['frobnicate']), 'AUTH_ERR_CLI_USAGE', 'unknown command "frobnicate"');
    assertCliError(await run(['ca', 'destroy']), 'AUTH_ERR_CLI_USAGE', 'unknown subcommand "destroy"');
    assert.equal((await run(['ca'])).code, 2);
  });
});

describe('spiffe-auth ca create', () => {
  test('writes the CA certificate, its key (0600) and ca.json', async () => {
    const dir = join(await tempDir(), 'certs');
    const r = ok(await run(['ca', 'create', '--trust-domain', 'shop.test', '--out-dir', dir, '--ttl', '48h']));
    assert.match(r.stdout, /development root CA for trust domain shop\.test/);
    assert.deepEqual([...(await snapshot(dir)).keys()], ['ca.crt.pem', 'ca.json', 'ca.key.pem']);
    assert.equal(await modeOf(join(dir, 'ca.key.pem')), 0o600);
    assert.equal(await modeOf(join(dir, 'ca.crt.pem')), 0o644);
    assert.deepEqual(JSON.parse(await readFile(join(dir, 'ca.json'), 'utf8')), { trust_domain: 'shop.test' });
    const cert = parseCertificate(
      pemBlocksOfType(await readFile(join(dir, 'ca.crt.pem'), 'utf8'), 'CERTIFICATE', 'ca')[0]!,
    );
    assert.equal(cert.isCA, true);
    assert.equal(cert.keyUsage.keyCertSign, true);
    assert.equal(cert.x509.publicKey.asymmetricKeyDetails?.namedCurve, 'prime256v1');
    assert.ok(cert.x509.checkIssued(cert.x509), 'self-signed root');
    const ttl = (cert.notAfter.getTime() - Date.now()) / 1000;
    assert.ok(ttl > 47 * HOUR && ttl <= 48 * HOUR, `ttl ${ttl}`);
  });

  test('--path-len sets the CA certificates allowed below it (0 by default), and refuses anything but 0-8', async () => {
    const pathLenOf = async (dir: string): Promise<number | undefined> =>
      parseCertificate(pemBlocksOfType(await readFile(join(dir, 'ca.crt.pem'), 'utf8'), 'CERTIFICATE', 'ca')[0]!)
        .pathLen;
    const plain = await tempDir();
    ok(await run(['ca', 'create', '--trust-domain', 'example.org', '--out-dir', plain]));
    assert.equal(await pathLenOf(plain), 0);
    const upstream = await tempDir();
    ok(await run(['ca', 'create', '--trust-domain', 'example.org', '--out-dir', upstream, '--path-len', '1']));
    assert.equal(await pathLenOf(upstream), 1);
    for (const bad of ['-1', '9', 'one', '1.5']) {
      const dir = await tempDir();
      assertCliError(
        await run(['ca', 'create', '--trust-domain', 'example.org', '--out-dir', dir, `--path-len=${bad}`]),
        'AUTH_ERR_CLI_USAGE',
        '--path-len must be an integer from 0 to 8',
      );
      assert.equal((await snapshot(dir)).size, 0, 'nothing written');
    }
  });

  test('--json reports the files and expiry', async () => {
    const dir = await tempDir();
    const out = json(
      await run(['ca', 'create', '--trust-domain', 'example.org', '--out-dir', dir, '--json']),
    ) as Record<string, string>;
    assert.equal(out.trustDomain, 'example.org');
    assert.equal(out.certFile, join(dir, 'ca.crt.pem'));
    assert.equal(out.keyFile, join(dir, 'ca.key.pem'));
    const days = (Date.parse(out.notAfter ?? '') - Date.now()) / 86_400_000;
    assert.ok(days > 364 && days <= 365, `default --ttl 8760h, got ${days} days`);
  });

  test('refuses to replace an existing CA without --force, replaces it with --force', async () => {
    const dir = await tempDir();
    ok(await run(['ca', 'create', '--trust-domain', 'example.org', '--out-dir', dir]));
    const first = await snapshot(dir);
    assertCliError(
      await run(['ca', 'create', '--trust-domain', 'example.org', '--out-dir', dir]),
      'AUTH_ERR_CLI_OUTPUT_EXISTS',
      '--force',
    );
    assert.deepEqual(await snapshot(dir), first, 'nothing was touched');
    ok(await run(['ca', 'create', '--trust-domain', 'other.org', '--out-dir', dir, '--force']));
    const second = await snapshot(dir);
    assert.deepEqual([...second.keys()], [...first.keys()], 'no temporary files are left');
    assert.notEqual(second.get('ca.crt.pem'), first.get('ca.crt.pem'));
    assert.deepEqual(JSON.parse(await readFile(join(dir, 'ca.json'), 'utf8')), { trust_domain: 'other.org' });
  });

  test('refuses even when only one of the CA files exists', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'ca.key.pem'), 'precious');
    assertCliError(
      await run(['ca', 'create', '--trust-domain', 'example.org', '--out-dir', dir]),
      'AUTH_ERR_CLI_OUTPUT_EXISTS',
      'ca.key.pem',
    );
    assert.deepEqual(
      [...(await snapshot(dir)).entries()],
      [['ca.key.pem', Buffer.from('precious').toString('base64')]],
    );
  });

  describe('bad input: exit 2 with the code, nothing written', { concurrency: true }, () => {
    const cases: [string, (out: string) => Promise<string[]> | string[], string][] = [
      ['missing --trust-domain', (out) => ['--out-dir', out], 'AUTH_ERR_CLI_USAGE'],
      ['missing --out-dir', () => ['--trust-domain', 'example.org'], 'AUTH_ERR_CLI_USAGE'],
      [
        'upper-case trust domain',
        (out) => ['--trust-domain', 'Example.org', '--out-dir', out],
        'AUTH_ERR_TRUST_DOMAIN_INVALID',
      ],
      [
        'trust domain with a port',
        (out) => ['--trust-domain', 'example.org:8080', '--out-dir', out],
        'AUTH_ERR_TRUST_DOMAIN_INVALID',
      ],
      [
        'unknown unit in --ttl',
        (out) => ['--trust-domain', 'example.org', '--out-dir', out, '--ttl', '10y'],
        'AUTH_ERR_CLI_DURATION_INVALID',
      ],
      [
        'zero --ttl',
        (out) => ['--trust-domain', 'example.org', '--out-dir', out, '--ttl', '0h'],
        'AUTH_ERR_CLI_DURATION_INVALID',
      ],
      [
        '--ttl without a value',
        (out) => ['--trust-domain', 'example.org', '--out-dir', out, '--ttl'],
        'AUTH_ERR_CLI_USAGE',
      ],
      ['unknown flag', (out) => ['--trust-domain', 'example.org', '--out-dir', out, '--rsa'], 'AUTH_ERR_CLI_USAGE'],
      ['stray argument', (out) => ['--trust-domain', 'example.org', '--out-dir', out, 'extra'], 'AUTH_ERR_CLI_USAGE'],
      [
        '--out-dir is a file',
        async (out) => {
          await mkdir(dirname(out), { recursive: true });
          await writeFile(out, 'x');
          return ['--trust-domain', 'example.org', '--out-dir', out];
        },
        'AUTH_ERR_CLI_OUTPUT_UNWRITABLE',
      ],
    ];

    test('positive control: the same shape of arguments succeeds', async () => {
      const out = join(await tempDir(), 'ca');
      ok(await run(['ca', 'create', '--trust-domain', 'example.org', '--out-dir', out, '--ttl', '10d']));
    });
    for (const [name, args, code] of cases) {
      test(name, async () => {
        const parent = await tempDir();
        const out = join(parent, 'ca');
        const r = await run(['ca', 'create', ...(await args(out))]);
        assertCliError(r, code);
        assert.ok(
          [...(await snapshot(parent)).keys()].every((n) => n === 'ca'),
          'nothing written beside --out-dir',
        );
        assert.deepEqual(await snapshot(out), new Map(), 'nothing written in --out-dir');
      });
    }
  });
});

describe('spiffe-auth cert issue', () => {
  let caDir: string;
  before(async () => {
    caDir = await tempDir();
    ok(await run(['ca', 'create', '--trust-domain', 'example.org', '--out-dir', caDir]));
  });

  test('issues an X.509-SVID for spiffe://<td>/<service> with DNS SANs, chaining to the CA', async () => {
    const out = await tempDir();
    const r = ok(
      await run([
        'cert',
        'issue',
        '--ca-dir',
        caDir,
        '--service',
        'payment',
        '--dns',
        'pay.internal',
        '--dns',
        'a.test,b.test',
        '--out-dir',
        out,
        '--ttl',
        '2h',
      ]),
    );
    assert.match(r.stdout, /spiffe:\/\/example\.org\/payment/);
    assert.deepEqual([...(await snapshot(out)).keys()], ['payment.crt.pem', 'payment.key.pem']);
    assert.equal(await modeOf(join(out, 'payment.key.pem')), 0o600);
    assert.equal(await modeOf(join(out, 'payment.crt.pem')), 0o644);
    const svid = await loadSvid(out, 'payment');
    assert.equal(svid.id.toString(), 'spiffe://example.org/payment');
    assert.deepEqual(dnsSansOf(svid), ['payment', 'localhost', 'pay.internal', 'a.test', 'b.test']);
    // Extended key usage serverAuth + clientAuth, as SPIRE issues; verifyAsService checks both roles below.
    assert.deepEqual(parseCertificate(svid.chainDer()[0]!).extKeyUsage, ['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2']);
    const ttl = svid.secondsToExpiry();
    assert.ok(ttl > 2 * HOUR - 120 && ttl <= 2 * HOUR, `ttl ${ttl}`);
    const peer = verifyAsService(svid.chainDer(), await bundleOf(caDir, 'example.org'));
    assert.equal(peer.id.toString(), 'spiffe://example.org/payment');
  });

  test('negative control of the chain check: the certificate does not verify against another CA', async () => {
    const out = await tempDir();
    ok(await run(['cert', 'issue', '--ca-dir', caDir, '--service', 'payment', '--out-dir', out]));
    const otherCa = await tempDir();
    ok(await run(['ca', 'create', '--trust-domain', 'example.org', '--out-dir', otherCa]));
    const svid = await loadSvid(out, 'payment');
    verifyAsService(svid.chainDer(), await bundleOf(caDir, 'example.org'));
    const otherBundles = await bundleOf(otherCa, 'example.org');
    assert.throws(() => verifyAsService(svid.chainDer(), otherBundles), {
      code: 'AUTH_ERR_PEER_UNVERIFIED',
      message: /unknown authority/,
    });
  });

  test('--json, default TTL 720h, trust domain taken from ca.json', async () => {
    const ca = await tempDir();
    ok(await run(['ca', 'create', '--trust-domain', 'shop.test', '--out-dir', ca]));
    const out = await tempDir();
    const res = json(
      await run(['cert', 'issue', '--ca-dir', ca, '--service', 'order', '--out-dir', out, '--json']),
    ) as { spiffeId: string; dnsNames: string[]; certFile: string; keyFile: string; notAfter: string };
    assert.equal(res.spiffeId, 'spiffe://shop.test/order');
    assert.deepEqual(res.dnsNames, ['order', 'localhost']);
    assert.equal(res.certFile, join(out, 'order.crt.pem'));
    const days = (Date.parse(res.notAfter) - Date.now()) / 86_400_000;
    assert.ok(days > 29.9 && days <= 30, `${days}`);
    verifyAsService((await loadSvid(out, 'order')).chainDer(), await bundleOf(ca, 'shop.test'));
  });

  test('without ca.json the trust domain defaults to example.org', async () => {
    const ca = await tempDir();
    await cp(caDir, ca, { recursive: true });
    await rm(join(ca, 'ca.json'));
    const res = json(await run(['cert', 'issue', '--ca-dir', ca, '--service', 'order', '--out-dir', ca, '--json'])) as {
      spiffeId: string;
    };
    assert.equal(res.spiffeId, 'spiffe://example.org/order');
  });

  test('a certificate never outlives its CA', async () => {
    const ca = await tempDir();
    ok(await run(['ca', 'create', '--trust-domain', 'example.org', '--out-dir', ca, '--ttl', '3h']));
    const r = ok(await run(['cert', 'issue', '--ca-dir', ca, '--service', 'order', '--out-dir', ca]));
    assert.match(r.stderr, /warning: the CA expires before --ttl 720h/);
    const caCert = parseCertificate(
      pemBlocksOfType(await readFile(join(ca, 'ca.crt.pem'), 'utf8'), 'CERTIFICATE', 'ca')[0]!,
    );
    assert.equal((await loadSvid(ca, 'order')).expiresAt.getTime(), caCert.notAfter.getTime());
  });

  test('refuses to replace an existing certificate without --force, replaces it with --force', async () => {
    const out = await tempDir();
    ok(await run(['cert', 'issue', '--ca-dir', caDir, '--service', 'payment', '--out-dir', out]));
    const first = await snapshot(out);
    assertCliError(
      await run(['cert', 'issue', '--ca-dir', caDir, '--service', 'payment', '--out-dir', out]),
      'AUTH_ERR_CLI_OUTPUT_EXISTS',
    );
    assert.deepEqual(await snapshot(out), first);
    ok(await run(['cert', 'issue', '--ca-dir', caDir, '--service', 'payment', '--out-dir', out, '--force']));
    const second = await snapshot(out);
    assert.deepEqual([...second.keys()], [...first.keys()]);
    assert.notEqual(second.get('payment.crt.pem'), first.get('payment.crt.pem'));
  });

  describe('bad input: exit 2 with the code, nothing written', { concurrency: true }, () => {
    // Each case gets a private copy of the good CA directory to break.
    type Case = [name: string, code: string, setup: (ca: string) => Promise<string[]> | string[]];
    const base = (ca: string, ...more: string[]): string[] => ['--ca-dir', ca, '--service', 'payment', ...more];
    const otherKey = async (): Promise<string> => (await (await createTestTrustDomain()).issue('/x')).keyPem;
    const cases: Case[] = [
      ['service with a slash', 'AUTH_ERR_CLI_SERVICE_INVALID', (ca) => ['--ca-dir', ca, '--service', 'pay/ment']],
      ['service ".."', 'AUTH_ERR_CLI_SERVICE_INVALID', (ca) => ['--ca-dir', ca, '--service', '..']],
      ['service with a space', 'AUTH_ERR_CLI_SERVICE_INVALID', (ca) => ['--ca-dir', ca, '--service', 'pay ment']],
      [
        'service "ca" (would overwrite the CA files)',
        'AUTH_ERR_CLI_SERVICE_INVALID',
        (ca) => ['--ca-dir', ca, '--service', 'ca'],
      ],
      ['empty service', 'AUTH_ERR_CLI_USAGE', (ca) => ['--ca-dir', ca, '--service', '']],
      ['missing --service', 'AUTH_ERR_CLI_USAGE', (ca) => ['--ca-dir', ca]],
      ['missing --ca-dir', 'AUTH_ERR_CLI_USAGE', () => ['--service', 'payment']],
      [
        'bad --trust-domain',
        'AUTH_ERR_TRUST_DOMAIN_INVALID',
        (ca) => base(ca, '--trust-domain', 'spiffe://EXAMPLE.org'),
      ],
      [
        "--trust-domain other than the CA's",
        'AUTH_ERR_CLI_CA_INVALID',
        (ca) => base(ca, '--trust-domain', 'other.org'),
      ],
      ['bad --dns', 'AUTH_ERR_CLI_USAGE', (ca) => base(ca, '--dns', 'not a name')],
      ['bad --ttl', 'AUTH_ERR_CLI_DURATION_INVALID', (ca) => base(ca, '--ttl', '1.5h')],
      ['no such CA directory', 'AUTH_ERR_FILE_UNREADABLE', (ca) => base(join(ca, 'nope'))],
      [
        'CA key missing',
        'AUTH_ERR_FILE_UNREADABLE',
        async (ca) => {
          await rm(join(ca, 'ca.key.pem'));
          return base(ca);
        },
      ],
      [
        'CA key is a directory',
        'AUTH_ERR_FILE_UNREADABLE',
        async (ca) => {
          await rm(join(ca, 'ca.key.pem'));
          await mkdir(join(ca, 'ca.key.pem'));
          return base(ca);
        },
      ],
      [
        'CA certificate is not PEM',
        'AUTH_ERR_PEM_INVALID',
        async (ca) => {
          await writeFile(join(ca, 'ca.crt.pem'), 'hello\n');
          return base(ca);
        },
      ],
      [
        'CA certificate PEM holds garbage',
        'AUTH_ERR_CERT_INVALID',
        async (ca) => {
          await writeFile(join(ca, 'ca.crt.pem'), '-----BEGIN CERTIFICATE-----\nMAMCAQA=\n-----END CERTIFICATE-----\n');
          return base(ca);
        },
      ],
      [
        'CA key does not match the CA certificate',
        'AUTH_ERR_KEY_MISMATCH',
        async (ca) => {
          await writeFile(join(ca, 'ca.key.pem'), await otherKey());
          return base(ca);
        },
      ],
      [
        'CA key file holds a certificate',
        'AUTH_ERR_PEM_INVALID',
        async (ca) => {
          await cp(join(ca, 'ca.crt.pem'), join(ca, 'ca.key.pem'));
          return base(ca);
        },
      ],
      [
        'CA certificate is not a CA',
        'AUTH_ERR_CLI_CA_INVALID',
        async (ca) => {
          const leaf = await (await createTestTrustDomain()).issue('/not-a-ca');
          await writeFile(join(ca, 'ca.crt.pem'), leaf.certPem);
          await writeFile(join(ca, 'ca.key.pem'), leaf.keyPem);
          return base(ca);
        },
      ],
      [
        'ca.json is not JSON',
        'AUTH_ERR_CLI_CA_INVALID',
        async (ca) => {
          await writeFile(join(ca, 'ca.json'), '{trust_domain:');
          return base(ca);
        },
      ],
    ];

    const setupCa = async (): Promise<{ ca: string; out: string }> => {
      const parent = await tempDir();
      const ca = join(parent, 'ca');
      await cp(caDir, ca, { recursive: true });
      return { ca, out: join(parent, 'out') };
    };

    test('positive control: a good CA copy issues', async () => {
      const { ca, out } = await setupCa();
      ok(await run(['cert', 'issue', ...base(ca), '--dns', 'x.test', '--ttl', '1h', '--out-dir', out]));
    });
    for (const [name, code, setup] of cases) {
      test(name, async () => {
        const { ca, out } = await setupCa();
        const args = await setup(ca);
        const caBefore = await snapshot(ca);
        assertCliError(await run(['cert', 'issue', ...args, '--out-dir', out]), code);
        assert.deepEqual(await snapshot(out), new Map(), 'nothing written to --out-dir');
        assert.deepEqual(await snapshot(ca), caBefore, 'CA directory untouched');
      });
    }
  });
});

describe('regression: issue 17 #9, cert issue takes only DNS names as --dns and bounds the service name', () => {
  let caDir: string;
  before(async () => {
    caDir = await tempDir();
    ok(await run(['ca', 'create', '--trust-domain', 'example.org', '--out-dir', caDir]));
  });
  const label63 = 'a'.repeat(63);
  // Three labels of 63 and one of 61, with their dots: 253 characters, the most a DNS name may have.
  const name253 = [label63, label63, label63, 'b'.repeat(61)].join('.');

  test('dnsNameProblem: DNS names pass (positive controls first), every other kind is refused naming the rule', () => {
    for (const good of [
      'payment',
      'pay.internal',
      'a-b.example.com',
      'xn--bcher-kva.de',
      'Host.Example.COM',
      '3com.net',
      label63,
      name253,
    ]) {
      assert.equal(dnsNameProblem(good), undefined, good);
    }
    const bad: [string, RegExp][] = [
      ['10.0.0.1', /IP address.*IP address SANs are not supported/],
      ['::1', /IP address SANs are not supported/],
      ['[2001:db8::1]', /IP address SANs are not supported/],
      ['fe80::1%eth0', /IP address SANs are not supported/],
      ['1.2.3', /last label is all digits.*IP address/],
      ['*.example.com', /wildcards are not issued/],
      ['*', /wildcards are not issued/],
      ['a.*.example.com', /wildcards are not issued/],
      [`${label63}a.example.com`, /is 64 characters long, and a label has at most 63/],
      [`${name253}b`, /is 254 characters long, and a DNS name has at most 253/],
      ['example.com.', /trailing dot/],
      ['a..b', /empty label/],
      ['.a', /empty label/],
      ['-a.example', /"-a" is not letters, digits and "-"/],
      ['my_host', /"my_host" is not letters, digits and "-"/],
      ['bücher.de', /xn-- \(punycode\) form/],
      ['not a name', /is not letters, digits and "-"/],
      ['', /empty/],
    ];
    for (const [name, rule] of bad) assert.match(dnsNameProblem(name) ?? 'accepted', rule, JSON.stringify(name));
  });

  describe('over the CLI: exit 2 naming the value and the rule, nothing written', { concurrency: true }, () => {
    test('positive control: DNS names of the longest allowed label and name are issued', async () => {
      const out = join(await tempDir(), 'out');
      const args = ['--dns', `${label63}.example.com`, '--dns', name253];
      ok(await run(['cert', 'issue', '--ca-dir', caDir, '--service', 'payment', ...args, '--out-dir', out]));
      const svid = await loadSvid(out, 'payment');
      assert.deepEqual(dnsSansOf(svid), ['payment', 'localhost', `${label63}.example.com`, name253]);
    });
    const cases: [name: string, dns: string, message: RegExp][] = [
      ['an IPv4 literal', '10.0.0.1', /--dns "10\.0\.0\.1" is refused: it is an IP address.*not supported/],
      ['an IPv6 literal', '::1', /--dns "::1" is refused: it is an IP address.*not supported/],
      ['a wildcard', '*.example.com', /--dns "\*\.example\.com" is refused: wildcards are not issued/],
      ['a label over 63 characters', `${label63}a.example.com`, /a label has at most 63/],
      ['a name over 253 characters', `${name253}b`, /a DNS name has at most 253/],
    ];
    for (const [name, dns, message] of cases) {
      test(`--dns with ${name}`, async () => {
        const parent = await tempDir();
        const r = await run([
          'cert',
          'issue',
          '--ca-dir',
          caDir,
          '--service',
          'payment',
          '--dns',
          dns,
          '--out-dir',
          join(parent, 'out'),
        ]);
        assertCliError(r, 'AUTH_ERR_CLI_USAGE', message);
        assert.deepEqual(await snapshot(parent), new Map(), 'nothing written, --out-dir not even created');
      });
    }

    test(`a service name of ${MAX_SERVICE_NAME_BYTES} bytes is issued; one byte more is refused up front, not as "cannot write"`, async () => {
      const parent = await tempDir();
      const longest = 's'.repeat(MAX_SERVICE_NAME_BYTES);
      ok(await run(['cert', 'issue', '--ca-dir', caDir, '--service', longest, '--out-dir', join(parent, 'ok')]));
      assert.equal((await loadSvid(join(parent, 'ok'), longest)).id.toString(), `spiffe://example.org/${longest}`);
      for (const bytes of [MAX_SERVICE_NAME_BYTES + 1, 240, 3000]) {
        const r = await run([
          'cert',
          'issue',
          '--ca-dir',
          caDir,
          '--service',
          's'.repeat(bytes),
          '--out-dir',
          join(parent, 'out'),
        ]);
        assertCliError(
          r,
          'AUTH_ERR_CLI_SERVICE_INVALID',
          new RegExp(
            `invalid service name "s{40}"…: it is ${bytes} bytes long, and a service name may have at most ${MAX_SERVICE_NAME_BYTES}`,
          ),
        );
        assert.doesNotMatch(r.stderr, /cannot write|ENAMETOOLONG/);
      }
      assert.deepEqual([...(await snapshot(parent)).keys()], ['ok'], 'nothing written for the refused names');
    });

    test('dev-certs refuses an over-long name in --services before writing anything', async () => {
      const parent = await tempDir();
      const r = await run([
        'dev-certs',
        '--out-dir',
        join(parent, 'out'),
        '--services',
        `order,${'s'.repeat(MAX_SERVICE_NAME_BYTES + 1)}`,
      ]);
      assertCliError(r, 'AUTH_ERR_CLI_SERVICE_INVALID', `at most ${MAX_SERVICE_NAME_BYTES}`);
      assert.deepEqual(await snapshot(parent), new Map());
    });

    test('a service name that is no DNS name gets no DNS SAN of its own, and a warning; a DNS-name service keeps its SAN', async () => {
      const out = join(await tempDir(), 'out');
      const plain = ok(await run(['cert', 'issue', '--ca-dir', caDir, '--service', 'payment', '--out-dir', out]));
      assert.doesNotMatch(plain.stderr, /warning/);
      assert.deepEqual(dnsSansOf(await loadSvid(out, 'payment')), ['payment', 'localhost']);
      const odd = ok(await run(['cert', 'issue', '--ca-dir', caDir, '--service', 'My_Svc', '--out-dir', out]));
      assert.match(
        odd.stderr,
        /^warning: service name "My_Svc" is not a DNS name, so its certificate carries no DNS SAN for it: .*"my_svc"/m,
      );
      assert.deepEqual(dnsSansOf(await loadSvid(out, 'My_Svc')), ['localhost']);
      // dev-certs issues it the same way and keeps it on the next run.
      const dir = await tempDir();
      const first = ok(await run(['dev-certs', '--out-dir', dir, '--services', 'My_Svc', '--json']));
      assert.match(first.stderr, /^warning: service name "My_Svc" is not a DNS name/m);
      assert.deepEqual(dnsSansOf(await loadSvid(dir, 'My_Svc')), ['localhost']);
      assert.equal(
        (
          JSON.parse(ok(await run(['dev-certs', '--out-dir', dir, '--services', 'My_Svc', '--json'])).stdout) as {
            changed: boolean;
          }
        ).changed,
        false,
      );
    });

    test('an --out-dir whose name is too long for the file system is named as such', async () => {
      const parent = await tempDir();
      const r = await run([
        'cert',
        'issue',
        '--ca-dir',
        caDir,
        '--service',
        'payment',
        '--out-dir',
        join(parent, 'd'.repeat(300)),
      ]);
      assertCliError(r, 'AUTH_ERR_CLI_OUTPUT_UNWRITABLE', /too long for the file system \(a name may have 255 bytes\)/);
    });
  });
});

describe('spiffe-auth dev-certs', () => {
  interface DevReport {
    changed: boolean;
    trustDomain: string;
    files: { file: string; action: 'created' | 'renewed' | 'kept'; reason?: string; spiffeId?: string }[];
  }
  const devCerts = async (dir: string, ...more: string[]): Promise<DevReport> =>
    json(await run(['dev-certs', '--out-dir', dir, '--json', ...more])) as DevReport;
  const actions = (r: DevReport, dir: string): Record<string, string> =>
    Object.fromEntries(r.files.map((f) => [f.file.slice(dir.length + 1), f.action]));

  test('creates a CA and a certificate per service, all valid and chaining to the CA', async () => {
    const dir = join(await tempDir(), 'certs');
    const r = await devCerts(dir);
    assert.equal(r.changed, true);
    assert.equal(r.trustDomain, 'example.org');
    assert.deepEqual(new Set(Object.values(actions(r, dir))), new Set(['created']));
    assert.deepEqual(
      [...(await snapshot(dir)).keys()],
      [
        'ca.crt.pem',
        'ca.json',
        'ca.key.pem',
        'inventory.crt.pem',
        'inventory.key.pem',
        'order.crt.pem',
        'order.key.pem',
        'payment.crt.pem',
        'payment.key.pem',
      ],
    );
    const bundles = await bundleOf(dir, 'example.org');
    for (const service of ['order', 'payment', 'inventory']) {
      assert.equal(await modeOf(join(dir, `${service}.key.pem`)), 0o600);
      const svid = await loadSvid(dir, service);
      assert.equal(verifyAsService(svid.chainDer(), bundles).id.toString(), `spiffe://example.org/${service}`);
      assert.deepEqual(dnsSansOf(svid), [service, 'localhost']);
      assert.ok(svid.secondsToExpiry() > 719 * HOUR);
    }
  });

  test('is idempotent: a second run changes nothing and says so', async () => {
    const dir = await tempDir();
    await devCerts(dir);
    const first = await snapshot(dir);
    const r = await devCerts(dir);
    assert.equal(r.changed, false);
    assert.deepEqual(new Set(Object.values(actions(r, dir))), new Set(['kept']));
    assert.deepEqual(await snapshot(dir), first, 'every file byte-identical, no lock or temporary file left');
    const human = ok(await run(['dev-certs', '--out-dir', dir]));
    assert.match(human.stdout, /^kept\s+\S*order\.crt\.pem\s+spiffe:\/\/example\.org\/order/m);
    assert.match(human.stdout, /is up to date/);
  });

  test('renews a certificate expiring within --renew-within and keeps the others', async () => {
    const dir = await tempDir();
    await devCerts(dir);
    ok(
      await run(['cert', 'issue', '--ca-dir', dir, '--service', 'payment', '--out-dir', dir, '--ttl', '1h', '--force']),
    );
    const before = await snapshot(dir);
    const r = await devCerts(dir);
    const a = actions(r, dir);
    assert.equal(a['payment.crt.pem'], 'renewed');
    assert.equal(a['payment.key.pem'], 'renewed');
    assert.match(r.files.find((f) => f.file.endsWith('payment.crt.pem'))?.reason ?? '', /within --renew-within/);
    for (const f of ['ca.crt.pem', 'ca.key.pem', 'order.crt.pem', 'inventory.key.pem']) assert.equal(a[f], 'kept', f);
    const after = await snapshot(dir);
    assert.equal(after.get('order.crt.pem'), before.get('order.crt.pem'));
    assert.notEqual(after.get('payment.crt.pem'), before.get('payment.crt.pem'));
    assert.ok((await loadSvid(dir, 'payment')).secondsToExpiry() > 719 * HOUR);
    // And --renew-within shorter than what is left keeps it (positive control of the threshold).
    const fresh = await tempDir();
    await devCerts(fresh);
    ok(
      await run([
        'cert',
        'issue',
        '--ca-dir',
        fresh,
        '--service',
        'payment',
        '--out-dir',
        fresh,
        '--ttl',
        '3h',
        '--force',
      ]),
    );
    assert.equal(actions(await devCerts(fresh, '--renew-within', '2h'), fresh)['payment.crt.pem'], 'kept');
  });

  describe('reissues a certificate that is not good, leaving the others alone', { concurrency: true }, () => {
    const breakers: [string, RegExp, (dir: string) => Promise<void>][] = [
      [
        'unparseable certificate',
        /AUTH_ERR_(PEM|CERT)_INVALID/,
        (dir) => writeFile(join(dir, 'payment.crt.pem'), 'garbage'),
      ],
      ['missing key', /missing/, (dir) => rm(join(dir, 'payment.key.pem'))],
      [
        'key of another service',
        /AUTH_ERR_KEY_MISMATCH/,
        (dir) => cp(join(dir, 'order.key.pem'), join(dir, 'payment.key.pem')),
      ],
      [
        'certificate for another trust domain',
        /spiffe:\/\/other\.org\/payment, not spiffe:\/\/example\.org\/payment/,
        async (dir) =>
          writeIssued(
            dir,
            'payment',
            await (await createTestTrustDomain('other.org')).issue('/payment', { dnsNames: ['payment', 'localhost'] }),
          ),
      ],
      [
        'certificate from another CA',
        /does not verify against ca\.crt\.pem/,
        async (dir) =>
          writeIssued(
            dir,
            'payment',
            await (
              await createTestTrustDomain('example.org')
            ).issue('/payment', { dnsNames: ['payment', 'localhost'] }),
          ),
      ],
      [
        'regression: issue 17 #7, certificate whose extended key usage is serverAuth only',
        /does not verify against ca\.crt\.pem: leaf certificate has extended key usage \[serverAuth\].*TLS client/,
        async (dir) => {
          const ca = await CertificateAuthority.fromPem(
            await readFile(join(dir, 'ca.crt.pem'), 'utf8'),
            await readFile(join(dir, 'ca.key.pem'), 'utf8'),
          );
          const serverOnly = new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]);
          await writeIssued(
            dir,
            'payment',
            await ca.issueSvid('spiffe://example.org/payment', {
              dnsNames: ['payment', 'localhost'],
              extraExtensions: [serverOnly],
            }),
          );
        },
      ],
      [
        'certificate of another service',
        /spiffe:\/\/example\.org\/order, not/,
        async (dir) => {
          await cp(join(dir, 'order.crt.pem'), join(dir, 'payment.crt.pem'));
          await cp(join(dir, 'order.key.pem'), join(dir, 'payment.key.pem'));
        },
      ],
    ];
    for (const [name, reason, breakIt] of breakers) {
      test(name, async () => {
        const dir = await tempDir();
        await devCerts(dir);
        await breakIt(dir);
        const before = await snapshot(dir);
        const r = await devCerts(dir);
        const a = actions(r, dir);
        assert.equal(a['payment.crt.pem'], 'renewed');
        assert.match(r.files.find((f) => f.file.endsWith('payment.crt.pem'))?.reason ?? '', reason);
        assert.equal(a['order.crt.pem'], 'kept');
        assert.equal((await snapshot(dir)).get('order.key.pem'), before.get('order.key.pem'));
        verifyAsService((await loadSvid(dir, 'payment')).chainDer(), await bundleOf(dir, 'example.org'));
        assert.equal((await devCerts(dir)).changed, false, 'and the run after that changes nothing');
      });
    }
  });

  test('a new trust domain replaces the CA and reissues every certificate', async () => {
    const dir = await tempDir();
    await devCerts(dir);
    const r = await devCerts(dir, '--trust-domain', 'shop.test', '--services', 'order');
    assert.equal(r.trustDomain, 'shop.test');
    const a = actions(r, dir);
    assert.equal(a['ca.crt.pem'], 'renewed');
    assert.equal(a['order.crt.pem'], 'renewed');
    assert.deepEqual(JSON.parse(await readFile(join(dir, 'ca.json'), 'utf8')), { trust_domain: 'shop.test' });
    assert.equal(
      verifyAsService((await loadSvid(dir, 'order')).chainDer(), await bundleOf(dir, 'shop.test')).id.toString(),
      'spiffe://shop.test/order',
    );
    // Without --trust-domain the CA's own trust domain is kept.
    assert.equal((await devCerts(dir, '--services', 'order')).changed, false);
  });

  test('--services picks the services (comma-separated or repeated)', async () => {
    const dir = await tempDir();
    await devCerts(dir, '--services', 'cart,search', '--services', 'gateway');
    for (const s of ['cart', 'search', 'gateway'])
      assert.equal((await loadSvid(dir, s)).id.toString(), `spiffe://example.org/${s}`);
    assert.equal((await snapshot(dir)).has('order.crt.pem'), false);
  });

  test('services started together, each running dev-certs, end up with one CA', async () => {
    const dir = await tempDir();
    const runs = await Promise.all([1, 2, 3, 4].map(() => run(['dev-certs', '--out-dir', dir])));
    for (const r of runs) ok(r);
    const bundles = await bundleOf(dir, 'example.org');
    for (const s of ['order', 'payment', 'inventory']) verifyAsService((await loadSvid(dir, s)).chainDer(), bundles);
    assert.equal((await devCerts(dir)).changed, false);
    assert.ok(![...(await snapshot(dir)).keys()].some((n) => n.startsWith('.')), 'no lock or temporary file left');
  });

  describe('bad input: exit 2 with the code, nothing written', { concurrency: true }, () => {
    const cases: [string, string[], string][] = [
      ['bad service name', ['--services', 'order,pay/ment'], 'AUTH_ERR_CLI_SERVICE_INVALID'],
      ['empty service list', ['--services', ','], 'AUTH_ERR_CLI_USAGE'],
      ['bad trust domain', ['--trust-domain', 'exa mple.org'], 'AUTH_ERR_TRUST_DOMAIN_INVALID'],
      ['bad --renew-within', ['--renew-within', '-1h'], 'AUTH_ERR_CLI_USAGE'],
      ['bad --renew-within unit', ['--renew-within', '1w'], 'AUTH_ERR_CLI_DURATION_INVALID'],
      ['--renew-within not shorter than --ttl', ['--ttl', '24h', '--renew-within', '24h'], 'AUTH_ERR_CLI_USAGE'],
      ['unknown flag', ['--force'], 'AUTH_ERR_CLI_USAGE'],
    ];
    test('positive control', async () => {
      const dir = join(await tempDir(), 'out');
      await devCerts(dir, '--services', 'order', '--ttl', '48h', '--renew-within', '1h');
    });
    for (const [name, args, code] of cases) {
      test(name, async () => {
        const parent = await tempDir();
        assertCliError(await run(['dev-certs', '--out-dir', join(parent, 'out'), ...args]), code);
        assert.deepEqual(await snapshot(parent), new Map());
      });
    }
    test('an unreadable certificate is reported, not overwritten', async () => {
      const dir = await tempDir();
      await devCerts(dir);
      await rm(join(dir, 'payment.crt.pem'));
      await mkdir(join(dir, 'payment.crt.pem'));
      assertCliError(await run(['dev-certs', '--out-dir', dir]), 'AUTH_ERR_FILE_UNREADABLE', 'payment.crt.pem');
      assert.equal((await snapshot(dir)).get('payment.crt.pem'), '<dir>');
    });
  });
});

describe('spiffe-auth inspect', () => {
  let td: TestTrustDomain;
  let dir: string;
  before(async () => {
    td = await createTestTrustDomain('example.org');
    dir = await tempDir();
    ok(await run(['dev-certs', '--out-dir', dir, '--services', 'payment']));
  });

  // The CLI's --json output, typed by the report it is made from.
  interface InspectReport {
    file: string;
    certificates: CertificateReport[];
    svid: { valid: boolean; spiffeId: string | null; code: string | null; reason: string | null };
    key?: { matchesLeaf: boolean };
  }

  test('--json: the fields of an issued X.509-SVID', async () => {
    const file = join(dir, 'payment.crt.pem');
    const r = json(await run(['inspect', file, '--json'])) as InspectReport;
    assert.equal(r.file, file);
    assert.equal(r.certificates.length, 1);
    const c = r.certificates[0]!;
    const x = new X509Certificate(await readFile(file));
    assert.equal(c.spiffeId, 'spiffe://example.org/payment');
    assert.deepEqual(c.uriSans, ['spiffe://example.org/payment']);
    assert.deepEqual(c.dnsSans, ['payment', 'localhost']);
    assert.equal(c.subject, 'CN=payment');
    assert.equal(c.issuer, 'CN=example.org development root CA');
    assert.equal(c.serial, x.serialNumber);
    assert.equal(c.notAfter, x.validToDate.toISOString());
    assert.equal(c.notBefore, x.validFromDate.toISOString());
    assert.ok(Math.abs(c.secondsToExpiry - (x.validToDate.getTime() - Date.now()) / 1000) < 30);
    assert.equal(c.isCA, false);
    assert.deepEqual(c.keyUsage, ['digitalSignature']);
    assert.deepEqual(c.extKeyUsage, ['serverAuth', 'clientAuth']);
    assert.deepEqual(r.svid, { valid: true, spiffeId: 'spiffe://example.org/payment', code: null, reason: null });
  });

  test('human output says the leaf is a valid X.509-SVID; --key checks the pair', async () => {
    const r = ok(await run(['inspect', join(dir, 'payment.crt.pem'), '--key', join(dir, 'payment.key.pem')]));
    assert.match(r.stdout, /SPIFFE ID\s+spiffe:\/\/example\.org\/payment/);
    assert.match(r.stdout, /X\.509-SVID: valid, spiffe:\/\/example\.org\/payment/);
    assert.match(r.stdout, /matches the leaf/);
    assertCliError(
      await run(['inspect', join(dir, 'payment.crt.pem'), '--key', join(dir, 'ca.key.pem')]),
      'AUTH_ERR_KEY_MISMATCH',
    );
  });

  test('reads the chain from stdin with "-" (e.g. piped from kubectl)', async () => {
    const pem = await readFile(join(dir, 'payment.crt.pem'), 'utf8');
    const r = json(await run(['inspect', '-', '--json'], { stdin: pem })) as InspectReport;
    assert.equal(r.svid.spiffeId, 'spiffe://example.org/payment');
    assert.match(
      ok(await run(['check-expiry', '-'], { stdin: pem })).stdout,
      /The certificate is valid for longer than 72h/,
    );
    assertCliError(await run(['check-expiry', '-'], { stdin: 'not a certificate' }), 'AUTH_ERR_PEM_INVALID');
  });

  test('a CA certificate: shown, and not an X.509-SVID with the reason', async () => {
    const r = json(await run(['inspect', join(dir, 'ca.crt.pem'), '--json'])) as InspectReport;
    const ca = r.certificates[0]!;
    assert.equal(ca.isCA, true);
    assert.equal(ca.spiffeId, null);
    assert.ok(ca.keyUsage?.includes('keyCertSign'));
    assert.deepEqual(r.svid, {
      valid: false,
      spiffeId: null,
      code: 'AUTH_ERR_SVID_INVALID',
      reason: 'certificate contains no URI SAN',
    });
    assert.match(
      ok(await run(['inspect', join(dir, 'ca.crt.pem')])).stdout,
      /X\.509-SVID: not valid \(AUTH_ERR_SVID_INVALID\): certificate contains no URI SAN/,
    );
  });

  test('a chain through an intermediate, in PEM and in DER', async () => {
    const inter = await td.ca.issueIntermediate({ subject: 'CN=intermediate' });
    const issued = await inter.issueSvid('spiffe://example.org/orders', { dnsNames: ['orders'] });
    const pem = join(await tempDir(), 'chain.pem');
    await writeFile(pem, issued.certPem);
    const der = join(dirname(pem), 'chain.der');
    await writeFile(der, Buffer.concat(issued.chainDer));
    for (const file of [pem, der]) {
      const r = json(await run(['inspect', file, '--json'])) as InspectReport;
      assert.equal(r.certificates.length, 2);
      const intermediate = r.certificates[1]!;
      assert.equal(intermediate.isCA, true);
      assert.equal(intermediate.subject, 'CN=intermediate');
      assert.equal(r.svid.valid, true);
    }
  });

  test('an SVID rule broken, an expired and a not-yet-valid leaf: valid false, with the reason', async () => {
    const d = await tempDir();
    const cases: [IssuedCertificate, string, RegExp][] = [
      [
        await td.issue('/x', { uris: ['spiffe://example.org/a', 'spiffe://example.org/b'] }),
        'AUTH_ERR_SVID_INVALID',
        /more than one URI SAN/,
      ],
      [
        await td.issue('/old', {
          notBefore: new Date(Date.now() - 7200_000),
          notAfter: new Date(Date.now() - 3600_000),
        }),
        'AUTH_ERR_SVID_EXPIRED',
        /expired at/,
      ],
      [
        await td.issue('/new', { notBefore: new Date(Date.now() + 3600_000), ttlSeconds: 3600 }),
        'AUTH_ERR_SVID_EXPIRED',
        /not valid before/,
      ],
    ];
    for (const [i, [issued, code, reason]] of cases.entries()) {
      const file = join(d, `${i}.pem`);
      await writeFile(file, issued.certPem);
      const r = json(await run(['inspect', file, '--json'])) as InspectReport;
      assert.equal(r.svid.valid, false);
      assert.equal(r.svid.code, code);
      assert.match(r.svid.reason ?? '', reason);
    }
  });

  describe('bad input: exit 2 with the code', { concurrency: true }, () => {
    const cases: [string, string, (d: string) => Promise<string[]>][] = [
      ['no file argument', 'AUTH_ERR_CLI_USAGE', () => Promise.resolve([])],
      ['two file arguments', 'AUTH_ERR_CLI_USAGE', (d) => Promise.resolve([join(d, 'a'), join(d, 'b')])],
      ['missing file', 'AUTH_ERR_FILE_UNREADABLE', (d) => Promise.resolve([join(d, 'missing.pem')])],
      ['a directory', 'AUTH_ERR_FILE_UNREADABLE', (d) => Promise.resolve([d])],
      [
        'empty file',
        'AUTH_ERR_PEM_INVALID',
        async (d) => {
          await writeFile(join(d, 'empty.pem'), '');
          return [join(d, 'empty.pem')];
        },
      ],
      [
        'a key, not a certificate',
        'AUTH_ERR_PEM_INVALID',
        async (d) => {
          await cp(join(dir, 'payment.key.pem'), join(d, 'k.pem'));
          return [join(d, 'k.pem')];
        },
      ],
      [
        'broken base64',
        'AUTH_ERR_PEM_INVALID',
        async (d) => {
          await writeFile(join(d, 'b.pem'), '-----BEGIN CERTIFICATE-----\n%%%%\n-----END CERTIFICATE-----\n');
          return [join(d, 'b.pem')];
        },
      ],
      [
        'a PEM block that is not a certificate',
        'AUTH_ERR_CERT_INVALID',
        async (d) => {
          await writeFile(join(d, 'g.pem'), '-----BEGIN CERTIFICATE-----\nMAMCAQA=\n-----END CERTIFICATE-----\n');
          return [join(d, 'g.pem')];
        },
      ],
      [
        '--key missing',
        'AUTH_ERR_FILE_UNREADABLE',
        (d) => Promise.resolve([join(dir, 'payment.crt.pem'), '--key', join(d, 'none')]),
      ],
      [
        '--key not a key',
        'AUTH_ERR_PEM_INVALID',
        () => Promise.resolve([join(dir, 'payment.crt.pem'), '--key', join(dir, 'payment.crt.pem')]),
      ],
    ];
    test('positive control', async () => {
      ok(await run(['inspect', join(dir, 'payment.crt.pem'), '--key', join(dir, 'payment.key.pem'), '--json']));
    });
    for (const [name, code, args] of cases) {
      test(name, async () => {
        const d = await tempDir();
        const r = await run(['inspect', ...(await args(d))]);
        assertCliError(r, code);
        assert.equal(r.stdout, '', 'no partial report on stdout');
      });
    }
  });
});

describe('spiffe-auth check-expiry', () => {
  let dir: string;
  let td: TestTrustDomain;
  before(async () => {
    td = await createTestTrustDomain('example.org');
    dir = await tempDir();
    ok(await run(['dev-certs', '--out-dir', dir, '--services', 'order,payment']));
    ok(await run(['cert', 'issue', '--ca-dir', dir, '--service', 'short', '--ttl', '1h', '--out-dir', dir]));
  });

  test('exit 0 when every leaf outlives --within (default 72h)', async () => {
    const r = ok(
      await run(['check-expiry', join(dir, 'order.crt.pem'), join(dir, 'payment.crt.pem'), join(dir, 'ca.crt.pem')]),
    );
    assert.match(r.stdout, /^OK\s+\S*order\.crt\.pem\s+spiffe:\/\/example\.org\/order/m);
    assert.match(r.stdout, /All 3 certificates are valid for longer than 72h/);
  });

  test('a 1h certificate: exit 1 with --within 2h, exit 0 with --within 30m', async () => {
    const short = join(dir, 'short.crt.pem');
    const r = await run(['check-expiry', join(dir, 'order.crt.pem'), short, '--within', '2h']);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stdout, /^EXPIRING\s+\S*short\.crt\.pem/m);
    assert.match(r.stdout, /1 of 2 certificates not valid for longer than 2h: \S*short\.crt\.pem\n/);
    assert.doesNotMatch(r.stdout, /EXPIRING\s+\S*order/);
    ok(await run(['check-expiry', short, '--within', '30m']));
  });

  test('expired and not-yet-valid leaves: exit 1, each named; --json has the statuses', async () => {
    const d = await tempDir();
    await writeFile(
      join(d, 'old.pem'),
      (
        await td.issue('/old', {
          notBefore: new Date(Date.now() - 7200_000),
          notAfter: new Date(Date.now() - 3600_000),
        })
      ).certPem,
    );
    await writeFile(
      join(d, 'new.pem'),
      (await td.issue('/new', { notBefore: new Date(Date.now() + 3600_000), ttlSeconds: 3600 })).certPem,
    );
    const files = [join(d, 'old.pem'), join(d, 'new.pem'), join(dir, 'order.crt.pem')];
    const r = await run(['check-expiry', ...files]);
    assert.equal(r.code, 1);
    assert.match(r.stdout, /^EXPIRED\s+\S*old\.pem/m);
    assert.match(r.stdout, /^NOT-YET-VALID\s+\S*new\.pem/m);
    const j = await run(['check-expiry', ...files, '--json']);
    assert.equal(j.code, 1);
    const out = JSON.parse(j.stdout) as {
      ok: boolean;
      withinSeconds: number;
      results: { file: string; status: string; spiffeId: string | null; secondsToExpiry: number }[];
    };
    assert.equal(out.ok, false);
    assert.equal(out.withinSeconds, 72 * HOUR);
    assert.deepEqual(
      out.results.map((x) => [x.file, x.status, x.spiffeId]),
      [
        [files[0], 'expired', 'spiffe://example.org/old'],
        [files[1], 'not-yet-valid', 'spiffe://example.org/new'],
        [files[2], 'ok', 'spiffe://example.org/order'],
      ],
    );
    assert.ok((out.results[2]?.secondsToExpiry ?? 0) > 719 * HOUR);
  });

  describe('bad input: exit 2 with the code', { concurrency: true }, () => {
    test('positive control', async () => {
      ok(await run(['check-expiry', join(dir, 'order.crt.pem'), '--within', '0s']));
    });
    const cases: [string, () => string[], string][] = [
      ['no file', () => [], 'AUTH_ERR_CLI_USAGE'],
      ['missing file', () => [join(dir, 'missing.pem')], 'AUTH_ERR_FILE_UNREADABLE'],
      ['not a certificate', () => [join(dir, 'ca.json')], 'AUTH_ERR_PEM_INVALID'],
      ['bad --within', () => [join(dir, 'order.crt.pem'), '--within', '72'], 'AUTH_ERR_CLI_DURATION_INVALID'],
      ['unknown flag', () => [join(dir, 'order.crt.pem'), '--days', '3'], 'AUTH_ERR_CLI_USAGE'],
      // Bad input wins over an expiring certificate: the check could not be completed.
      [
        'a missing file beside an expiring one',
        () => [join(dir, 'short.crt.pem'), join(dir, 'missing.pem'), '--within', '2h'],
        'AUTH_ERR_FILE_UNREADABLE',
      ],
    ];
    for (const [name, args, code] of cases) {
      test(name, async () => {
        assertCliError(await run(['check-expiry', ...args()]), code);
      });
    }
  });
});

describe('spiffe-auth fetch', () => {
  let fake: FakeWorkloadApi;
  let td: TestTrustDomain;
  let partner: TestTrustDomain;
  before(async () => {
    td = await createTestTrustDomain('example.org');
    partner = await createTestTrustDomain('partner.org');
    fake = await FakeWorkloadApi.start();
    fake.setX509Context({
      svids: [{ svid: await td.svid('/payment'), hint: 'internal' }, { svid: await td.svid('/payment-admin') }],
      bundle: td.bundle,
      federatedBundles: [partner.bundle],
    });
  });
  after(async () => {
    await fake.close();
  });

  interface FetchReport {
    address: string;
    svids: {
      spiffeId: string;
      hint: string;
      default: boolean;
      notAfter: string;
      secondsToExpiry: number;
      chainLength: number;
    }[];
    bundles: { trustDomain: string; federated: boolean; authorities: number }[];
    written?: string[];
  }

  test("prints the SVIDs (ID, hint, expiry, chain length) and the bundles' trust domains", async () => {
    const r = ok(await run(['fetch', '--socket', fake.address]));
    assert.match(r.stdout, /\* spiffe:\/\/example\.org\/payment\s+hint "internal"\s+expires \S+ \(in 5\dm/);
    assert.match(r.stdout, /spiffe:\/\/example\.org\/payment-admin\s+hint \(none\)/);
    assert.match(r.stdout, /chain 1 certificate/);
    assert.match(r.stdout, /example\.org\s+own/);
    assert.match(r.stdout, /partner\.org\s+federated/);
  });

  test('--json, with the address from SPIFFE_ENDPOINT_SOCKET', async () => {
    const r = json(await run(['fetch', '--json'], { env: { SPIFFE_ENDPOINT_SOCKET: fake.address } })) as FetchReport;
    assert.equal(r.address, fake.address);
    assert.deepEqual(
      r.svids.map((s) => [s.spiffeId, s.hint, s.default, s.chainLength]),
      [
        ['spiffe://example.org/payment', 'internal', true, 1],
        ['spiffe://example.org/payment-admin', '', false, 1],
      ],
    );
    assert.ok((r.svids[0]?.secondsToExpiry ?? 0) > 3000);
    assert.deepEqual(r.bundles, [
      { trustDomain: 'example.org', federated: false, authorities: 1 },
      { trustDomain: 'partner.org', federated: true, authorities: 1 },
    ]);
    assert.equal(r.written, undefined);
  });

  test('--write DIR writes svid.pem, svid.key.pem (0600) and bundle.pem that verify together', async () => {
    const out = join(await tempDir(), 'svid');
    const r = json(await run(['fetch', '--socket', fake.address, '--write', out, '--json'])) as FetchReport;
    assert.deepEqual(r.written?.map((p) => p.slice(out.length + 1)).sort(), ['bundle.pem', 'svid.key.pem', 'svid.pem']);
    assert.deepEqual([...(await snapshot(out)).keys()], ['bundle.pem', 'svid.key.pem', 'svid.pem']);
    assert.equal(await modeOf(join(out, 'svid.key.pem')), 0o600);
    const svid = X509Svid.fromPem(
      await readFile(join(out, 'svid.pem'), 'utf8'),
      await readFile(join(out, 'svid.key.pem'), 'utf8'),
    );
    assert.equal(svid.id.toString(), 'spiffe://example.org/payment');
    const bundle = X509Bundle.fromPem('example.org', await readFile(join(out, 'bundle.pem'), 'utf8'));
    assert.ok(bundle.equals(td.bundle), "bundle.pem is our own trust domain's bundle");
    verifyAsService(svid.chainDer(), new X509BundleSet([bundle]));
    // A second fetch replaces the files (refresh), with the same modes.
    ok(await run(['fetch', '--socket', fake.address, '--write', out]));
    assert.equal(await modeOf(join(out, 'svid.key.pem')), 0o600);
    assert.deepEqual([...(await snapshot(out)).keys()], ['bundle.pem', 'svid.key.pem', 'svid.pem']);
  });

  describe('bad input or no agent: exit 2 with the code, nothing written', { concurrency: true }, () => {
    const cases: [string, string, (out: string) => { args: string[]; env?: NodeJS.ProcessEnv }][] = [
      [
        'no address and no SPIFFE_ENDPOINT_SOCKET',
        'AUTH_ERR_WORKLOAD_ENDPOINT_MISSING',
        (out) => ({ args: ['--write', out], env: { SPIFFE_ENDPOINT_SOCKET: undefined } }),
      ],
      [
        'an http:// address',
        'AUTH_ERR_WORKLOAD_ENDPOINT_INVALID',
        (out) => ({ args: ['--socket', 'http://localhost:8081', '--write', out] }),
      ],
      [
        'a relative unix path',
        'AUTH_ERR_WORKLOAD_ENDPOINT_INVALID',
        (out) => ({ args: ['--socket', 'unix:agent.sock', '--write', out] }),
      ],
      [
        'no agent on the socket',
        'AUTH_ERR_WORKLOAD_UNAVAILABLE',
        (out) => ({ args: ['--socket', `unix://${join(dirname(out), 'none.sock')}`, '--write', out] }),
      ],
      [
        'bad --timeout',
        'AUTH_ERR_CLI_DURATION_INVALID',
        (out) => ({ args: ['--socket', fake.address, '--timeout', 'soon', '--write', out] }),
      ],
      ['stray argument', 'AUTH_ERR_CLI_USAGE', (out) => ({ args: ['--socket', fake.address, 'svid', '--write', out] })],
    ];
    test('positive control', async () => {
      const out = join(await tempDir(), 'svid');
      ok(await run(['fetch', '--socket', fake.address, '--timeout', '5s', '--write', out]));
    });
    for (const [name, code, setup] of cases) {
      test(name, async () => {
        const parent = await tempDir();
        const { args, env } = setup(join(parent, 'svid'));
        assertCliError(await run(['fetch', ...args], env ? { env } : {}), code);
        assert.deepEqual(await snapshot(parent), new Map());
      });
    }
  });
});
