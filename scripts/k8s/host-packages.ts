// Debian packages the local cluster runs on, installed with apt-get (as
// root) when missing: etcd, containerd + runc, the CNI plugins, iptables,
// conntrack (kube-proxy), socat (kubectl port-forward), openssl (the PKI).
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** HOST_PACKAGES maps each Debian package to a file it installs, to tell whether it is there. */
export const HOST_PACKAGES: Record<string, string> = {
  'etcd-server': '/usr/bin/etcd',
  containerd: '/usr/bin/containerd',
  runc: '/usr/sbin/runc',
  'containernetworking-plugins': '/usr/lib/cni/bridge',
  iptables: '/usr/sbin/iptables',
  conntrack: '/usr/sbin/conntrack',
  socat: '/usr/bin/socat',
  openssl: '/usr/bin/openssl',
};

async function installed(pkg: string): Promise<boolean> {
  try {
    const { stdout } = await run('dpkg-query', ['-W', '-f=${Status}', pkg]);
    return stdout.includes('install ok installed');
  } catch {
    return false;
  }
}

/** ensureHostPackages installs whichever HOST_PACKAGES are missing and returns their names. */
export async function ensureHostPackages(log: (m: string) => void): Promise<string[]> {
  const missing: string[] = [];
  for (const p of Object.keys(HOST_PACKAGES)) if (!(await installed(p))) missing.push(p);
  if (missing.length === 0) return [];
  if (process.getuid?.() !== 0) throw new Error(`missing Debian packages ${missing.join(', ')}; install them as root`);
  log(`installing Debian packages: ${missing.join(' ')}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  // Other jobs on the machine may hold dpkg's lock for a while: wait for it.
  const args = ['install', '-y', '--no-install-recommends', '-o', 'DPkg::Lock::Timeout=600', ...missing];
  try {
    await run('apt-get', args, { env, maxBuffer: 64 << 20 });
  } catch {
    await run('apt-get', ['update', '-o', 'DPkg::Lock::Timeout=600'], { env, maxBuffer: 64 << 20 });
    await run('apt-get', args, { env, maxBuffer: 64 << 20 });
  }
  return missing;
}
