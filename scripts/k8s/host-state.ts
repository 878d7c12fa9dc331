// What the local cluster changes on the host, recorded before `up` and put
// back by `down`: sysctls, iptables chains (KUBE-* and CNI-*), mounts under the
// cluster's own directories, network links (cni0, veths), network
// namespaces, pod cgroups, and fixed paths the kubelet, containerd and CNI
// create. snapshotHost() is also what the smoke run diffs to prove that
// `down` leaves the host as it found it.
import { execFile } from 'node:child_process';
import { access, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** SYSCTLS are the settings the kubelet, kube-proxy or this script may change. */
export const SYSCTLS = [
  'vm.overcommit_memory',
  'vm.panic_on_oom',
  'kernel.panic',
  'kernel.panic_on_oops',
  'kernel.keys.root_maxkeys',
  'kernel.keys.root_maxbytes',
  'net.ipv4.ip_forward',
  'net.ipv4.conf.all.route_localnet',
  'net.bridge.bridge-nf-call-iptables',
  'net.bridge.bridge-nf-call-ip6tables',
  'net.netfilter.nf_conntrack_max',
  'net.netfilter.nf_conntrack_tcp_timeout_established',
  'net.netfilter.nf_conntrack_tcp_timeout_close_wait',
] as const;

/**
 * FIXED_PATHS are paths outside the cluster's directories that the kubelet,
 * containerd or the CNI plugins create whatever they are told.
 */
export const FIXED_PATHS = [
  '/var/log/pods',
  '/var/log/containers',
  '/var/lib/cni',
  '/var/lib/kubelet',
  '/var/lib/containerd',
  '/etc/cni',
  '/opt/cni',
  '/opt/containerd',
  '/etc/kubernetes',
  '/usr/libexec/kubernetes',
  '/run/netns',
] as const;

const IPTABLES = ['iptables', 'ip6tables'] as const;
const TABLES = ['filter', 'nat', 'mangle', 'raw'] as const;
const CGROUP_ROOT = '/sys/fs/cgroup';
/** OWNED_CHAIN matches the chains the kubelet, kube-proxy and the CNI plugins create. */
const OWNED_CHAIN = /^(KUBE-|CNI-)/;

/** HostState is one snapshot of the host parts the cluster touches. */
export interface HostState {
  sysctls: Record<string, string | null>;
  /** chains maps "iptables/nat" to its chain names. */
  chains: Record<string, string[]>;
  mounts: string[];
  links: string[];
  netns: string[];
  paths: Record<string, boolean>;
  /** cgroups maps each v1 controller to whether its kubepods cgroup exists. */
  cgroups: Record<string, boolean>;
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}

function sysctlPath(name: string): string {
  return join('/proc/sys', ...name.split('.'));
}

async function readSysctl(name: string): Promise<string | null> {
  try {
    return (await readFile(sysctlPath(name), 'utf8')).trim();
  } catch {
    return null;
  }
}

/** writeSysctl sets one sysctl, e.g. writeSysctl('net.ipv4.ip_forward', '1'). */
export async function writeSysctl(name: string, value: string): Promise<void> {
  await writeFile(sysctlPath(name), `${value}\n`);
}

async function chainsOf(cmd: string, table: string): Promise<string[]> {
  try {
    const { stdout } = await run(`${cmd}-save`, ['-t', table], { maxBuffer: 64 << 20 });
    return stdout
      .split('\n')
      .filter((l) => l.startsWith(':'))
      .map((l) => l.slice(1).split(' ')[0] as string)
      .sort();
  } catch {
    return [];
  }
}

async function mountPoints(): Promise<string[]> {
  const text = await readFile('/proc/self/mountinfo', 'utf8');
  // Field 5 is the mount point, with spaces and such escaped as octal.
  return text
    .split('\n')
    .filter(Boolean)
    .map((l) =>
      (l.split(' ')[4] as string).replace(/\\(\d{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))),
    );
}

async function links(): Promise<string[]> {
  const { stdout } = await run('ip', ['-o', 'link', 'show']);
  return stdout
    .split('\n')
    .filter(Boolean)
    .map((l) => (l.split(': ')[1] ?? '').split('@')[0] as string)
    .sort();
}

async function cgroupControllers(): Promise<string[]> {
  const entries = await readdir(CGROUP_ROOT, { withFileTypes: true }).catch(() => []);
  const out: string[] = [];
  for (const e of entries) {
    if (e.isDirectory() && (await exists(join(CGROUP_ROOT, e.name, 'cgroup.procs')))) out.push(e.name);
  }
  return out.sort();
}

/** snapshotHost reads the current state of everything in HostState. */
export async function snapshotHost(): Promise<HostState> {
  const sysctls: Record<string, string | null> = {};
  for (const s of SYSCTLS) sysctls[s] = await readSysctl(s);
  const chains: Record<string, string[]> = {};
  for (const cmd of IPTABLES) for (const t of TABLES) chains[`${cmd}/${t}`] = await chainsOf(cmd, t);
  const paths: Record<string, boolean> = {};
  for (const p of FIXED_PATHS) paths[p] = await exists(p);
  const cgroups: Record<string, boolean> = {};
  for (const c of await cgroupControllers()) cgroups[c] = await exists(join(CGROUP_ROOT, c, 'kubepods'));
  return {
    sysctls,
    chains,
    mounts: (await mountPoints()).sort(),
    links: await links(),
    netns: (await readdir('/run/netns').catch(() => [] as string[])).sort(),
    paths,
    cgroups,
  };
}

/** diffHost lists, one line each, what differs between two snapshots (empty when none). */
export function diffHost(before: HostState, after: HostState): string[] {
  const out: string[] = [];
  const sets = (what: string, a: string[], b: string[]): void => {
    for (const x of b) if (!a.includes(x)) out.push(`${what}: added ${x}`);
    for (const x of a) if (!b.includes(x)) out.push(`${what}: removed ${x}`);
  };
  for (const [k, v] of Object.entries(before.sysctls))
    if (after.sysctls[k] !== v) out.push(`sysctl ${k}: ${String(v)} -> ${String(after.sysctls[k])}`);
  for (const k of new Set([...Object.keys(before.chains), ...Object.keys(after.chains)]))
    sets(`chain ${k}`, before.chains[k] ?? [], after.chains[k] ?? []);
  sets('mount', before.mounts, after.mounts);
  sets('link', before.links, after.links);
  sets('netns', before.netns, after.netns);
  for (const [p, v] of Object.entries(before.paths))
    if (after.paths[p] !== v)
      out.push(`path ${p}: ${v ? 'present' : 'absent'} -> ${after.paths[p] ? 'present' : 'absent'}`);
  for (const [c, v] of Object.entries(before.cgroups))
    if (after.cgroups[c] !== v)
      out.push(`cgroup ${c}/kubepods: ${v ? 'present' : 'absent'} -> ${after.cgroups[c] ? 'present' : 'absent'}`);
  return out;
}

/** splitRule splits one `iptables -S` line into arguments, honouring its double quotes. */
export function splitRule(line: string): string[] {
  const args: string[] = [];
  const re = /"((?:[^"\\]|\\.)*)"|(\S+)/g;
  for (const m of line.matchAll(re)) args.push(m[1] !== undefined ? m[1].replace(/\\(.)/g, '$1') : (m[2] as string));
  return args;
}

