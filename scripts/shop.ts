// Starting and stopping the shop's three services as processes on loopback:
// shared by `npm start` and the cross-service tests, so both run the shop the
// same way.
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { request } from 'undici';
import { TcpBalancer } from './tcp-balancer.ts';

/** ROOT is the repository root. */
export const ROOT = resolve(import.meta.dirname, '..');

/** ServiceName names one of the shop's services. */
export type ServiceName = 'inventory' | 'payment' | 'order';

/** ShopPorts are every port the shop listens on. */
export interface ShopPorts {
  order: number;
  orderOps: number;
  payment: number;
  paymentOps: number;
  paymentAdmin: number;
  inventory: number;
  inventoryGrpc: number;
  inventoryOps: number;
}

/** DEFAULT_PORTS are the documented defaults. */
export const DEFAULT_PORTS: ShopPorts = {
  order: 8080,
  orderOps: 9080,
  payment: 8443,
  paymentOps: 9443,
  paymentAdmin: 9543,
  inventory: 8444,
  inventoryGrpc: 50051,
  inventoryOps: 9444,
};

/** freePort picks one free loopback port (free now; the caller binds it soon after). */
export function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => {
        res(port);
      });
    });
  });
}

/** freePorts picks free loopback ports for a test shop. */
export async function freePorts(): Promise<ShopPorts> {
  const entries = await Promise.all(Object.keys(DEFAULT_PORTS).map(async (k) => [k, await freePort()] as const));
  return Object.fromEntries(entries) as unknown as ShopPorts;
}

/** ShopOptions describe one shop. */
export interface ShopOptions {
  dataDir: string;
  certsDir: string;
  ports?: ShopPorts;
  /** env adds or overrides variables per service. */
  env?: Partial<Record<ServiceName, Record<string, string>>>;
  /**
   * replicas runs that many processes of a service (default 1). Above 1 the
   * service's public ports (API, and inventory's gRPC) belong to a
   * round-robin TCP balancer (scripts/tcp-balancer.ts) and each replica
   * listens on free ports of its own; replica 1 keeps the documented ops and
   * admin ports, the others get free ones.
   */
  replicas?: Partial<Record<ServiceName, number>>;
  /** onExit is told when a service exits without being asked to (replica counts from 1). */
  onExit?: (name: ServiceName, code: number | null, signal: string | null, replica: number) => void;
}

/** ReplicaPorts are the ports one replica listens on. */
interface ReplicaPorts {
  api: number;
  grpc?: number;
  ops: number;
  admin?: number;
}

const HOST = '127.0.0.1';

const SERVICES: readonly ServiceName[] = ['inventory', 'payment', 'order'];

/** MAX_REPLICAS bounds replicas per service (ports and memory on one machine). */
export const MAX_REPLICAS = 8;

/**
 * Shop runs the three services as child processes (one or more replicas
 * each, behind a round-robin TCP balancer when more) and knows how to stop
 * them. Methods that take `replica` count from 1; left out, start and stop
 * mean every replica of the service, the others replica 1.
 */
export class Shop {
  readonly ports: ShopPorts;
  readonly #o: ShopOptions;
  /** #children holds each replica's current process, by replica key ("payment", "payment-2"). */
  readonly #children = new Map<string, ChildProcess>();
  readonly #replicaPorts = new Map<string, ReplicaPorts>();
  /** #ready holds the replica keys in the balancer's rotation: ready, and not exited since. */
  readonly #ready = new Set<string>();
  readonly #balancers = new Map<ServiceName, TcpBalancer[]>();
  /** #live holds every process started and not yet exited (during a hand-over, old and new). */
  readonly #live = new Set<ChildProcess>();
  /** #retiring holds the processes we asked to stop, so their exit is not reported as unexpected. */
  readonly #retiring = new Set<ChildProcess>();

  constructor(o: ShopOptions) {
    for (const [name, n] of Object.entries(o.replicas ?? {}))
      if (!Number.isInteger(n) || n < 1 || n > MAX_REPLICAS)
        throw new Error(`replicas of ${name} must be an integer from 1 to ${MAX_REPLICAS}, got ${String(n)}`);
    this.#o = o;
    this.ports = o.ports ?? DEFAULT_PORTS;
  }

