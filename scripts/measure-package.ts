// Cold import time and installed size of @shop/auth, now and at an earlier
// commit (docs/performance.md, "The package"). Usage:
//   npm exec -- node scripts/measure-package.ts --before <commit> [--runs 10]
// Sizes: each version is packed with `npm pack` and installed into a scratch
// project (dependencies from the npm registry); installed size is that
// project's node_modules (the package plus its production dependencies).
// Import time: a fresh Node process per import, timing `await import(entry)`
// inside it; versions and entries alternate within each round, so a busy
// machine slows them alike.
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import {
  NODE_22,
  ROOT,
  duBytes,
  installScratch,
  nodeBinary,
  outsideEnv,
  packAuth,
  readJson,
} from './package-scratch.ts';

const { values } = parseArgs({ options: { before: { type: 'string' }, runs: { type: 'string', default: '10' } } });
const runs = Number(values.runs);
if (values.before === undefined || !Number.isInteger(runs) || runs < 1) {
  process.stderr.write('usage: node scripts/measure-package.ts --before <commit> [--runs <n ≥ 1>]\n');
  process.exit(2);
}
const node24 = process.execPath;
const node22 = await nodeBinary(NODE_22);
const tmp = await mkdtemp(join(tmpdir(), 'shop-auth-measure-'));
try {
  // Before: the library's folder at that commit, beside this checkout's node_modules (same dependency versions).
  const old = join(tmp, 'old');
  execFileSync('sh', ['-c', `mkdir -p "${old}" && git archive "${values.before}" libs/auth | tar -x -C "${old}"`], {
    cwd: ROOT,
  });
  execFileSync('ln', ['-s', join(ROOT, 'node_modules'), join(old, 'node_modules')]);
  const oldPack = JSON.parse(
    execFileSync('npm', ['pack', '--json', '--pack-destination', tmp], {
      cwd: join(old, 'libs', 'auth'),
      env: outsideEnv(),
      encoding: 'utf8',
    }),
  ) as { filename: string; size: number; unpackedSize: number }[];
  const beforeInfo = oldPack[0];
  if (!beforeInfo) throw new Error('npm pack of the old package printed nothing');
  const beforeProject = join(tmp, 'before');
  await installScratch(beforeProject, join(tmp, beforeInfo.filename));

  const after = await packAuth(tmp);
  const afterProject = join(tmp, 'after');
  await installScratch(afterProject, after.tarball);

  const packagesIn = (project: string): number =>
    execFileSync('npm', ['ls', '--all', '--omit=dev', '--parseable'], {
      cwd: project,
      env: outsideEnv(),
      encoding: 'utf8',
    })
      .trim()
      .split('\n').length - 1;
  const deps = async (project: string): Promise<string[]> =>
    Object.keys(
      (await readJson<{ dependencies: Record<string, string> }>(join(project, 'node_modules/@shop/auth/package.json')))
        .dependencies,
    );
  process.stdout.write(
    `${JSON.stringify(
      {
        before: {
          tarballBytes: beforeInfo.size,
          unpackedBytes: beforeInfo.unpackedSize,
          nodeModulesBytes: await duBytes(join(beforeProject, 'node_modules')),
          packages: packagesIn(beforeProject),
          dependencies: await deps(beforeProject),
        },
        after: {
          tarballBytes: after.size,
          unpackedBytes: after.unpackedSize,
          nodeModulesBytes: await duBytes(join(afterProject, 'node_modules')),
          packages: packagesIn(afterProject),
          dependencies: await deps(afterProject),
        },
      },
      null,
      2,
    )}\n`,
  );

  const importMs = (node: string, cwd: string, spec: string, env: NodeJS.ProcessEnv): number => {
    const code = `const t = performance.now(); await import(${JSON.stringify(spec)}); process.stdout.write(String(performance.now() - t));`;
    return Number(execFileSync(node, ['--input-type=module', '-e', code], { cwd, env, encoding: 'utf8' }));
  };
  const sources = outsideEnv();
  const cases: Record<string, () => number> = {
    'before, sources (Node 24): @shop/auth': () =>
      importMs(node24, old, join(old, 'libs/auth/src/index.ts'), outsideEnv()),
  };
  for (const entry of ['', '/fastify', '/undici', '/grpc', '/workloadapi', '/x509']) {
    const spec = `@shop/auth${entry}`;
    cases[`after, sources (Node 24): ${spec}`] = () => importMs(node24, ROOT, spec, sources);
    cases[`after, tarball (Node 24): ${spec}`] = () => importMs(node24, afterProject, spec, outsideEnv());
    cases[`after, tarball (Node 22): ${spec}`] = () => importMs(node22, afterProject, spec, outsideEnv());
  }
  const samples: Record<string, number[]> = {};
  for (let i = 0; i < runs; i++) for (const [name, f] of Object.entries(cases)) (samples[name] ??= []).push(f());
  for (const [name, ms] of Object.entries(samples)) {
    const s = [...ms].sort((a, b) => a - b);
    const median = ((s[Math.floor((s.length - 1) / 2)] ?? 0) + (s[Math.ceil((s.length - 1) / 2)] ?? 0)) / 2;
    process.stdout.write(
      `${name}\tmedian ${median.toFixed(0)} ms\tmin–max ${(s[0] ?? 0).toFixed(0)}–${(s.at(-1) ?? 0).toFixed(0)} ms\n`,
    );
  }
} finally {
  await rm(tmp, { recursive: true, force: true });
}