/**
 * removeChains deletes the KUBE-* and CNI-* chains that were not in `before`
 * (all of them when there is no snapshot), first the rules of other chains
 * that jump to them, then their rules, then the chains.
 */
export async function removeChains(before: HostState | undefined, log: (m: string) => void): Promise<void> {
  for (const cmd of IPTABLES) {
    for (const t of TABLES) {
      const had = new Set(before?.chains[`${cmd}/${t}`] ?? []);
      const now = await chainsOf(cmd, t);
      const doomed = new Set(now.filter((c) => OWNED_CHAIN.test(c) && !had.has(c)));
      if (doomed.size === 0) continue;
      let rules: string[];
      try {
        rules = (await run(cmd, ['-w', '-t', t, '-S'], { maxBuffer: 64 << 20 })).stdout.split('\n');
      } catch {
        continue;
      }
      for (const line of rules) {
        if (!line.startsWith('-A ')) continue;
        const args = splitRule(line);
        const chain = args[1] as string;
        const jump = args[args.indexOf('-j') + 1] ?? args[args.indexOf('-g') + 1];
        if (doomed.has(chain) || jump === undefined || !doomed.has(jump)) continue;
        await run(cmd, ['-w', '-t', t, '-D', ...args.slice(1)]).catch((e: unknown) => {
          log(`could not delete "${line}" from ${cmd}/${t}: ${(e as Error).message.trim()}`);
        });
      }
      for (const c of doomed) await run(cmd, ['-w', '-t', t, '-F', c]).catch(() => undefined);
      for (const c of doomed)
        await run(cmd, ['-w', '-t', t, '-X', c]).catch((e: unknown) => {
          log(`could not delete chain ${c} from ${cmd}/${t}: ${(e as Error).message.trim()}`);
        });
      log(`removed ${doomed.size} chains from ${cmd}/${t}`);
    }
  }
}