  /** orderUrl is the public API's base URL (the balancer's, with several order replicas). */
  get orderUrl(): string {
    return `http://${HOST}:${this.ports.order}`;
  }

  /** replicas is how many processes of a service this shop runs. */
  replicas(name: ServiceName): number {
    return this.#o.replicas?.[name] ?? 1;
  }

  #key(name: ServiceName, replica: number): string {
    if (!Number.isInteger(replica) || replica < 1 || replica > this.replicas(name))
      throw new Error(`${name} has replicas 1 to ${this.replicas(name)}, not ${String(replica)}`);
    return replica === 1 ? name : `${name}-${replica}`;
  }

  /** logFile is where a replica's output goes. */
  logFile(name: ServiceName, replica = 1): string {
    return join(this.#o.dataDir, 'logs', `${this.#key(name, replica)}.log`);
  }

  /** #portsOf gives a replica its ports, the same for its whole life (restarts included). */
  async #portsOf(name: ServiceName, replica: number): Promise<ReplicaPorts> {
    const key = this.#key(name, replica);
    const known = this.#replicaPorts.get(key);
    if (known) return known;
    const p = this.ports;
    const balanced = this.replicas(name) > 1;
    // A balanced port (API, gRPC) is the balancer's: every replica takes a
    // free one. Ops and admin ports are the replica's own: replica 1 keeps
    // the documented one.
    const front = (documented: number): Promise<number> | number => (balanced ? freePort() : documented);
    const side = (documented: number): Promise<number> | number => (replica === 1 ? documented : freePort());
    const rp: ReplicaPorts =
      name === 'inventory'
        ? { api: await front(p.inventory), grpc: await front(p.inventoryGrpc), ops: await side(p.inventoryOps) }
        : name === 'payment'
          ? { api: await front(p.payment), ops: await side(p.paymentOps), admin: await side(p.paymentAdmin) }
          : { api: await front(p.order), ops: await side(p.orderOps) };
    this.#replicaPorts.set(key, rp);
    return rp;
  }

  /** apiPort is the port a replica's own API listens on (behind the balancer when there are several). */
  async apiPort(name: ServiceName, replica = 1): Promise<number> {
    return (await this.#portsOf(name, replica)).api;
  }

  #env(name: ServiceName, replica: number, rp: ReplicaPorts): Record<string, string> {
    const p = this.ports;
    const key = this.#key(name, replica);
    const common = {
      HOST,
      DATA_DIR: join(this.#o.dataDir, key),
      TLS_CERT_FILE: join(this.#o.certsDir, `${name}.crt.pem`),
      TLS_KEY_FILE: join(this.#o.certsDir, `${name}.key.pem`),
      TLS_CA_FILE: join(this.#o.certsDir, 'ca.crt.pem'),
      SPIFFE_ENDPOINT_SOCKET: '',
    };
    // Callers always use the public ports: a balancer's when the upstream has replicas.
    const own: Record<ServiceName, Record<string, string>> = {
      inventory: { PORT: String(rp.api), GRPC_PORT: String(rp.grpc), OPS_PORT: String(rp.ops) },
      payment: { PORT: String(rp.api), OPS_PORT: String(rp.ops), ADMIN_PORT: String(rp.admin) },
      order: {
        PORT: String(rp.api),
        OPS_PORT: String(rp.ops),
        INVENTORY_URL: `https://${HOST}:${p.inventory}`,
        INVENTORY_GRPC_TARGET: `${HOST}:${p.inventoryGrpc}`,
        PAYMENT_URL: `https://${HOST}:${p.payment}`,
      },
    };
    return { ...common, ...own[name], ...(this.#o.env?.[name] ?? {}) };
  }

  /** opsUrl is a replica's plaintext ops base URL. */
  opsUrl(name: ServiceName, replica = 1): string {
    const key = this.#key(name, replica);
    const port =
      this.#replicaPorts.get(key)?.ops ??
      (replica === 1
        ? { order: this.ports.orderOps, payment: this.ports.paymentOps, inventory: this.ports.inventoryOps }[name]
        : undefined);
    if (port === undefined) throw new Error(`${key} has not been started`);
    return `http://${HOST}:${port}`;
  }

  /** balancers are a service's balancers (API first, then inventory's gRPC); none with one replica. */
  balancers(name: ServiceName): readonly TcpBalancer[] {
    return this.#balancers.get(name) ?? [];
  }

  async #ensureBalancers(name: ServiceName): Promise<void> {
    if (this.replicas(name) === 1 || this.#balancers.has(name)) return;
    const ready = (pick: (rp: ReplicaPorts) => number | undefined) => (): number[] =>
      [...this.#ready]
        .filter((k) => k === name || k.startsWith(`${name}-`))
        .map((k) => this.#replicaPorts.get(k))
        .map((rp) => (rp ? pick(rp) : undefined))
        .filter((x): x is number => x !== undefined);
    const p = this.ports;
    // Payment's and inventory's ports speak TLS, where replaying a connection's
    // first bytes to another replica is safe; order's public API is plain HTTP.
    const tls = name !== 'order';
    const list = [
      new TcpBalancer({
        name,
        host: HOST,
        port: { order: p.order, payment: p.payment, inventory: p.inventory }[name],
        backends: ready((rp) => rp.api),
        replayUntilAnswered: tls,
      }),
    ];
    if (name === 'inventory')
      list.push(
        new TcpBalancer({
          name: 'inventory gRPC',
          host: HOST,
          port: p.inventoryGrpc,
          backends: ready((rp) => rp.grpc),
          replayUntilAnswered: true,
        }),
      );
    this.#balancers.set(name, list);
    try {
      for (const b of list) await b.listen();
    } catch (err) {
      this.#balancers.delete(name);
      await Promise.all(list.map((b) => b.close()));
      throw err;
    }
  }

  /**
   * start starts one replica, or every replica of the service not running,
   * and waits until each one's ops port says ready; ready replicas join the
   * balancer's rotation.
   */
  async start(name: ServiceName, env: Record<string, string> = {}, replica?: number): Promise<void> {
    await this.#ensureBalancers(name);
    const which =
      replica === undefined
        ? Array.from({ length: this.replicas(name) }, (_, i) => i + 1).filter((r) => !this.isRunning(name, r))
        : [replica];
    await Promise.all(
      which.map(async (r) => {
        const rp = await this.#portsOf(name, r);
        this.#spawn(name, r, { ...this.#env(name, r, rp), ...env });
        await this.#waitReady(name, r);
        this.#ready.add(this.#key(name, r));
      }),
    );
  }

  /**
   * handover replaces a running replica with a new instance (new `env`, e.g.
   * another identity source) without a gap: the new one binds the same API
   * ports (both run with LISTEN_REUSE_PORT=true), gets its own ops port, and
   * only once it is ready is the old one told to drain (SIGTERM).
   */
  async handover(name: ServiceName, env: Record<string, string>, replica = 1): Promise<void> {
    const key = this.#key(name, replica);
    const old = this.#children.get(key);
    const rp = await this.#portsOf(name, replica);
    const previousOps = rp.ops;
    rp.ops = await freePort();
    this.#spawn(name, replica, { ...this.#env(name, replica, rp), ...env });
    try {
      await this.#waitReady(name, replica);
    } catch (err) {
      // The new instance failed: the old one keeps serving.
      await this.stop(name, 'SIGTERM', replica);
      if (old) this.#children.set(key, old);
      rp.ops = previousOps;
      throw err;
    }
    if (old) await this.#stopChild(old, 'SIGTERM');
    this.#ready.add(key);
  }

  #spawn(name: ServiceName, replica: number, env: Record<string, string>): ChildProcess {
    const key = this.#key(name, replica);
    mkdirSync(join(this.#o.dataDir, 'logs'), { recursive: true });
    const out = createWriteStream(this.logFile(name, replica), { flags: 'a' });
    const child = spawn(process.execPath, [join(ROOT, 'services', name, 'src', 'server.ts')], {
      cwd: ROOT,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout.pipe(out);
    child.stderr.pipe(out);
    this.#children.set(key, child);
    this.#live.add(child);
    child.once('exit', (code, signal) => {
      this.#live.delete(child);
      if (this.#children.get(key) === child) {
        this.#children.delete(key);
        this.#ready.delete(key);
      }
      if (!this.#retiring.has(child)) this.#o.onExit?.(name, code, signal, replica);
    });
    return child;
  }

  /** startAll starts inventory, payment, then order (all replicas); if one fails, those already started are stopped. */
  async startAll(): Promise<void> {
    try {
      for (const name of SERVICES) await this.start(name);
    } catch (err) {
      await this.stopAll();
      throw err;
    }
  }

  async #waitReady(name: ServiceName, replica: number, timeoutMs = 30_000): Promise<void> {
    const key = this.#key(name, replica);
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (!this.#children.has(key))
        throw new Error(`${key} exited during start-up; see ${this.logFile(name, replica)}`);
      try {
        const res = await request(`${this.opsUrl(name, replica)}/health/ready`, { signal: AbortSignal.timeout(1000) });
        await res.body.dump();
        if (res.statusCode === 200) return;
      } catch {
        // not listening yet
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`${key} was not ready within ${timeoutMs / 1000} s; see ${this.logFile(name, replica)}`);
  }

  /** isRunning tells whether a replica's process is alive. */
  isRunning(name: ServiceName, replica = 1): boolean {
    return this.#children.has(this.#key(name, replica));
  }

  /** pid is a replica's process id, while it runs. */
  pid(name: ServiceName, replica = 1): number | undefined {
    return this.#children.get(this.#key(name, replica))?.pid;
  }

  /**
   * stop ends one replica, or all of the service's: SIGTERM (graceful drain),
   * or SIGKILL to simulate a crash. It answers replica 1's exit code (or the
   * named replica's); null when it was not running.
   */
  async stop(name: ServiceName, signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM', replica?: number): Promise<number | null> {
    const which = replica === undefined ? Array.from({ length: this.replicas(name) }, (_, i) => i + 1) : [replica];
    const codes = await Promise.all(
      which.map((r) => {
        const key = this.#key(name, r);
        // Out of rotation first: no new connection lands on a replica going away.
        this.#ready.delete(key);
        const child = this.#children.get(key);
        return child ? this.#stopChild(child, signal) : Promise.resolve(null);
      }),
    );
    return codes[0] ?? null;
  }

  /** freeze stops a replica's process where it stands (SIGSTOP): its sockets stay open, nothing answers. */
  freeze(name: ServiceName, replica = 1): void {
    this.#children.get(this.#key(name, replica))?.kill('SIGSTOP');
  }

  /** thaw lets a frozen replica run again (SIGCONT); harmless on one that runs. */
  thaw(name: ServiceName, replica = 1): void {
    this.#children.get(this.#key(name, replica))?.kill('SIGCONT');
  }

  async #stopChild(child: ChildProcess, signal: NodeJS.Signals): Promise<number | null> {
    if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
    // A frozen process would hold a SIGTERM until thawed.
    child.kill('SIGCONT');
    this.#retiring.add(child);
    const exited = new Promise<number | null>((r) =>
      child.once('exit', (code) => {
        r(code);
      }),
    );
    child.kill(signal);
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    const code = await exited;
    clearTimeout(timer);
    this.#retiring.delete(child);
    return code;
  }

  /** stopAll stops order first, so nothing calls an upstream that has already gone, then the balancers. */
  async stopAll(): Promise<void> {
    for (const name of ['order', 'payment', 'inventory'] as const) await this.stop(name);
    const balancers = [...this.#balancers.values()].flat();
    this.#balancers.clear();
    await Promise.all(balancers.map((b) => b.close()));
  }

  /** killAllNow is the last resort on process exit: SIGKILL whatever is left. */
  killAllNow(): void {
    for (const c of this.#live) c.kill('SIGKILL');
  }
}

/**
 * createDevCerts runs the spiffe-auth CLI (tools/spiffe-auth) to create (or
 * reuse) a development CA and the services' certificates; `services` adds
 * others (e.g. "postgres", the database server's certificate).
 */
export function createDevCerts(
  certsDir: string,
  quiet = false,
  services: readonly string[] = ['order', 'payment', 'inventory'],
): Promise<void> {
  return new Promise((res, rej) => {
    const p = spawn(
      process.execPath,
      [
        join(ROOT, 'tools/spiffe-auth/src/cli/main.ts'),
        'dev-certs',
        '--out-dir',
        certsDir,
        '--services',
        services.join(','),
      ],
      {
        cwd: ROOT,
        stdio: quiet ? 'ignore' : 'inherit',
      },
    );
    p.on('exit', (code) => {
      if (code === 0) res();
      else rej(new Error(`spiffe-auth dev-certs exited ${code}`));
    });
  });
}
