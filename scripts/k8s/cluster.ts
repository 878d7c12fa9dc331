// A real single-node Kubernetes on this machine: etcd, kube-apiserver,
// kube-controller-manager, kube-scheduler, the cluster's own containerd,
// kubelet, kube-proxy (iptables), a bridge CNI network with the firewall
// plugin, and CoreDNS. Every process runs detached with a pid file, so the
// cluster outlives `npm run k8s:up`; stopCluster() (`npm run k8s:down`)
// stops exactly those processes by pid and puts the host back as it was
// (see host-state.ts). Layout of the state: layout.ts.
//
// startCluster() is the API the test suites use:
//   const cluster = await startCluster();
//   await cluster.kubectl(['get', 'nodes']);
//   await cluster.stop();
import { execFile, spawn } from 'node:child_process';
import { openSync, closeSync } from 'node:fs';
import { access, mkdir, readFile, readdir, readlink, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { corednsManifests } from './coredns.ts';
import { getK8sTools, type K8sTools } from './get-k8s.ts';
import { ensureHostPackages } from './host-packages.ts';
import {
  podPids,
  removeCgroups,
  removeChains,
  restoreHost,
  snapshotHost,
  unmountUnder,
  writeSysctl,
  type HostState,
} from './host-state.ts';
import { availableShopImages, buildClusterImages, CLUSTER_IMAGES, ctr, importImages } from './images.ts';
import { NETWORK, NODE_NAME, paths } from './layout.ts';
import { makePki, writeKubeconfig, type ClientCert } from './pki.ts';

const run = promisify(execFile);

/** COMPONENTS are the cluster's processes, in start order. */
export const COMPONENTS = [
  'containerd',
  'etcd',
  'kube-apiserver',
  'kube-controller-manager',
  'kube-scheduler',
  'kubelet',
  'kube-proxy',
] as const;
type ComponentName = (typeof COMPONENTS)[number];

/** PORTS are the host ports the cluster listens on; each must be free before `up`. */
export const PORTS: Record<number, string> = {
  2379: 'etcd client',
  2380: 'etcd peer',
  [NETWORK.apiserverPort]: 'kube-apiserver',
  10248: 'kubelet healthz',
  10249: 'kube-proxy metrics',
  10250: 'kubelet',
  10256: 'kube-proxy healthz',
  10257: 'kube-controller-manager',
  10259: 'kube-scheduler',
};

/** SERVICE_ACCOUNT_ISSUER is the issuer of projected service-account tokens. */
export const SERVICE_ACCOUNT_ISSUER = `https://kubernetes.default.svc.${NETWORK.clusterDomain}`;
/** API_AUDIENCES are the audiences the API server accepts; spire-server is k8s_psat's. */
export const API_AUDIENCES = [SERVICE_ACCOUNT_ISSUER, 'spire-server'];

const SYSTEM_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

function log(msg: string): void {
  process.stderr.write(`k8s: ${msg}\n`);
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function waitFor(what: string, timeoutMs: number, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return;
    await sleep(500);
  }
  throw new Error(`${what} not within ${timeoutMs / 1000} s; logs in ${paths.logs}`);
}

// ---- processes, by pid file -------------------------------------------------

interface PidRecord {
  pid: number;
  bin: string;
}

function pidFile(name: ComponentName): string {
  return join(paths.pids, `${name}.json`);
}

async function readPid(name: ComponentName): Promise<PidRecord | undefined> {
  try {
    return JSON.parse(await readFile(pidFile(name), 'utf8')) as PidRecord;
  } catch {
    return undefined;
  }
}

/** isOurs says whether pid is still the process we started (not a recycled pid). */
async function isOurs(rec: PidRecord): Promise<boolean> {
  try {
    const exe = await readlink(`/proc/${rec.pid}/exe`);
    const stat = await readFile(`/proc/${rec.pid}/stat`, 'utf8');
    // A zombie's exe link is gone; one that is being reaped is not running.
    return exe.replace(/ \(deleted\)$/, '') === rec.bin && !/^\d+ \(.*\) Z/.test(stat);
  } catch {
    return false;
  }
}

async function startProcess(name: ComponentName, bin: string, args: string[]): Promise<number> {
  await mkdir(paths.logs, { recursive: true });
  await mkdir(paths.pids, { recursive: true });
  const fd = openSync(join(paths.logs, `${name}.log`), 'w');
  // Detached into its own session: the cluster outlives the command that
  // started it, and a Ctrl-C of a test run does not half-kill it.
  const child = spawn(bin, args, {
    detached: true,
    cwd: paths.cluster,
    stdio: ['ignore', fd, fd],
    env: { ...process.env, PATH: SYSTEM_PATH },
  });
  closeSync(fd);
  const pid = child.pid;
  if (pid === undefined) throw new Error(`${name} did not start`);
  child.unref();
  await writeFile(pidFile(name), JSON.stringify({ pid, bin } satisfies PidRecord));
  return pid;
}

async function stopProcess(name: ComponentName, graceMs = 10_000): Promise<void> {
  const rec = await readPid(name);
  if (!rec) return;
  if (await isOurs(rec)) {
    process.kill(rec.pid, 'SIGTERM');
    const deadline = Date.now() + graceMs;
    while (Date.now() < deadline && (await isOurs(rec))) await sleep(100);
    if (await isOurs(rec)) {
      log(`${name} (pid ${rec.pid}) did not stop in ${graceMs / 1000} s; killing it`);
      process.kill(rec.pid, 'SIGKILL');
      while (await isOurs(rec)) await sleep(100);
    }
    log(`stopped ${name} (pid ${rec.pid})`);
  }
  await rm(pidFile(name), { force: true });
}

/** shimPids are containerd shims serving our containerd (found by the socket in their command line). */
async function shimPids(): Promise<number[]> {
  const out: number[] = [];
  for (const d of await readdir('/proc').catch(() => [] as string[])) {
    if (!/^\d+$/.test(d)) continue;
    const cmd = await readFile(`/proc/${d}/cmdline`, 'utf8').catch(() => '');
    const args = cmd.split('\0');
    if (args[0]?.endsWith('containerd-shim-runc-v2') && args.includes(paths.containerdSock)) out.push(Number(d));
  }
  return out;
}

// ---- configuration ----------------------------------------------------------

/** nodeIp is the host's primary IPv4 address (the source address of its default route). */
async function nodeIp(): Promise<string> {
  const { stdout } = await run('ip', ['-j', '-4', 'route', 'show', 'default']);
  const routes = JSON.parse(stdout) as { dev?: string; prefsrc?: string }[];
  const dev = routes[0]?.dev;
  if (dev) {
    const { stdout: a } = await run('ip', ['-j', '-4', 'addr', 'show', 'dev', dev]);
    const addr = (JSON.parse(a) as { addr_info?: { local?: string }[] }[])[0]?.addr_info?.[0]?.local;
    if (addr) return addr;
  }
  throw new Error('no IPv4 default route: the node needs a non-loopback address for the API server to advertise');
}

/** containerdConfig is the TOML of the cluster's own containerd. */
export function containerdConfig(): string {
  // containerd 1.6 (Debian) configuration, version 2. Its own root, state
  // and socket: never the containerd a Docker engine on this machine uses.
  const cri = 'plugins."io.containerd.grpc.v1.cri"';
  return `version = 2
root = "${paths.containerdRoot}"
state = "${paths.containerdState}"
oom_score = 0

[grpc]
  address = "${paths.containerdSock}"

[ttrpc]
  address = ""

[debug]
  address = ""

[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = "${join(paths.cluster, 'containerd-opt')}"

[${cri}]
  sandbox_image = "docker.io/${CLUSTER_IMAGES.pause}"
  # This VM's root lacks CAP_SYS_RESOURCE: containers may not lower their
  # OOM score below containerd's own.
  restrict_oom_score_adj = true
  # Pod network namespaces under the state dir, not in /run/netns.
  netns_mounts_under_state_dir = true
  disable_apparmor = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"

[${cri}.containerd]
  snapshotter = "overlayfs"
  default_runtime_name = "runc"

[${cri}.containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"

[${cri}.containerd.runtimes.runc.options]
  SystemdCgroup = false

[${cri}.cni]
  bin_dir = "/usr/lib/cni"
  conf_dir = "${paths.cniConf}"
  max_conf_num = 1
`;
}

function cniConflist(): object {
  return {
    cniVersion: '1.0.0',
    name: 'spiffe-shop',
    plugins: [
      {
        type: 'bridge',
        bridge: NETWORK.bridge,
        isGateway: true,
        // Pods talk only to each other and to this host: no masquerade.
        ipMasq: false,
        hairpinMode: true,
        ipam: {
          type: 'host-local',
          dataDir: paths.cniData,
          ranges: [[{ subnet: NETWORK.podCidr }]],
          routes: [{ dst: '0.0.0.0/0' }],
        },
      },
      // A Docker engine sets the FORWARD policy to DROP, which drops bridged
      // pod-to-pod traffic: the firewall plugin accepts each pod's.
      { type: 'firewall', backend: 'iptables' },
    ],
  };
}

function kubeletConfig(): object {
  return {
    apiVersion: 'kubelet.config.k8s.io/v1beta1',
    kind: 'KubeletConfiguration',
    authentication: {
      anonymous: { enabled: false },
      webhook: { enabled: true },
      x509: { clientCAFile: join(paths.pki, 'ca.crt') },
    },
    authorization: { mode: 'Webhook' },
    // cgroup v1 without systemd on this VM.
    cgroupDriver: 'cgroupfs',
    failCgroupV1: false,
    // Root lacks CAP_SYS_RESOURCE: the kubelet may not set its own score to -999.
    oomScoreAdj: 0,
    containerRuntimeEndpoint: `unix://${paths.containerdSock}`,
    imageServiceEndpoint: `unix://${paths.containerdSock}`,
    clusterDNS: [NETWORK.dnsServiceIp],
    clusterDomain: NETWORK.clusterDomain,
    resolvConf: '/etc/resolv.conf',
    failSwapOn: false,
    healthzBindAddress: '127.0.0.1',
    healthzPort: 10248,
    readOnlyPort: 0,
    volumePluginDir: join(paths.cluster, 'volume-plugins'),
    podLogsDir: join(paths.cluster, 'pod-logs'),
    serializeImagePulls: false,
    rotateCertificates: false,
    // Other jobs on this machine fill the disk at times: evict only when nearly full.
    evictionHard: { 'memory.available': '100Mi', 'nodefs.available': '2%', 'imagefs.available': '2%' },
    imageGCHighThresholdPercent: 98,
    imageGCLowThresholdPercent: 95,
    shutdownGracePeriod: '0s',
    podPidsLimit: -1,
  };
}

function kubeProxyConfig(): object {
  return {
    apiVersion: 'kubeproxy.config.k8s.io/v1alpha1',
    kind: 'KubeProxyConfiguration',
    clientConnection: { kubeconfig: join(paths.config, 'kube-proxy.kubeconfig') },
    mode: 'iptables',
    clusterCIDR: NETWORK.clusterCidr,
    hostnameOverride: NODE_NAME,
    healthzBindAddress: '127.0.0.1:10256',
    metricsBindAddress: '127.0.0.1:10249',
    oomScoreAdj: 0,
    // 0: leave the host's conntrack table size and timeouts as they are.
    conntrack: { maxPerCore: 0, min: 0, tcpEstablishedTimeout: '0s', tcpCloseWaitTimeout: '0s' },
    // true would set net.ipv4.conf.all.route_localnet.
    iptables: { localhostNodePorts: false, minSyncPeriod: '1s', syncPeriod: '30s' },
  };
}

const CLIENTS: ClientCert[] = [
  { name: 'admin', cn: 'spiffe-shop-admin', orgs: ['system:masters'] },
  { name: 'kube-controller-manager', cn: 'system:kube-controller-manager', orgs: [] },
  { name: 'kube-scheduler', cn: 'system:kube-scheduler', orgs: [] },
  { name: 'kube-proxy', cn: 'system:kube-proxy', orgs: [] },
  { name: 'kubelet', cn: `system:node:${NODE_NAME}`, orgs: ['system:nodes'] },
  { name: 'apiserver-kubelet-client', cn: 'kube-apiserver-kubelet-client', orgs: ['system:masters'] },
];

// ---- the API ----------------------------------------------------------------

/** Cluster is a running local cluster. */
export interface Cluster {
  /** kubeconfig is the admin kubeconfig's path (system:masters). */
  kubeconfig: string;
  /** tools are the cached binaries (kubectl, helm, …). */
  tools: K8sTools;
  /** nodeIp is the node's address, which the API server advertises. */
  nodeIp: string;
  /** startedHere is true when this call started the cluster (stop() stops it only then, unless forced). */
  startedHere: boolean;
  /** kubectl runs the cached kubectl against the cluster and returns its stdout. */
  kubectl: (args: string[], opts?: { input?: string; timeoutMs?: number }) => Promise<string>;
  /** helm runs the cached helm against the cluster and returns its stdout. */
  helm: (args: string[], opts?: { timeoutMs?: number }) => Promise<string>;
  /** importImages copies Docker images into the cluster's containerd (skipping unchanged ones). */
  importImages: (names: string[], opts?: { force?: boolean }) => Promise<string[]>;
  /** stop stops the cluster if this call started it (or always, with force) and restores the host. */
  stop: (opts?: { force?: boolean }) => Promise<void>;
}

/** StartOptions tune startCluster. */
export interface StartOptions {
  /** shopImages imports the shop's and SPIRE's images present in Docker. Default: true. */
  shopImages?: boolean;
  /** timeoutMs bounds the wait for a Ready node and CoreDNS. Default: 300000. */
  timeoutMs?: number;
}

async function tool(bin: string, args: string[], opts: { input?: string; timeoutMs?: number } = {}): Promise<string> {
  return new Promise<string>((ok, fail) => {
    const p = spawn(bin, args, {
      env: { ...process.env, KUBECONFIG: paths.kubeconfig, PATH: `${process.env.PATH ?? ''}:${SYSTEM_PATH}` },
      stdio: ['pipe', 'pipe', 'pipe'],
      timeout: opts.timeoutMs ?? 120_000,
    });
    let out = '';
    let err = '';
    p.stdout.on('data', (b: Buffer) => (out += b.toString()));
    p.stderr.on('data', (b: Buffer) => (err += b.toString()));
    p.once('error', fail);
    p.once('close', (code, signal) => {
      if (code === 0) ok(out);
      else {
        const e = new Error(
          `${bin.split('/').pop() ?? bin} ${args.join(' ')} failed (${signal ?? `exit ${String(code)}`}): ${err.trim() || out.trim()}`,
        ) as Error & { stdout: string; stderr: string };
        e.stdout = out;
        e.stderr = err;
        fail(e);
      }
    });
    p.stdin.end(opts.input ?? '');
  });
}

function handle(tools: K8sTools, ip: string, startedHere: boolean): Cluster {
  const kubectl = (args: string[], opts?: { input?: string; timeoutMs?: number }): Promise<string> =>
    tool(tools.kubectl, ['--kubeconfig', paths.kubeconfig, ...args], opts);
  return {
    kubeconfig: paths.kubeconfig,
    tools,
    nodeIp: ip,
    startedHere,
    kubectl,
    helm: (args, opts) => tool(tools.helm, ['--kubeconfig', paths.kubeconfig, ...args], opts),
    importImages,
    stop: async (opts) => {
      if (startedHere || opts?.force) await stopCluster();
    },
  };
}

/** clusterRunning says whether every component's pid file names a live process of ours. */
export async function clusterRunning(): Promise<boolean> {
  for (const c of COMPONENTS) {
    const rec = await readPid(c);
    if (!rec || !(await isOurs(rec))) return false;
  }
  return exists(join(paths.cluster, 'ready'));
}

async function portsFree(): Promise<void> {
  const busy: string[] = [];
  for (const [port, what] of Object.entries(PORTS)) {
    const free = await new Promise<boolean>((ok) => {
      const s = createServer();
      s.once('error', () => {
        ok(false);
      });
      s.listen({ port: Number(port), host: '0.0.0.0', exclusive: true }, () =>
        s.close(() => {
          ok(true);
        }),
      );
    });
    if (!free) busy.push(`${port} (${what})`);
  }
  if (busy.length) throw new Error(`ports in use, needed by the cluster: ${busy.join(', ')}`);
}

async function bringUp(tools: K8sTools, opts: StartOptions): Promise<string> {
  const t0 = Date.now();
  const since = (): string => `${((Date.now() - t0) / 1000).toFixed(1)} s`;
  await portsFree();
  await mkdir(paths.config, { recursive: true });
  await mkdir(paths.run, { recursive: true });
  const before = await snapshotHost();
  await writeFile(paths.snapshot, JSON.stringify(before, null, 2));
  const ip = await nodeIp();

  if (!(await exists('/proc/sys/net/bridge/bridge-nf-call-iptables')))
    throw new Error('the br_netfilter module is not loaded (no /proc/sys/net/bridge): Services cannot reach pods');
  await writeSysctl('net.ipv4.ip_forward', '1');
  await writeSysctl('net.bridge.bridge-nf-call-iptables', '1');

  const pki = await makePki(paths.pki, {
    ips: ['127.0.0.1', ip, NETWORK.apiServiceIp],
    dnsNames: [
      'localhost',
      NODE_NAME,
      'kubernetes',
      'kubernetes.default',
      'kubernetes.default.svc',
      `kubernetes.default.svc.${NETWORK.clusterDomain}`,
    ],
    clients: CLIENTS,
  });
  const server = `https://127.0.0.1:${NETWORK.apiserverPort}`;
  await writeKubeconfig(paths.kubeconfig, { server, caCert: pki.caCert, ...pki.client('admin'), user: 'admin' });
  for (const c of ['kube-controller-manager', 'kube-scheduler', 'kube-proxy', 'kubelet']) {
    await writeKubeconfig(join(paths.config, `${c}.kubeconfig`), {
      server,
      caCert: pki.caCert,
      ...pki.client(c),
      user: c,
    });
  }

  // containerd first: images are imported while the control plane starts.
  await writeFile(paths.containerdConfig, containerdConfig());
  await mkdir(paths.cniConf, { recursive: true });
  await writeFile(join(paths.cniConf, '10-spiffe-shop.conflist'), JSON.stringify(cniConflist(), null, 2));
  await startProcess('containerd', '/usr/bin/containerd', ['--config', paths.containerdConfig]);
  await waitFor('containerd', 30_000, async () => (await ctr(['version'])).includes('Server'));
  log(`containerd up (${since()})`);

  await startProcess('etcd', '/usr/bin/etcd', [
    '--name',
    'spiffe-shop',
    '--data-dir',
    paths.etcdData,
    '--listen-client-urls',
    'http://127.0.0.1:2379',
    '--advertise-client-urls',
    'http://127.0.0.1:2379',
    '--listen-peer-urls',
    'http://127.0.0.1:2380',
    '--initial-advertise-peer-urls',
    'http://127.0.0.1:2380',
    '--initial-cluster',
    'spiffe-shop=http://127.0.0.1:2380',
    '--initial-cluster-state',
    'new',
  ]);
  const images = (async (): Promise<void> => {
    const names: string[] = [...Object.values(CLUSTER_IMAGES)];
    if (opts.shopImages ?? true) names.push(...(await availableShopImages()));
    await importImages(names);
    log(`images in containerd (${since()})`);
  })();
  // Awaited before the kubelet starts; until then a failure must not go unhandled.
  images.catch(() => undefined);
  await waitFor('etcd', 30_000, async () => (await fetch('http://127.0.0.1:2379/health')).ok);
  log(`etcd up (${since()})`);

  const k = (n: string): string => join(tools.kubernetesBin, n);
  await startProcess('kube-apiserver', k('kube-apiserver'), [
    '--etcd-servers=http://127.0.0.1:2379',
    `--secure-port=${NETWORK.apiserverPort}`,
    '--bind-address=0.0.0.0',
    `--advertise-address=${ip}`,
    `--service-cluster-ip-range=${NETWORK.serviceCidr}`,
    `--client-ca-file=${pki.caCert}`,
    `--tls-cert-file=${pki.apiserverCert}`,
    `--tls-private-key-file=${pki.apiserverKey}`,
    `--cert-dir=${pki.dir}`,
    `--kubelet-client-certificate=${pki.client('apiserver-kubelet-client').cert}`,
    `--kubelet-client-key=${pki.client('apiserver-kubelet-client').key}`,
    '--kubelet-preferred-address-types=InternalIP,Hostname',
    // Projected service-account tokens (k8s_psat): signed with sa.key,
    // verified with sa.pub, issuer and audiences as below.
    `--service-account-issuer=${SERVICE_ACCOUNT_ISSUER}`,
    `--service-account-key-file=${pki.saPub}`,
    `--service-account-signing-key-file=${pki.saKey}`,
    `--api-audiences=${API_AUDIENCES.join(',')}`,
    '--authorization-mode=Node,RBAC',
    '--enable-admission-plugins=NodeRestriction',
    '--allow-privileged=true',
    '--profiling=false',
    '--v=1',
  ]);
  const kubectl = (args: string[]): Promise<string> => tool(tools.kubectl, ['--kubeconfig', paths.kubeconfig, ...args]);
  await waitFor('kube-apiserver /readyz', 120_000, async () => (await kubectl(['get', '--raw', '/readyz'])) === 'ok');
  log(`kube-apiserver ready (${since()})`);

  const pkiArgs = (c: string): string[] => [
    `--kubeconfig=${join(paths.config, `${c}.kubeconfig`)}`,
    `--authentication-kubeconfig=${join(paths.config, `${c}.kubeconfig`)}`,
    `--authorization-kubeconfig=${join(paths.config, `${c}.kubeconfig`)}`,
    '--bind-address=127.0.0.1',
    `--cert-dir=${join(pki.dir, c)}`,
    '--leader-elect=false',
    '--v=1',
  ];
  await startProcess('kube-controller-manager', k('kube-controller-manager'), [
    ...pkiArgs('kube-controller-manager'),
    `--cluster-signing-cert-file=${pki.caCert}`,
    `--cluster-signing-key-file=${pki.caKey}`,
    `--root-ca-file=${pki.caCert}`,
    `--service-account-private-key-file=${pki.saKey}`,
    '--use-service-account-credentials=true',
    '--allocate-node-cidrs=true',
    `--cluster-cidr=${NETWORK.clusterCidr}`,
    '--node-cidr-mask-size=24',
    `--service-cluster-ip-range=${NETWORK.serviceCidr}`,
  ]);
  await startProcess('kube-scheduler', k('kube-scheduler'), pkiArgs('kube-scheduler'));

  await writeFile(join(paths.config, 'kubelet.json'), JSON.stringify(kubeletConfig(), null, 2));
  await writeFile(join(paths.config, 'kube-proxy.json'), JSON.stringify(kubeProxyConfig(), null, 2));
  await images; // the kubelet needs the pause image to run a pod
  await startProcess('kubelet', k('kubelet'), [
    `--config=${join(paths.config, 'kubelet.json')}`,
    `--kubeconfig=${join(paths.config, 'kubelet.kubeconfig')}`,
    `--root-dir=${paths.kubeletRoot}`,
    `--hostname-override=${NODE_NAME}`,
    `--node-ip=${ip}`,
    '--v=1',
  ]);
  await startProcess('kube-proxy', k('kube-proxy'), [`--config=${join(paths.config, 'kube-proxy.json')}`, '--v=1']);

  const timeout = opts.timeoutMs ?? 300_000;
  await waitFor(`node ${NODE_NAME} Ready`, timeout, async () => {
    const s = await kubectl([
      'get',
      'node',
      NODE_NAME,
      '-o',
      'jsonpath={.status.conditions[?(@.type=="Ready")].status}',
    ]);
    return s === 'True';
  });
  log(`node ${NODE_NAME} Ready (${since()})`);
  await writeFile(join(paths.cluster, 'node-ready-seconds'), `${((Date.now() - t0) / 1000).toFixed(1)}\n`);

  await tool(tools.kubectl, ['--kubeconfig', paths.kubeconfig, 'apply', '-f', '-'], {
    input: JSON.stringify(corednsManifests(CLUSTER_IMAGES.coredns)),
  });
  await waitFor('CoreDNS Ready', timeout, async () => {
    const n = await kubectl([
      '-n',
      'kube-system',
      'get',
      'deploy',
      'coredns',
      '-o',
      'jsonpath={.status.readyReplicas}',
    ]);
    return n === '1';
  });
  // Pods in a namespace need its default service account, made by the controller manager.
  await waitFor('the default service account', 60_000, async () => {
    await kubectl(['-n', 'default', 'get', 'serviceaccount', 'default']);
    return true;
  });
  await writeFile(join(paths.cluster, 'ready'), `${new Date().toISOString()}\n`);
  log(`cluster ready in ${since()}; KUBECONFIG=${paths.kubeconfig}`);
  return ip;
}

/**
 * startCluster returns a running cluster: the one already running (then
 * stop() leaves it alone unless forced), or a new one. Builds whatever is
 * missing first (binaries, Debian packages, images). If start-up fails,
 * everything it did is undone before the error is thrown.
 */
export async function startCluster(opts: StartOptions = {}): Promise<Cluster> {
  if (process.getuid?.() !== 0) throw new Error('the local cluster runs as root (kubelet, containerd, iptables)');
  await ensureHostPackages(log);
  const tools = await getK8sTools();
  if (await clusterRunning()) {
    log(`using the running cluster; KUBECONFIG=${paths.kubeconfig}`);
    return handle(tools, await nodeIp(), false);
  }
  if (await exists(paths.cluster)) {
    log('an earlier cluster was not taken down cleanly: taking it down first');
    await stopCluster();
  }
  // Images are built with the Docker engine before the host snapshot, so
  // what dockerd does to the host is not taken for the cluster's doing.
  const { ensureEngine, stopEngine } = await import('../containers/docker-engine.ts');
  const engine = await ensureEngine();
  try {
    await buildClusterImages();
    let ip: string;
    try {
      ip = await bringUp(tools, opts);
    } catch (err) {
      log(`start-up failed: ${(err as Error).message}; taking down what was started`);
      await stopCluster().catch((e: unknown) => {
        log(`take-down after the failure failed too: ${(e as Error).message}`);
      });
      throw err;
    }
    return handle(tools, ip, true);
  } finally {
    await stopEngine(engine);
  }
}

/** DownOptions tune stopCluster. */
export interface DownOptions {
  /** purge also removes containerd's root (the imported images) and the logs. Default: false. */
  purge?: boolean;
}

/**
 * stopCluster stops the cluster's processes (by pid file), its pods, and
 * restores the host: iptables chains, mounts, cgroups, links, netns, fixed
 * paths and sysctls as recorded before `up`. Safe to run at any time, twice,
 * or with nothing running.
 */
export async function stopCluster(opts: DownOptions = {}): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('the local cluster runs as root: run down as root too');
  let before: HostState | undefined;
  try {
    before = JSON.parse(await readFile(paths.snapshot, 'utf8')) as HostState;
  } catch {
    before = undefined;
    if (await exists(paths.cluster)) log('no host snapshot: sysctls cannot be restored, chains are removed by name');
  }
  for (const c of ['kube-proxy', 'kubelet', 'kube-scheduler', 'kube-controller-manager'] as const) await stopProcess(c);

  // The pods: their containers through containerd while it runs, then any
  // process left in the pod cgroups, then the shims.
  const containerd = await readPid('containerd');
  if (containerd && (await isOurs(containerd))) {
    try {
      const tasks = (await ctr(['tasks', 'ls', '-q'])).split('\n').filter(Boolean);
      for (const t of tasks) await ctr(['tasks', 'kill', '-s', 'SIGKILL', t]).catch(() => undefined);
      for (const t of tasks) await ctr(['tasks', 'delete', '-f', t]).catch(() => undefined);
      const containers = (await ctr(['containers', 'ls', '-q'])).split('\n').filter(Boolean);
      for (const c of containers) await ctr(['containers', 'delete', c]).catch(() => undefined);
      if (tasks.length || containers.length)
        log(`removed ${tasks.length} tasks and ${containers.length} containers from containerd`);
    } catch (e) {
      log(`could not list containerd's containers: ${(e as Error).message}`);
    }
  }
  for (const pid of await podPids(before)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  await stopProcess('containerd');
  for (const pid of await shimPids()) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  await stopProcess('kube-apiserver');
  await stopProcess('etcd');

  // kube-proxy's own clean-up of its rules, then every chain it, the
  // kubelet or the CNI plugins left.
  const proxy = join((await getKubeBin()) ?? '', 'kube-proxy');
  if (await exists(proxy))
    await run(proxy, ['--cleanup', '--v=0'], { env: { PATH: SYSTEM_PATH } }).catch(() => undefined);
  await removeChains(before, log);
  await unmountUnder([paths.cluster, paths.run, paths.containerdRoot], log);
  await removeCgroups(before, log);
  await restoreHost(before, log);
  await rm(paths.cluster, { recursive: true, force: true });
  await rm(paths.run, { recursive: true, force: true });
  if (opts.purge) await rm(paths.state, { recursive: true, force: true });
  log(`down${opts.purge ? ' (purged)' : ''}`);
}

async function getKubeBin(): Promise<string | undefined> {
  const { toolDir, KUBERNETES_VERSION } = await import('./get-k8s.ts');
  const bin = join(toolDir('kubernetes', KUBERNETES_VERSION), 'bin');
  return (await exists(bin)) ? bin : undefined;
}
