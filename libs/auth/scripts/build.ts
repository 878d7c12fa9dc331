// Builds what `npm pack` ships, and only for as long as the pack runs.
//
// In this repository every entry of package.json `exports` points at a
// TypeScript source (./src/*.ts): services, scripts, tests and the CLI run
// them as they are (Node strips the types), with no build step, whether
// started by npm or by a bare `node`. Node does not strip types under
// node_modules, so the tarball must hold JavaScript and point its exports
// there. Hence, around `npm pack` (which packs the package.json on disk at
// that moment):
//   --pack     (prepack)  tsc emits JavaScript and .d.ts into dist/
//                         (tsconfig.build.json), the Workload API .proto is
//                         copied beside the client, and package.json is
//                         rewritten: every ./src/X.ts export becomes
//                         { types: ./dist/X.d.ts, default: ./dist/X.js }. The
//                         workspace manifest is kept as package.workspace.json.
//   --restore  (postpack) puts the workspace manifest back and removes dist/.
// A pack that died in between leaves package.workspace.json; the next --pack
// restores it first, so the published manifest is always made from the
// workspace one. With no flag it only builds dist/ (to look at the output).
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const pkgDir = fileURLToPath(new URL('..', import.meta.url));
const dist = `${pkgDir}dist/`;
const manifest = `${pkgDir}package.json`;
const saved = `${pkgDir}package.workspace.json`;

function restore(): void {
  if (existsSync(saved)) renameSync(saved, manifest);
  rmSync(dist, { recursive: true, force: true });
}

function build(): void {
  rmSync(dist, { recursive: true, force: true });
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  const r = spawnSync(process.execPath, [tsc, '-p', 'tsconfig.build.json'], { cwd: pkgDir, stdio: 'inherit' });
  if (r.status !== 0) {
    process.stderr.write(`@shop/auth build: tsc exited ${r.status ?? r.signal}\n`);
    process.exit(1);
  }
  // tsc rewrites the relative `.ts` specifiers to `.js` in the JavaScript
  // (rewriteRelativeImportExtensions) but not in the .d.ts files; a consumer's
  // TypeScript should not need allowImportingTsExtensions.
  for (const entry of readdirSync(dist, { recursive: true, encoding: 'utf8' })) {
    if (!entry.endsWith('.d.ts')) continue;
    const file = `${dist}${entry}`;
    writeFileSync(file, readFileSync(file, 'utf8').replace(/(["'])(\.\.?\/[^"']*?)\.ts\1/g, '$1$2.js$1'));
  }
  copyFileSync(`${pkgDir}src/workloadapi/workload.proto`, `${dist}workloadapi/workload.proto`);
}

/** publishedExports maps each ./src/X.ts export to its compiled file and declarations. */
function publishedExports(exports: Record<string, string>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, target] of Object.entries(exports)) {
    const m = /^\.\/src\/(.+)\.ts$/.exec(target);
    out[key] = m ? { types: `./dist/${m[1] ?? ''}.d.ts`, default: `./dist/${m[1] ?? ''}.js` } : target;
  }
  return out;
}

if (process.argv.includes('--restore')) {
  restore();
} else if (process.argv.includes('--pack')) {
  restore();
  build();
  const text = readFileSync(manifest, 'utf8');
  const pkg = JSON.parse(text) as { exports: Record<string, string> };
  writeFileSync(saved, text);
  writeFileSync(manifest, `${JSON.stringify({ ...pkg, exports: publishedExports(pkg.exports) }, null, 2)}\n`);
} else {
  build();
}
