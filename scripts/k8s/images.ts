// Images for the local cluster, which no registry can serve here:
//   spiffe-shop-local/pause:<v>                      the pod sandbox (pause/main.go)
//   spiffe-shop-local/coredns:<v>                    FROM scratch + the cached CoreDNS
//   spiffe-shop-local/spire-controller-manager:<v>   FROM scratch + the cached controller
//   spiffe-shop-local/netcheck:<v>                   HTTP and DNS probe (netcheck/main.go)
// are built with the Docker engine (scripts/containers/docker-engine.ts) when
// missing, and then — with the shop's and SPIRE's images from
// `npm run images:local` — copied into the cluster's own containerd with
// `docker save | ctr -n k8s.io images import`. An image whose Docker ID was
// already imported is skipped.
//
//   node scripts/k8s/images.ts                 # (re)import every image present in Docker
//   node scripts/k8s/images.ts NAME...         # (re)import these (e.g. after rebuilding the shop)
import { execFile, spawn } from 'node:child_process';
import { cp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { localImageNames, SHOP_TAG, SHOP_TARGETS } from '../containers/local-images.ts';
import {
  COREDNS_BUILD,
  getCoreDns,
  getSpireControllerManager,
  SPIRE_CONTROLLER_MANAGER_VERSION,
  toolDir,
} from './get-k8s.ts';
import { paths } from './layout.ts';

const run = promisify(execFile);

/** PAUSE_VERSION tags the pause image; bump it when pause/main.go changes. */
export const PAUSE_VERSION = '1.0';
/** NETCHECK_VERSION tags the netcheck image; bump it when netcheck/main.go changes. */
export const NETCHECK_VERSION = '1.0';

/** CLUSTER_IMAGES are the images the cluster itself needs, by role. */
export const CLUSTER_IMAGES = {
  pause: `spiffe-shop-local/pause:${PAUSE_VERSION}`,
  coredns: `spiffe-shop-local/coredns:${COREDNS_BUILD}`,
  spireControllerManager: `spiffe-shop-local/spire-controller-manager:${SPIRE_CONTROLLER_MANAGER_VERSION}`,
  netcheck: `spiffe-shop-local/netcheck:${NETCHECK_VERSION}`,
} as const;

function log(msg: string): void {
  process.stderr.write(`k8s-images: ${msg}\n`);
}

/** shopImageNames are the shop's and SPIRE's local images (scripts/containers/local-images.ts). */
export async function shopImageNames(): Promise<string[]> {
  const local = await localImageNames();
  return [...SHOP_TARGETS.map((t) => `spiffe-shop/${t}:${SHOP_TAG}`), local.spireServer, local.spireAgent];
}

/** dockerImageId is the ID of a Docker image, or undefined when Docker has none by that name. */
export async function dockerImageId(name: string): Promise<string | undefined> {
  try {
    const { stdout } = await run('docker', ['image', 'inspect', '--format', '{{.Id}}', name]);
    return stdout.trim();
  } catch {
    return undefined;
  }
}

async function dockerBuild(ctx: string, dockerfile: string, name: string): Promise<void> {
  await writeFile(join(ctx, 'Dockerfile'), dockerfile);
  // The classic builder: it needs neither buildx nor a BuildKit image.
  await run('docker', ['build', '-q', '-t', name, '.'], {
    cwd: ctx,
    env: { ...process.env, DOCKER_BUILDKIT: '0' },
    maxBuffer: 16 << 20,
  });
}

/** goProgram builds one of this folder's small Go programs (pause, netcheck) into the cache. */
async function goProgram(name: string, version: string): Promise<string> {
  const dir = toolDir(name, version);
  const bin = join(dir, name);
  const src = resolve(import.meta.dirname, name);
  await mkdir(dir, { recursive: true });
  await run('go', ['build', '-trimpath', '-ldflags', '-s -w', '-o', bin, '.'], {
    cwd: src,
    env: { ...process.env, CGO_ENABLED: '0', PATH: `${process.env.PATH ?? ''}:/usr/local/go/bin` },
  });
  return bin;
}

async function scratchImage(name: string, bin: string, target: string, extra = ''): Promise<void> {
  const ctx = join(tmpdir(), `spiffe-shop-k8s-img-${process.pid}`);
  await rm(ctx, { recursive: true, force: true });
  await mkdir(ctx, { recursive: true });
  try {
    await cp(bin, join(ctx, 'bin'));
    await dockerBuild(ctx, `FROM scratch\nCOPY bin ${target}\n${extra}ENTRYPOINT ["${target}"]\n`, name);
    log(`built ${name}`);
  } finally {
    await rm(ctx, { recursive: true, force: true });
  }
}

/** buildClusterImages builds whichever of CLUSTER_IMAGES (or of the roles named) Docker lacks; all of them with rebuild. */
export async function buildClusterImages(
  rebuild = false,
  roles: (keyof typeof CLUSTER_IMAGES)[] = ['pause', 'netcheck', 'coredns', 'spireControllerManager'],
): Promise<void> {
  const need = async (r: keyof typeof CLUSTER_IMAGES): Promise<boolean> =>
    roles.includes(r) && (rebuild || (await dockerImageId(CLUSTER_IMAGES[r])) === undefined);
  if (await need('pause')) await scratchImage(CLUSTER_IMAGES.pause, await goProgram('pause', PAUSE_VERSION), '/pause');
  if (await need('netcheck'))
    await scratchImage(CLUSTER_IMAGES.netcheck, await goProgram('netcheck', NETCHECK_VERSION), '/netcheck');
  if (await need('coredns'))
    await scratchImage(CLUSTER_IMAGES.coredns, await getCoreDns(), '/coredns', 'EXPOSE 53 53/udp\n');
  if (await need('spireControllerManager'))
    await scratchImage(
      CLUSTER_IMAGES.spireControllerManager,
      (await getSpireControllerManager()).bin,
      '/spire-controller-manager',
    );
}

/** ctr runs containerd's client against the cluster's own containerd, in the namespace the kubelet uses. */
export async function ctr(args: string[]): Promise<string> {
  const { stdout } = await run('ctr', ['--address', paths.containerdSock, '--namespace', 'k8s.io', ...args], {
    maxBuffer: 64 << 20,
  });
  return stdout;
}

async function readRecord(): Promise<Record<string, string>> {
  try {
    return JSON.parse(await readFile(paths.imagesRecord, 'utf8')) as Record<string, string>;
  } catch {
    return {};
  }
}

/** containerdName is how containerd spells a Docker short name (docker.io/… and :latest made explicit). */
export function containerdName(name: string): string {
  const [first] = name.split('/');
  const withHost =
    name.includes('/') && /[.:]|^localhost$/.test(first ?? '')
      ? name
      : `docker.io/${name.includes('/') ? name : `library/${name}`}`;
  return /:[^/]+$/.test(withHost) || withHost.includes('@') ? withHost : `${withHost}:latest`;
}

/**
 * importImages copies Docker images into the cluster's containerd (which must
 * be running). Images whose Docker ID was imported before are skipped unless
 * force; names Docker lacks are an error.
 */
export async function importImages(names: string[], opts: { force?: boolean } = {}): Promise<string[]> {
  const record = await readRecord();
  const present = new Set(
    (await ctr(['images', 'ls', '-q']))
      .split('\n')
      .map((l) => l.trim())
      .filter(Boolean),
  );
  const todo: string[] = [];
  for (const n of names) {
    const id = await dockerImageId(n);
    if (id === undefined) throw new Error(`Docker has no image ${n}; build it first (npm run images:local)`);
    if (!opts.force && record[n] === id && present.has(containerdName(n))) continue;
    todo.push(n);
    record[n] = id;
  }
  if (todo.length === 0) {
    log(`all ${names.length} images already imported`);
    return [];
  }
  const t0 = Date.now();
  // containerd 1.6 can garbage-collect a parent layer's snapshot while an
  // import unpacks a child onto it (an earlier image with the same base was
  // just replaced): "parent snapshot … does not exist". The content is in
  // the store by then, so a second import unpacks it again and succeeds
  // (https://github.com/containerd/containerd/issues/3787).
  for (let attempt = 1; ; attempt++) {
    try {
      await saveAndImport(todo);
      break;
    } catch (err) {
      if (attempt >= 3 || !/parent snapshot .* does not exist/.test((err as Error).message)) throw err;
      log(`import attempt ${attempt} met a collected parent snapshot; importing again`);
    }
  }
  await mkdir(resolve(paths.imagesRecord, '..'), { recursive: true });
  await writeFile(paths.imagesRecord, JSON.stringify(record, null, 2) + '\n');
  log(`imported ${todo.join(', ')} in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  return todo;
}

/** saveAndImport streams `docker save` of `names` into the cluster's containerd. */
function saveAndImport(names: string[]): Promise<void> {
  // One pipe, no temporary tarball: `docker save` streams, `ctr import` unpacks for the overlayfs snapshotter.
  return new Promise<void>((ok, fail) => {
    const p = spawn(
      'bash',
      [
        '-o',
        'pipefail',
        '-c',
        'docker save "$@" | ctr --address "$SOCK" --namespace k8s.io images import -',
        'import',
        ...names,
      ],
      { env: { ...process.env, SOCK: paths.containerdSock }, stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let err = '';
    p.stderr.on('data', (b: Buffer) => (err = (err + b.toString()).slice(-4000)));
    p.once('error', fail);
    p.once('exit', (code) => {
      if (code === 0) ok();
      else fail(new Error(`docker save | ctr images import failed: ${err}`));
    });
  });
}

/** availableShopImages are the shop's and SPIRE's images that Docker has now. */
export async function availableShopImages(): Promise<string[]> {
  const out: string[] = [];
  for (const n of await shopImageNames()) if ((await dockerImageId(n)) !== undefined) out.push(n);
  return out;
}

if (import.meta.main) {
  try {
    const { ensureEngine } = await import('../containers/docker-engine.ts');
    await ensureEngine();
    const names = process.argv.slice(2);
    if (names.length === 0) {
      await buildClusterImages();
      names.push(...Object.values(CLUSTER_IMAGES), ...(await availableShopImages()));
    }
    await importImages(names, { force: process.argv.length > 2 });
  } catch (err) {
    log((err as Error).message);
    process.exit(1);
  }
}
