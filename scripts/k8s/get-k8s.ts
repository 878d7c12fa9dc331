// Makes the binaries of a single-node Kubernetes available, built with the
// local Go toolchain from modules the Go module proxy serves, and cached
// outside the repository keyed by version (built only when missing):
//   kubernetes/v<ver>/bin/   kube-apiserver, kube-controller-manager,
//                            kube-scheduler, kubelet, kube-proxy, kubectl
//   helm/v<ver>/helm
//   coredns/v<ver>-shop/coredns                   (Service DNS; the Corefile's plugins only)
//   spire-controller-manager/v<ver>/spire-controller-manager, crd/*.yaml
//   crictl/v<ver>/crictl                          (optional: --crictl)
// all under ~/.cache/spiffe-shop (XDG_CACHE_HOME respected). Prints the
// paths as JSON on stdout. Every binary is static (CGO_ENABLED=0), so the
// same files run on the host and in FROM scratch images.
//
//   node scripts/k8s/get-k8s.ts [--only helm] [--crictl]
import { spawn } from 'node:child_process';
import { access, cp, mkdir, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { corefilePlugins } from './coredns.ts';

/** KUBERNETES_VERSION is the pinned Kubernetes release (k8s.io/kubernetes module). */
export const KUBERNETES_VERSION = '1.34.4';
/** HELM_VERSION is the pinned Helm v3 release (helm.sh/helm/v3 module). */
export const HELM_VERSION = '3.19.5';
/** COREDNS_VERSION is the pinned CoreDNS release (github.com/coredns/coredns module). */
export const COREDNS_VERSION = '1.14.7';
/**
 * COREDNS_BUILD names the project's CoreDNS build (its cache folder and image
 * tag): the release with only the Corefile's plugins compiled in. A new name,
 * so a full build cached under the release's own version is never taken for it.
 */
export const COREDNS_BUILD = `${COREDNS_VERSION}-shop`;
/**
 * SPIRE_CONTROLLER_MANAGER_VERSION is the pinned SPIRE Controller Manager; v0.7.0
 * is built against spire-api-sdk v1.15.2, the API of SPIRE 1.15.
 */
export const SPIRE_CONTROLLER_MANAGER_VERSION = '0.7.0';
/** CRICTL_VERSION is the pinned crictl (sigs.k8s.io/cri-tools), matching Kubernetes' minor. */
export const CRICTL_VERSION = '1.34.0';

/** KUBERNETES_BINARIES are the commands built from k8s.io/kubernetes. */
export const KUBERNETES_BINARIES = [
  'kube-apiserver',
  'kube-controller-manager',
  'kube-scheduler',
  'kubelet',
  'kube-proxy',
  'kubectl',
] as const;

function log(msg: string): void {
  process.stderr.write(`get-k8s: ${msg}\n`);
}

/** cacheRoot is ~/.cache/spiffe-shop (or under XDG_CACHE_HOME), shared with get-spire. */
export function cacheRoot(): string {
  return join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'spiffe-shop');
}

/** toolDir is the cache directory of one tool at one version. */
export function toolDir(tool: string, version: string): string {
  return join(cacheRoot(), tool, `v${version}`);
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}

function goEnv(): NodeJS.ProcessEnv {
  const path = process.env.PATH ?? '';
  return {
    ...process.env,
    CGO_ENABLED: '0',
    PATH: path.split(':').includes('/usr/local/go/bin') ? path : `${path}:/usr/local/go/bin`,
  };
}

