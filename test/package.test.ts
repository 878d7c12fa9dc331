// @shop/auth as a package others install: `npm pack -w libs/auth` gives
// compiled JavaScript and .d.ts, a scratch project outside the workspace
// installs the tarball (its dependencies from the npm registry), and an mTLS
// server and client written against the public entries run through it on
// Node 22 and on Node 24, both from the npm `node` package. The PKI is made
// here with the workspace's test support; it is not part of the tarball.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createTestTrustDomain } from '@shop/auth-testing';
import {
  NODE_22,
  ROOT,
  installScratch,
  nodeBinary,
  outsideEnv,
  packAuth,
  readJson,
  run,
  type Packed,
} from '../scripts/package-scratch.ts';

// The script a user would write: only the public entries, plain JavaScript.
const APP = `import { authorizeId, createIdentitySource } from '@shop/auth';
import { fastifyMtlsOptions, spiffeAuth } from '@shop/auth/fastify';
import { createMtlsDispatcher } from '@shop/auth/undici';
import Fastify from 'fastify';
import { request } from 'undici';

const pki = process.argv[2];
const sourceOf = (name) =>
  createIdentitySource({
    env: {
      TLS_CERT_FILE: \`\${pki}/\${name}.crt.pem\`,
      TLS_KEY_FILE: \`\${pki}/\${name}.key.pem\`,
      TLS_CA_FILE: \`\${pki}/ca.crt.pem\`,
    },
  });

const serverSource = await sourceOf('server');
const app = Fastify({ https: fastifyMtlsOptions(serverSource) });
await app.register(spiffeAuth, { source: serverSource });
app.get('/hello', { config: { spiffe: { allow: ['spiffe://example.org/client'] } } }, (req) => ({
  caller: req.peer?.id.toString(),
}));
await app.listen({ host: '127.0.0.1', port: 0 });
const { port } = app.server.address();

async function call(name) {
  const source = await sourceOf(name);
  const dispatcher = createMtlsDispatcher({ source, authorize: authorizeId('spiffe://example.org/server') });
  try {
    const res = await request(\`https://127.0.0.1:\${port}/hello\`, { dispatcher });
    return { status: res.statusCode, body: await res.body.json() };
  } finally {
    await dispatcher.close();
    await source.close();
  }
}

const result = { node: process.version, allowed: await call('client'), refused: await call('intruder') };
await app.close();
await serverSource.close();
process.stdout.write(JSON.stringify(result) + '\\n');
`;

// Node 24: the version the workspace itself runs on (the root's `node` devDependency).
const NODE_24 = (await readJson<{ devDependencies: { node: string } }>(join(ROOT, 'package.json'))).devDependencies
  .node;

interface AppResult {
  node: string;
  allowed: { status: number; body: { caller?: string } };
  refused: { status: number; body: { code?: string; caller?: string; message?: string } };
}