/** unmountUnder unmounts every mount at or below one of the prefixes, deepest first. */
export async function unmountUnder(prefixes: string[], log: (m: string) => void): Promise<void> {
  const under = (m: string): boolean => prefixes.some((p) => m === p || m.startsWith(`${p}/`));
  // A path can be mounted over more than once (the kubelet bind-mounts its
  // root dir onto itself): loop until none is left.
  for (let pass = 0; pass < 10; pass++) {
    const mine = (await mountPoints()).filter(under).sort((a, b) => b.length - a.length);
    if (mine.length === 0) return;
    for (const m of mine) {
      await run('umount', [m]).catch(() => run('umount', ['-l', m]).catch(() => undefined));
    }
    if (pass === 0) log(`unmounted ${mine.length} mounts under ${prefixes.join(', ')}`);
  }
  log(`mounts left under ${prefixes.join(', ')}: ${(await mountPoints()).filter(under).join(', ')}`);
}

async function cgroupTree(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string): Promise<void> => {
    out.push(d);
    for (const e of await readdir(d, { withFileTypes: true }).catch(() => [])) {
      if (e.isDirectory()) await walk(join(d, e.name));
    }
  };
  if (await exists(dir)) await walk(dir);
  return out;
}

/** podPids lists the processes in the kubepods cgroups that were created by the cluster. */
export async function podPids(before: HostState | undefined): Promise<number[]> {
  const pids = new Set<number>();
  for (const c of await cgroupControllers()) {
    if (before?.cgroups[c]) continue;
    for (const d of await cgroupTree(join(CGROUP_ROOT, c, 'kubepods'))) {
      const text = await readFile(join(d, 'cgroup.procs'), 'utf8').catch(() => '');
      for (const l of text.split('\n')) if (l.trim()) pids.add(Number(l));
    }
  }
  return [...pids];
}

/** removeCgroups removes the kubepods cgroup trees the cluster created, deepest first. */
export async function removeCgroups(before: HostState | undefined, log: (m: string) => void): Promise<void> {
  let n = 0;
  for (const c of await cgroupControllers()) {
    if (before?.cgroups[c]) continue;
    const tree = (await cgroupTree(join(CGROUP_ROOT, c, 'kubepods'))).sort((a, b) => b.length - a.length);
    for (const d of tree) {
      try {
        await run('rmdir', [d]);
        n++;
      } catch (e) {
        log(`could not remove cgroup ${d}: ${(e as Error).message.trim()}`);
      }
    }
  }
  if (n) log(`removed ${n} pod cgroups`);
}

/** restoreHost puts back sysctls, links, netns and fixed paths as `before` had them. */
export async function restoreHost(before: HostState | undefined, log: (m: string) => void): Promise<void> {
  const now = await snapshotHost();
  if (before) {
    for (const [k, v] of Object.entries(before.sysctls)) {
      if (v !== null && now.sysctls[k] !== v) {
        await writeSysctl(k, v).catch((e: unknown) => {
          log(`could not restore ${k}: ${(e as Error).message}`);
        });
        log(`restored ${k} = ${v} (was ${String(now.sysctls[k])})`);
      }
    }
  }
  const hadLinks = new Set(before?.links ?? []);
  for (const l of now.links) {
    if (hadLinks.has(l)) continue;
    if (l === 'cni0' || (before !== undefined && l.startsWith('veth'))) {
      await run('ip', ['link', 'delete', l]).catch(() => undefined);
      log(`deleted link ${l}`);
    }
  }
  const hadNetns = new Set(before?.netns ?? []);
  for (const n of now.netns) {
    if (hadNetns.has(n) || !n.startsWith('cni-')) continue;
    await run('umount', [join('/run/netns', n)]).catch(() => undefined);
    await rm(join('/run/netns', n), { force: true });
    log(`deleted netns ${n}`);
  }
  if (before) {
    for (const p of FIXED_PATHS) {
      if (!before.paths[p] && now.paths[p]) {
        // Other programs on this machine make network namespaces too: the
        // folder goes only when nothing is left in it.
        if (p === '/run/netns') {
          if ((await readdir(p).catch(() => ['?'])).length > 0) continue;
          await run('rmdir', [p]).catch(() => undefined);
        } else await rm(p, { recursive: true, force: true });
        log(`removed ${p}`);
      }
    }
  }
}
