// Runs a real SPIRE server and agents on this machine, unprivileged, for
// `npm run start:spiffe` and the SPIRE tests: one agent per simulated node,
// each attested with a one-time join token and serving its own Workload API
// socket. Every process started here is stopped by stop(), also on failure.
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync, rmSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { request } from 'undici';
import { SpireServerCli } from './server-cli.ts';
import { agentSocketPath, checkSocketPath, makeSocketDir } from './socket-dir.ts';

export type { Entry, EntrySpec } from './server-cli.ts';

const ROOT = resolve(import.meta.dirname, '../..');

/** SpireOptions describe one SPIRE deployment (one trust domain). */
export interface SpireOptions {
  binDir: string;
  workDir: string;
  trustDomain?: string;
  /** ports: server API and health; agents get theirs from agentHealthPortBase + index. */
  serverPort: number;
  serverHealthPort: number;
  agentHealthPortBase: number;
  /** x509SvidTtl is the server's default X.509-SVID TTL, e.g. "1m". Default: "1h". */
  x509SvidTtl?: string;
  /** caTtl Default: "24h". */
  caTtl?: string;
  logLevel?: string;
  /** upstreamAuthority signs SPIRE's CA with an existing CA (spire/local/upstream-authority.conf). Default: SPIRE's own root. */
  upstreamAuthority?: { certFile: string; keyFile: string };
  /**
   * federation turns on SPIRE's bundle endpoint (spire/local/federation.conf)
   * and federates with other trust domains through theirs
   * (spire/local/federates-with.conf, one per entry). Default: off.
   */
  federation?: SpireFederation;
  /**
   * socketDir is the folder of the server's and agents' Unix sockets, kept
   * apart from workDir because socket paths have a 104–108 byte limit.
   * Default: a fresh short folder from makeSocketDir() (under
   * SHOP_SOCKET_DIR, XDG_RUNTIME_DIR or the temporary folder), removed by stop().
   */
  socketDir?: string;
}

/** SpireFederation configures SPIRE's side of SPIFFE federation through bundle endpoints. */
export interface SpireFederation {
  /** bundleEndpointPort is where this server serves its bundle (https_spiffe, on 127.0.0.1). */
  bundleEndpointPort: number;
  /** refreshHint is the refresh hint it serves, e.g. "1m" (SPIRE's minimum). Default: "5m". */
  refreshHint?: string;
  /** federatesWith lists the https_spiffe bundle endpoints of other trust domains. Default: none. */
  federatesWith?: { trustDomain: string; url: string; endpointSpiffeId: string }[];
}

