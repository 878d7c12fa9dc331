// Builds what `npm pack` ships: JavaScript and .d.ts from src/ into dist/
// (tsc, tsconfig.build.json), plus the Workload API .proto the client loads
// at run time. `--clean` only removes dist/ (postpack), so no stale build
// lingers in the workspace, where the sources run as they are.
//
// tsc rewrites the sources' relative `.ts` specifiers to `.js` in the
// JavaScript (rewriteRelativeImportExtensions) but leaves them in the .d.ts
// files; those are rewritten here, so a consumer's TypeScript needs no
// allowImportingTsExtensions.
import { spawnSync } from 'node:child_process';
import { copyFileSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const pkgDir = fileURLToPath(new URL('..', import.meta.url));
const dist = fileURLToPath(new URL('../dist/', import.meta.url));

rmSync(dist, { recursive: true, force: true });
if (!process.argv.includes('--clean')) {
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  const r = spawnSync(process.execPath, [tsc, '-p', 'tsconfig.build.json'], { cwd: pkgDir, stdio: 'inherit' });
  if (r.status !== 0) {
    process.stderr.write(`@shop/auth build: tsc exited ${r.status ?? r.signal}\n`);
    process.exit(1);
  }
  for (const entry of readdirSync(dist, { recursive: true, encoding: 'utf8' })) {
    if (!entry.endsWith('.d.ts')) continue;
    const file = `${dist}${entry}`;
    const text = readFileSync(file, 'utf8');
    writeFileSync(file, text.replace(/(["'])(\.\.?\/[^"']*?)\.ts\1/g, '$1$2.js$1'));
  }
  copyFileSync(
    fileURLToPath(new URL('../src/workloadapi/workload.proto', import.meta.url)),
    `${dist}workloadapi/workload.proto`,
  );
}
