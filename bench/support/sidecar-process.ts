// Processes the sidecar scenario runs that are not Node children: ghostunnel
// in server and client mode, and the Go peer. Started with spawn, stopped by
// pid (SIGTERM, then SIGKILL), measured through /proc.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { connect, createServer, type AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Cleanup } from './cleanup.ts';

/** Spawned is a started process: its pid and, when it listens, its port. */
export interface Spawned {
  pid: number | undefined;
  port: number;
  /** output is what it printed so far (stdout and stderr), for error messages. */
  output(): string;
}

/** freePort asks the kernel for a free loopback port (it may be taken again before use; fine on a test machine). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => {
    server.close(() => {
      resolve();
    });
  });
  return port;
}

async function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => {
      resolve(false);
    });
  });
}

/** spawnListening starts `binary args`, registers its stop with `cleanup`, and waits until `port` accepts connections. */
export async function spawnListening(
  cleanup: Cleanup,
  name: string,
  binary: string,
  args: string[],
  port: number,
  env: Record<string, string> = {},
): Promise<Spawned> {
  const child: ChildProcess = spawn(binary, args, {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const keep = (d: Buffer): void => {
    out = (out + d.toString()).slice(-4000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const detach = cleanup.onExit(() => child.kill('SIGKILL'));
  const running = (): boolean => child.exitCode === null && child.signalCode === null;
  cleanup.add(name, async () => {
    if (running()) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
    detach();
  });
  const deadline = Date.now() + 15_000;
  while (!(await accepts(port))) {
    if (!running()) throw new Error(`${name} exited (${child.exitCode ?? child.signalCode}) before listening: ${out}`);
    if (Date.now() > deadline) throw new Error(`${name} did not listen on ${port} within 15 s: ${out}`);
    await sleep(50);
  }
  return { pid: child.pid, port, output: () => out };
}

/** rssMiB is a process's resident set size in MiB (Linux /proc), or null once it exited. */
export function rssMiB(pid: number | undefined): number | null {
  if (pid === undefined) return null;
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : null;
  } catch {
    return null;
  }
}

/** GhostunnelIdentity is where a ghostunnel gets its SVID and bundle: a Workload API address (`unix:///…`). */
export interface GhostunnelIdentity {
  workloadApi: string;
}

/** ghostunnelServerArgs runs ghostunnel as a server-side sidecar: mTLS on `listen`, plaintext to `target`, only `allowId` let in. */
export function ghostunnelServerArgs(
  id: GhostunnelIdentity,
  listen: number,
  target: number,
  allowId: string,
): string[] {
  return [
    'server',
    '--listen',
    `127.0.0.1:${listen}`,
    '--target',
    `127.0.0.1:${target}`,
    '--use-workload-api-addr',
    id.workloadApi,
    '--allow-uri',
    allowId,
    '--quiet=conns',
  ];
}

/** ghostunnelClientArgs runs ghostunnel as a client-side sidecar: plaintext on `listen`, mTLS to `target`, only `verifyId` trusted. */
export function ghostunnelClientArgs(
  id: GhostunnelIdentity,
  listen: number,
  target: number,
  verifyId: string,
): string[] {
  return [
    'client',
    '--listen',
    `127.0.0.1:${listen}`,
    '--target',
    `127.0.0.1:${target}`,
    '--use-workload-api-addr',
    id.workloadApi,
    '--verify-uri',
    verifyId,
    '--quiet=conns',
  ];
}