/** sh runs a command, keeps the tail of its output, and fails with it. */
async function sh(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<string> {
  return new Promise<string>((resolveRun, reject) => {
    const p = spawn(cmd, args, { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let tail = '';
    p.stdout.on('data', (b: Buffer) => {
      out += b.toString();
      tail = (tail + b.toString()).slice(-4000);
    });
    p.stderr.on('data', (b: Buffer) => {
      tail = (tail + b.toString()).slice(-4000);
      if (process.env.GET_K8S_VERBOSE) process.stderr.write(b);
    });
    p.once('error', reject);
    p.once('exit', (code) => {
      if (code === 0) resolveRun(out);
      else reject(new Error(`${cmd} ${args.join(' ')} exited with ${String(code)}:\n${tail}`));
    });
  });
}

async function answers(bin: string, args: string[]): Promise<string | undefined> {
  try {
    return (await sh(bin, args)).trim();
  } catch {
    return undefined;
  }
}

async function moduleDir(mod: string, version: string): Promise<string> {
  const info = JSON.parse(await sh('go', ['mod', 'download', '-json', `${mod}@v${version}`], { env: goEnv() })) as {
    Dir?: string;
    Error?: string;
  };
  if (!info.Dir) throw new Error(`go mod download ${mod}@v${version} failed: ${info.Error ?? 'no module directory'}`);
  return info.Dir;
}

/**
 * installInto builds into a scratch directory beside `final` and renames it
 * into place, so a directory that exists is always complete (an interrupted
 * or concurrent build never leaves half a cache).
 */
async function installInto(final: string, build: (out: string) => Promise<void>): Promise<void> {
  const partial = `${final}.partial-${process.pid}`;
  await rm(partial, { recursive: true, force: true });
  await mkdir(partial, { recursive: true });
  try {
    await build(partial);
    await rm(final, { recursive: true, force: true });
    await rename(partial, final);
  } finally {
    await rm(partial, { recursive: true, force: true });
  }
}

/** goInstallInto builds `pkg@version` with `go install` (static, trimmed, stripped plus `ldflags`) into the cache folder `dir`. */
function goInstallInto(dir: string, pkgAtVersion: string, ldflags = ''): Promise<void> {
  return installInto(dir, (out) =>
    sh('go', ['install', '-trimpath', '-ldflags', `-s -w ${ldflags}`.trim(), pkgAtVersion], {
      cwd: tmpdir(),
      env: { ...goEnv(), GOBIN: out },
    }).then(() => undefined),
  );
}

async function timed<T>(what: string, f: () => Promise<T>): Promise<T> {
  const t0 = Date.now();
  const r = await f();
  log(`${what} built in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  return r;
}

/** getHelm returns the path of helm, building helm.sh/helm/v3 when missing. */
export async function getHelm(): Promise<string> {
  const dir = toolDir('helm', HELM_VERSION);
  const bin = join(dir, 'helm');
  if ((await answers(bin, ['version', '--short']))?.startsWith(`v${HELM_VERSION}`)) return bin;
  log(`building helm v${HELM_VERSION} from helm.sh/helm/v3 (a few minutes, once per machine)`);
  await timed('helm', () =>
    goInstallInto(
      dir,
      `helm.sh/helm/v3/cmd/helm@v${HELM_VERSION}`,
      `-X helm.sh/helm/v3/internal/version.version=v${HELM_VERSION}`,
    ),
  );
  return bin;
}

/** corednsPlugins lists the plugins a CoreDNS binary reports with `-plugins`, sorted (undefined when it does not run). */
export async function corednsPlugins(bin: string): Promise<string[] | undefined> {
  const out = await answers(bin, ['-plugins']);
  if (out === undefined) return undefined;
  return out
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => /^[a-z0-9_]+$/.test(l))
    .sort();
}

/**
 * COREDNS_PULLED_IN are plugins the kubernetes plugin imports itself (for its
 * metadata and zone transfers): they register, so `-plugins` lists them, but
 * they stay inert while the Corefile does not name them.
 */
export const COREDNS_PULLED_IN = ['metadata', 'transfer'];

/**
 * corednsMain is the Go main package of the trimmed CoreDNS: it imports only
 * the `plugins` (names from the release's plugin.cfg, `name:package` lines,
 * whose order is the order plugins run in) and sets dnsserver.Directives to
 * them in that order. CoreDNS's own main imports core/plugin, which pulls in
 * every plugin and its cloud SDKs (route53, azure, clouddns, etcd, …): 1382
 * packages against 781 here.
 */
export function corednsMain(pluginCfg: string, plugins: string[]): string {
  const order: { name: string; pkg: string }[] = [];
  for (const line of pluginCfg.split('\n')) {
    const m = /^([a-z0-9_]+):(\S+)$/.exec(line.trim());
    if (m && plugins.includes(m[1] as string)) order.push({ name: m[1] as string, pkg: m[2] as string });
  }
  const missing = plugins.filter((p) => !order.some((o) => o.name === p));
  if (missing.length > 0)
    throw new Error(`CoreDNS v${COREDNS_VERSION}'s plugin.cfg has no plugin ${missing.join(', ')}`);
  const importPath = (pkg: string): string => (pkg.includes('/') ? pkg : `github.com/coredns/coredns/plugin/${pkg}`);
  return [
    "// Code generated by scripts/k8s/get-k8s.ts: CoreDNS with the local Corefile's plugins only.",
    'package main',
    '',
    'import (',
    '\t"github.com/coredns/coredns/core/dnsserver"',
    '\t"github.com/coredns/coredns/coremain"',
    '',
    ...order.map((o) => `\t_ "${importPath(o.pkg)}"`),
    ')',
    '',
    'func init() {',
    `\tdnsserver.Directives = []string{${order.map((o) => JSON.stringify(o.name)).join(', ')}}`,
    '}',
    '',
    'func main() {',
    '\tcoremain.Run()',
    '}',
    '',
  ].join('\n');
}

/**
 * getCoreDns returns the path of coredns, building it when missing: the
 * github.com/coredns/coredns release with only the plugins the local
 * Corefile uses (corefilePlugins), checked against its `-plugins` output.
 */
export async function getCoreDns(): Promise<string> {
  const dir = toolDir('coredns', COREDNS_BUILD);
  const bin = join(dir, 'coredns');
  const want = corefilePlugins().sort();
  const expected = [...new Set([...want, ...COREDNS_PULLED_IN])].sort();
  const samePlugins = (got: string[] | undefined): boolean => got?.join(',') === expected.join(',');
  if (
    (await answers(bin, ['-version']))?.includes(`CoreDNS-${COREDNS_VERSION}`) &&
    samePlugins(await corednsPlugins(bin))
  )
    return bin;
  log(`building CoreDNS v${COREDNS_VERSION} with the Corefile's plugins only (${want.join(', ')})`);
  const src = await moduleDir('github.com/coredns/coredns', COREDNS_VERSION);
  const work = join(toolDir('coredns', COREDNS_BUILD), '..', `build-v${COREDNS_BUILD}`);
  await rm(work, { recursive: true, force: true });
  await mkdir(work, { recursive: true });
  try {
    await writeFile(
      join(work, 'go.mod'),
      `module local/corednsbuild\n\ngo 1.25.0\n\nrequire github.com/coredns/coredns v${COREDNS_VERSION}\n`,
    );
    await writeFile(join(work, 'main.go'), corednsMain(await readFile(join(src, 'plugin.cfg'), 'utf8'), want));
    await sh('go', ['mod', 'tidy'], { cwd: work, env: goEnv() });
    await timed('coredns', () =>
      installInto(dir, (out) =>
        sh('go', ['build', '-trimpath', '-ldflags', '-s -w', '-o', join(out, 'coredns'), '.'], {
          cwd: work,
          env: goEnv(),
        }).then(() => undefined),
      ),
    );
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  const got = await corednsPlugins(bin);
  if (!samePlugins(got))
    throw new Error(
      `the CoreDNS build in ${dir} lists plugins ${got?.join(', ') ?? '(none)'}, want ${expected.join(', ')}`,
    );
  return bin;
}

/** SpireControllerManager is the controller binary and the directory of its CRDs. */
export interface SpireControllerManager {
  bin: string;
  crdDir: string;
}

/** getSpireControllerManager returns the SPIRE Controller Manager binary and its CRDs, building when missing. */
export async function getSpireControllerManager(): Promise<SpireControllerManager> {
  const dir = toolDir('spire-controller-manager', SPIRE_CONTROLLER_MANAGER_VERSION);
  const res = { bin: join(dir, 'spire-controller-manager'), crdDir: join(dir, 'crd') };
  if ((await exists(res.bin)) && (await exists(join(res.crdDir, 'spire.spiffe.io_clusterspiffeids.yaml')))) return res;
  log(
    `building spire-controller-manager v${SPIRE_CONTROLLER_MANAGER_VERSION} from github.com/spiffe/spire-controller-manager`,
  );
  const src = await moduleDir('github.com/spiffe/spire-controller-manager', SPIRE_CONTROLLER_MANAGER_VERSION);
  await timed('spire-controller-manager', () =>
    installInto(dir, async (out) => {
      // The module's main package is ./cmd; built in place (the module cache is read-only, the output is not).
      await sh(
        'go',
        ['build', '-trimpath', '-ldflags', '-s -w', '-o', join(out, 'spire-controller-manager'), './cmd'],
        {
          cwd: src,
          env: goEnv(),
        },
      );
      // The CRDs ship in the module; the chart installs them from here.
      await cp(join(src, 'config', 'crd', 'bases'), join(out, 'crd'), { recursive: true });
      await sh('chmod', ['-R', 'u+w', out]);
    }),
  );
  return res;
}

/** getCrictl returns the path of crictl, building sigs.k8s.io/cri-tools when missing. */
export async function getCrictl(): Promise<string> {
  const dir = toolDir('crictl', CRICTL_VERSION);
  const bin = join(dir, 'crictl');
  if (await answers(bin, ['--version'])) return bin;
  log(`building crictl v${CRICTL_VERSION} from sigs.k8s.io/cri-tools`);
  await timed('crictl', () =>
    goInstallInto(
      dir,
      `sigs.k8s.io/cri-tools/cmd/crictl@v${CRICTL_VERSION}`,
      `-X sigs.k8s.io/cri-tools/pkg/version.Version=v${CRICTL_VERSION}`,
    ),
  );
  return bin;
}

async function kubernetesUsable(bin: string): Promise<boolean> {
  for (const b of KUBERNETES_BINARIES) {
    const args = b === 'kubectl' ? ['version', '--client'] : ['--version'];
    const v = await answers(join(bin, b), args);
    if (!v?.includes(`v${KUBERNETES_VERSION}`)) return false;
  }
  return true;
}

/**
 * replaceBlock maps every k8s.io staging module that k8s.io/kubernetes's own
 * go.mod points at ./staging to its published v0.<minor>.<patch> release.
 * The sample-* modules are left out: the proxy refuses them and nothing built
 * here imports them.
 */
function replaceBlock(kubernetesGoMod: string): string[] {
  const staging = `v0.${KUBERNETES_VERSION.split('.').slice(1).join('.')}`;
  const lines: string[] = [];
  for (const m of kubernetesGoMod.matchAll(/^\s*(k8s\.io\/[\w.-]+)\s*=>\s*\.\/staging\//gm)) {
    const mod = m[1] as string;
    if (mod === 'k8s.io/sample-cli-plugin' || mod === 'k8s.io/sample-controller') continue;
    lines.push(`\t${mod} => ${mod} ${staging}`);
  }
  if (lines.length < 20) throw new Error(`k8s.io/kubernetes go.mod lists only ${lines.length} staging modules`);
  return lines;
}

/** getKubernetes returns the directory holding the Kubernetes binaries, building them when missing (15–25 min cold). */
export async function getKubernetes(): Promise<string> {
  const dir = toolDir('kubernetes', KUBERNETES_VERSION);
  const bin = join(dir, 'bin');
  if (await kubernetesUsable(bin)) return bin;
  log(`building Kubernetes v${KUBERNETES_VERSION} from the k8s.io/kubernetes module (15-25 min cold on 2 cores)`);
  const kdir = await moduleDir('k8s.io/kubernetes', KUBERNETES_VERSION);
  // k8s.io/kubernetes is not meant to be imported: it pins its staging
  // modules with ./staging replaces that only work inside its own tree. A
  // scratch module that requires it and replaces them with their releases
  // builds the same commands.
  const work = join(toolDir('kubernetes', KUBERNETES_VERSION), '..', `build-v${KUBERNETES_VERSION}`);
  await rm(work, { recursive: true, force: true });
  await mkdir(work, { recursive: true });
  const [, minor] = KUBERNETES_VERSION.split('.');
  try {
    await writeFile(
      join(work, 'go.mod'),
      [
        'module local/k8sbuild',
        '',
        'go 1.24.0',
        '',
        'require (',
        '\tk8s.io/kubectl v0.0.0',
        `\tk8s.io/kubernetes v${KUBERNETES_VERSION}`,
        ')',
        '',
        'replace (',
        ...replaceBlock(await readFile(join(kdir, 'go.mod'), 'utf8')),
        ')',
        '',
      ].join('\n'),
    );
    await writeFile(
      join(work, 'tools.go'),
      [
        '//go:build tools',
        '',
        'package tools',
        '',
        'import (',
        ...KUBERNETES_BINARIES.filter((b) => b !== 'kubectl').map((b) => `\t_ "k8s.io/kubernetes/cmd/${b}"`),
        '\t_ "k8s.io/kubectl/pkg/cmd"',
        ')',
        '',
      ].join('\n'),
    );
    await sh('go', ['mod', 'tidy'], { cwd: work, env: goEnv() });
    await timed(`Kubernetes v${KUBERNETES_VERSION}`, () =>
      installInto(bin, (out) =>
        sh(
          'go',
          [
            'build',
            '-trimpath',
            '-ldflags',
            `-s -w -X k8s.io/component-base/version.gitVersion=v${KUBERNETES_VERSION} ` +
              `-X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=${minor}`,
            '-o',
            `${out}/`,
            ...KUBERNETES_BINARIES.map((b) => `k8s.io/kubernetes/cmd/${b}`),
          ],
          { cwd: work, env: goEnv() },
        ).then(() => undefined),
      ),
    );
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  if (!(await kubernetesUsable(bin))) throw new Error(`the build in ${bin} does not report v${KUBERNETES_VERSION}`);
  return bin;
}

/** K8sTools are the paths of everything getK8sTools makes available. */
export interface K8sTools {
  kubernetesBin: string;
  kubectl: string;
  helm: string;
  coredns: string;
  spireControllerManager: string;
  spireControllerManagerCrds: string;
  crictl?: string;
}

/** getK8sTools makes every tool available (helm first: the quickest and the most wanted). */
export async function getK8sTools(opts: { crictl?: boolean } = {}): Promise<K8sTools> {
  const helm = await getHelm();
  const coredns = await getCoreDns();
  const scm = await getSpireControllerManager();
  const kubernetesBin = await getKubernetes();
  const tools: K8sTools = {
    kubernetesBin,
    kubectl: join(kubernetesBin, 'kubectl'),
    helm,
    coredns,
    spireControllerManager: scm.bin,
    spireControllerManagerCrds: scm.crdDir,
  };
  if (opts.crictl) tools.crictl = await getCrictl();
  return tools;
}

/** listCached names the tool versions present in the cache, for messages. */
export async function listCached(): Promise<string[]> {
  const out: string[] = [];
  for (const tool of ['kubernetes', 'helm', 'coredns', 'spire-controller-manager', 'crictl']) {
    const versions = await readdir(join(cacheRoot(), tool)).catch(() => [] as string[]);
    for (const v of versions) if (/^v\d/.test(v) && !v.includes('partial')) out.push(`${tool}/${v}`);
  }
  return out;
}

if (import.meta.main) {
  const ONLY = ['helm', 'coredns', 'spire-controller-manager', 'kubernetes', 'crictl'] as const;
  let values: { only?: string; crictl: boolean };
  try {
    values = parseArgs({ options: { only: { type: 'string' }, crictl: { type: 'boolean', default: false } } }).values;
    if (values.only !== undefined && !(ONLY as readonly string[]).includes(values.only))
      throw new Error(`--only must be one of ${ONLY.join(', ')}, got ${values.only}`);
  } catch (err) {
    log(`${(err as Error).message}; options: --only <${ONLY.join('|')}>, --crictl`);
    process.exit(2);
  }
  try {
    let result: unknown;
    switch (values.only) {
      case 'helm':
        result = { helm: await getHelm() };
        break;
      case 'coredns':
        result = { coredns: await getCoreDns() };
        break;
      case 'spire-controller-manager':
        result = await getSpireControllerManager();
        break;
      case 'kubernetes':
        result = { kubernetesBin: await getKubernetes() };
        break;
      case 'crictl':
        result = { crictl: await getCrictl() };
        break;
      default:
        result = await getK8sTools({ crictl: values.crictl });
    }
    console.log(JSON.stringify(result, null, 2));
  } catch (err) {
    log((err as Error).message);
    process.exit(1);
  }
}