async function waitHttp(
  url: string,
  what: string,
  alive: () => boolean,
  log: string,
  timeoutMs = 30_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!alive()) throw new Error(`${what} exited during start-up; its log is ${log}`);
    try {
      const res = await request(url, { signal: AbortSignal.timeout(1000) });
      await res.body.dump();
      if (res.statusCode === 200) return;
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what} was not ready within ${timeoutMs / 1000} s (${url}); its log is ${log}`);
}

/** Spire runs one SPIRE server and any number of agents. */
export class Spire extends SpireServerCli {
  readonly trustDomain: string;
  readonly #o: SpireOptions;
  /** socketDir is the folder of this deployment's Unix sockets. */
  readonly socketDir: string;
  readonly #ownsSocketDir: boolean;
  #server: ChildProcess | undefined;
  readonly #agents = new Map<string, { proc: ChildProcess | undefined; index: number }>();

  constructor(o: SpireOptions) {
    const socketDir = o.socketDir ?? makeSocketDir();
    super(join(o.binDir, 'spire-server'), join(socketDir, 'server.sock'));
    this.socketDir = socketDir;
    this.#ownsSocketDir = o.socketDir === undefined;
    this.#o = o;
    this.trustDomain = o.trustDomain ?? 'example.org';
  }

  /** agentSocket is the Workload API socket of a node's agent (in socketDir, never under workDir). */
  agentSocket(node: string): string {
    return agentSocketPath(this.socketDir, node);
  }

  #logFile(logName: string): string {
    return join(this.#o.workDir, 'logs', `${logName}.log`);
  }

  /** agentAddress is `SPIFFE_ENDPOINT_SOCKET` for workloads of a node. */
  agentAddress(node: string): string {
    return `unix://${this.agentSocket(node)}`;
  }

  get bundlePath(): string {
    return join(this.#o.workDir, 'bundle.pem');
  }

  #env(extra: Record<string, string>): NodeJS.ProcessEnv {
    return {
      ...process.env,
      SPIRE_TRUST_DOMAIN: this.trustDomain,
      SPIRE_SERVER_PORT: String(this.#o.serverPort),
      SPIRE_LOG_LEVEL: this.#o.logLevel ?? 'INFO',
      ...extra,
    };
  }

  #spawn(bin: string, args: string[], env: NodeJS.ProcessEnv, logName: string): ChildProcess {
    mkdirSync(join(this.#o.workDir, 'logs'), { recursive: true });
    const out = createWriteStream(this.#logFile(logName), { flags: 'a' });
    const p = spawn(join(this.#o.binDir, bin), args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    p.stdout.pipe(out);
    p.stderr.pipe(out);
    return p;
  }

  /** startServer starts the server, waits until it is ready, and exports its bundle for the agents. */
  async startServer(): Promise<void> {
    // A path the OS cannot bind fails here, naming the limit, not as "exited during start-up".
    checkSocketPath(this.serverSocket, 'spire-server API socket');
    const data = join(this.#o.workDir, 'server');
    mkdirSync(data, { recursive: true });
    mkdirSync(this.socketDir, { recursive: true, mode: 0o700 });
    const env = this.#env({
      SPIRE_SERVER_DATA: data,
      SPIRE_SERVER_SOCKET: this.serverSocket,
      SPIRE_SERVER_HEALTH_PORT: String(this.#o.serverHealthPort),
      SPIRE_X509_SVID_TTL: this.#o.x509SvidTtl ?? '1h',
      SPIRE_CA_TTL: this.#o.caTtl ?? '24h',
      SPIRE_UPSTREAM_CERT: this.#o.upstreamAuthority?.certFile ?? '',
      SPIRE_UPSTREAM_KEY: this.#o.upstreamAuthority?.keyFile ?? '',
      SPIRE_BUNDLE_ENDPOINT_PORT: String(this.#o.federation?.bundleEndpointPort ?? ''),
      SPIRE_BUNDLE_ENDPOINT_REFRESH_HINT: this.#o.federation?.refreshHint ?? '5m',
    });
    let config = join(ROOT, 'spire/local/server.conf');
    if (this.#o.upstreamAuthority) {
      const base = await readFile(config, 'utf8');
      const block = await readFile(join(ROOT, 'spire/local/upstream-authority.conf'), 'utf8');
      if (!/^plugins \{$/m.test(base))
        throw new Error(`${config} has no "plugins {" line to add the UpstreamAuthority to`);
      config = join(this.#o.workDir, 'server-upstream.conf');
      await writeFile(config, base.replace(/^plugins \{$/m, `plugins {\n${block}`));
    }
    if (this.#o.federation) config = await this.#withFederation(config, this.#o.federation);
    const proc = this.#spawn('spire-server', ['run', '-config', config, '-expandEnv'], env, 'spire-server');
    this.#server = proc;
    proc.once('exit', () => {
      if (this.#server === proc) this.#server = undefined;
    });
    await waitHttp(
      `http://127.0.0.1:${this.#o.serverHealthPort}/ready`,
      'spire-server',
      () => this.#server === proc,
      this.#logFile('spire-server'),
    );
    await writeFile(this.bundlePath, await this.bundlePem());
  }

  /** bundleEndpointUrl is where this server serves its bundle, when federation is on. */
  get bundleEndpointUrl(): string | undefined {
    const port = this.#o.federation?.bundleEndpointPort;
    return port === undefined ? undefined : `https://127.0.0.1:${String(port)}/`;
  }

  /** serverId is the SPIFFE ID the server presents on its bundle endpoint (https_spiffe). */
  get serverId(): string {
    return `spiffe://${this.trustDomain}/spire/server`;
  }

  /** #withFederation writes a copy of `config` with the federation block in its server block. */
  async #withFederation(config: string, f: SpireFederation): Promise<string> {
    const base = await readFile(config, 'utf8');
    const relation = await readFile(join(ROOT, 'spire/local/federates-with.conf'), 'utf8');
    const marker = '        # federates_with blocks (spire/local/federates-with.conf) go here.\n';
    const block = (await readFile(join(ROOT, 'spire/local/federation.conf'), 'utf8')).replace(
      marker,
      (f.federatesWith ?? [])
        .map((r) =>
          relation
            .replaceAll('{{TRUST_DOMAIN}}', r.trustDomain)
            .replaceAll('{{URL}}', r.url)
            .replaceAll('{{ENDPOINT_SPIFFE_ID}}', r.endpointSpiffeId),
        )
        .join(''),
    );
    if (!/^server \{$/m.test(base)) throw new Error(`${config} has no "server {" line to add the federation block to`);
    const out = join(this.#o.workDir, 'server-federation.conf');
    await writeFile(out, base.replace(/^server \{$/m, `server {\n${block}`));
    return out;
  }

  /** nodeId is the SPIFFE ID the agent of `node` gets (an alias of its join token). */
  nodeId(node: string): string {
    return `spiffe://${this.trustDomain}/node/${node}`;
  }

  async #joinToken(node: string): Promise<string> {
    const out = await this.cli(['token', 'generate', '-spiffeID', this.nodeId(node), '-ttl', '600']);
    const token = /Token:\s*(\S+)/.exec(out)?.[1];
    if (!token) throw new Error(`spire-server token generate printed no token: ${out}`);
    return token;
  }

  /** startAgent starts (or restarts) the agent of `node`; the first start attests with a fresh join token. */
  async startAgent(node: string): Promise<void> {
    checkSocketPath(this.agentSocket(node), `spire-agent ${node} Workload API socket`);
    const known = this.#agents.get(node);
    const index = known?.index ?? this.#agents.size;
    const data = join(this.#o.workDir, 'agents', node);
    mkdirSync(data, { recursive: true });
    mkdirSync(this.socketDir, { recursive: true, mode: 0o700 });
    const args = ['run', '-config', join(ROOT, 'spire/local/agent.conf'), '-expandEnv'];
    if (!known) args.push('-joinToken', await this.#joinToken(node));
    const healthPort = this.#o.agentHealthPortBase + index;
    const env = this.#env({
      SPIRE_AGENT_DATA: data,
      SPIRE_AGENT_SOCKET: this.agentSocket(node),
      SPIRE_AGENT_HEALTH_PORT: String(healthPort),
      SPIRE_TRUST_BUNDLE: this.bundlePath,
    });
    const proc = this.#spawn('spire-agent', args, env, `spire-agent-${node}`);
    const entry = { proc: proc as ChildProcess | undefined, index };
    this.#agents.set(node, entry);
    proc.once('exit', () => {
      if (entry.proc === proc) entry.proc = undefined;
    });
    await waitHttp(
      `http://127.0.0.1:${healthPort}/ready`,
      `spire-agent ${node}`,
      () => entry.proc === proc,
      this.#logFile(`spire-agent-${node}`),
    );
  }

  /** agentPid is the process id of a node's agent while it runs (for CPU and memory figures). */
  agentPid(node: string): number | undefined {
    return this.#agents.get(node)?.proc?.pid;
  }

  /** serverPid is the process id of the server while it runs. */
  get serverPid(): number | undefined {
    return this.#server?.pid;
  }

  /** stopAgent stops a node's agent: SIGTERM, or SIGKILL to simulate a crash. */
  async stopAgent(node: string, signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM'): Promise<void> {
    const a = this.#agents.get(node);
    if (a?.proc) await stopProcess(a.proc, signal);
  }

  /** stop stops every agent, then the server, and removes the socket folder it made. */
  async stop(): Promise<void> {
    for (const a of this.#agents.values()) if (a.proc) await stopProcess(a.proc, 'SIGTERM');
    if (this.#server) await stopProcess(this.#server, 'SIGTERM');
    this.#removeSocketDir();
  }

  /** killAllNow is the last resort on process exit. */
  killAllNow(): void {
    for (const a of this.#agents.values()) a.proc?.kill('SIGKILL');
    this.#server?.kill('SIGKILL');
    this.#removeSocketDir();
  }

  #removeSocketDir(): void {
    if (this.#ownsSocketDir) rmSync(this.socketDir, { recursive: true, force: true });
  }
}

async function stopProcess(p: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return;
  const exited = new Promise((r) => p.once('exit', r));
  p.kill(signal);
  const timer = setTimeout(() => p.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}