describe('@shop/auth from its tarball, outside the workspace', () => {
  let tmp: string;
  let packed: Packed;
  let project: string;
  let pki: string;
  const abort = new AbortController();

  let workspaceManifest: string;
  let manifestAfterPack: string;
  let distAfterPack: boolean;

  before(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'shop-auth-pkg-'));
    workspaceManifest = await readFile(join(ROOT, 'libs/auth/package.json'), 'utf8');
    packed = await packAuth(tmp);
    manifestAfterPack = await readFile(join(ROOT, 'libs/auth/package.json'), 'utf8');
    distAfterPack = existsSync(join(ROOT, 'libs/auth/dist'));
    project = join(tmp, 'project');
    await installScratch(project, packed.tarball, { fastify: '^5.0.0', undici: '^8.0.0' });
    await writeFile(join(project, 'app.mjs'), APP);

    pki = join(tmp, 'pki');
    await mkdir(pki);
    const td = await createTestTrustDomain('example.org');
    await writeFile(join(pki, 'ca.crt.pem'), td.bundle.toPem());
    for (const name of ['server', 'client', 'intruder']) {
      const issued = await td.issue(`/${name}`);
      await writeFile(join(pki, `${name}.crt.pem`), issued.certPem);
      await writeFile(join(pki, `${name}.key.pem`), issued.keyPem, { mode: 0o600 });
    }
  });

  after(async () => {
    abort.abort(); // a script still running (a failed assertion elsewhere) is killed
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  test('the tarball holds compiled JavaScript, .d.ts and docs, no sources, CLI or tests', () => {
    const files = packed.files;
    for (const entry of ['index', 'fastify', 'undici', 'grpc', 'workloadapi', 'x509']) {
      assert.ok(files.includes(`dist/${entry}.js`), `dist/${entry}.js in ${files.join(', ')}`);
      assert.ok(files.includes(`dist/${entry}.d.ts`), `dist/${entry}.d.ts`);
    }
    assert.ok(files.includes('dist/workloadapi/workload.proto'), 'the Workload API .proto the client loads');
    assert.ok(files.includes('README.md') && files.includes('package.json'));
    const stray = files.filter(
      (f) => !(f.startsWith('dist/') || f.startsWith('docs/') || f === 'README.md' || f === 'package.json'),
    );
    assert.deepEqual(stray, [], 'only dist/, docs/, README.md and package.json');
    assert.deepEqual(
      files.filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts')),
      [],
      'no TypeScript sources (Node does not strip types under node_modules)',
    );
    const toolOrTest = (f: string): boolean => /(^|\/)(cli|dev-ca|test|testing)(\/|\.)/.test(f);
    assert.ok(toolOrTest('dist/cli/main.js') && !toolOrTest('dist/workloadapi/client.js'), 'control of the filter');
    assert.deepEqual(files.filter(toolOrTest), [], 'no CLI, development CA or test support');
  });

  test('the workspace keeps its manifest (exports to the TypeScript sources) and no dist/ after the pack', () => {
    assert.match(workspaceManifest, /"\.\/fastify": "\.\/src\/fastify\.ts"/, 'positive control: the sources');
    assert.equal(manifestAfterPack, workspaceManifest);
    assert.equal(distAfterPack, false);
  });

  test('the installed manifest: exports to dist/, runtime dependencies without the CLI’s, engines for Node 22 and 24', async () => {
    const pkg = await readJson<{
      dependencies: Record<string, string>;
      engines: { node: string };
      bin?: unknown;
      exports: Record<string, unknown>;
    }>(join(project, 'node_modules', '@shop', 'auth', 'package.json'));
    assert.deepEqual(pkg.exports['./fastify'], { types: './dist/fastify.d.ts', default: './dist/fastify.js' });
    assert.deepEqual(pkg.exports['.'], { types: './dist/index.d.ts', default: './dist/index.js' });
    assert.ok('@grpc/grpc-js' in pkg.dependencies, 'positive control: a real runtime dependency is listed');
    for (const dep of ['@peculiar/x509', 'reflect-metadata']) assert.ok(!(dep in pkg.dependencies), dep);
    assert.equal(pkg.bin, undefined, 'no spiffe-auth bin');
    assert.equal(pkg.engines.node, '^22.19.0 || >=24');
    const d = await readFile(join(project, 'node_modules', '@shop', 'auth', 'dist', 'index.d.ts'), 'utf8');
    assert.match(d, /from '\.\/spiffeid\/spiffe-id\.js'/, '.d.ts import .js files, as a consumer resolves them');
  });

  for (const version of [NODE_22, NODE_24]) {
    test(`Node ${version}: an allowed call gets 200 with the caller's SPIFFE ID, a refused one 403 naming it`, async () => {
      const node = await nodeBinary(version);
      const { stdout } = await run(node, ['app.mjs', pki], {
        cwd: project,
        env: outsideEnv(),
        timeoutMs: 120_000,
        signal: abort.signal,
      });
      const result = JSON.parse(stdout.trim()) as AppResult;
      assert.equal(result.node, `v${version}`);
      // Positive control first: the allowed client is served and named.
      assert.equal(result.allowed.status, 200, JSON.stringify(result.allowed));
      assert.equal(result.allowed.body.caller, 'spiffe://example.org/client');
      assert.equal(result.refused.status, 403, JSON.stringify(result.refused));
      assert.equal(result.refused.body.code, 'AUTH_ERR_PEER_UNAUTHORIZED');
      assert.equal(result.refused.body.caller, 'spiffe://example.org/intruder');
    });
  }
});
