// Starting and stopping the shop's three services as processes on loopback:
// shared by `npm start` and the cross-service tests, so both run the shop the
// same way.
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { request } from 'undici';

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
  /** onExit is told when a service exits without being asked to. */
  onExit?: (name: ServiceName, code: number | null, signal: string | null) => void;
}

const HOST = '127.0.0.1';

/** Shop runs the three services as child processes and knows how to stop them. */
export class Shop {
  readonly ports: ShopPorts;
  readonly #o: ShopOptions;
  readonly #children = new Map<ServiceName, ChildProcess>();
  readonly #opsPorts = new Map<ServiceName, number>();
  /** #live holds every process started and not yet exited (during a hand-over, old and new). */
  readonly #live = new Set<ChildProcess>();
  /** #retiring holds the processes we asked to stop, so their exit is not reported as unexpected. */
  readonly #retiring = new Set<ChildProcess>();

  constructor(o: ShopOptions) {
    this.#o = o;
    this.ports = o.ports ?? DEFAULT_PORTS;
  }

  /** orderUrl is the public API's base URL. */
  get orderUrl(): string {
    return `http://${HOST}:${this.ports.order}`;
  }

  /** logFile is where a service's output goes. */
  logFile(name: ServiceName): string {
    return join(this.#o.dataDir, 'logs', `${name}.log`);
  }

  #env(name: ServiceName): Record<string, string> {
    const p = this.ports;
    const common = {
      HOST,
      DATA_DIR: join(this.#o.dataDir, name),
      TLS_CERT_FILE: join(this.#o.certsDir, `${name}.crt.pem`),
      TLS_KEY_FILE: join(this.#o.certsDir, `${name}.key.pem`),
      TLS_CA_FILE: join(this.#o.certsDir, 'ca.crt.pem'),
      SPIFFE_ENDPOINT_SOCKET: '',
    };
    const own: Record<ServiceName, Record<string, string>> = {
      inventory: { PORT: String(p.inventory), GRPC_PORT: String(p.inventoryGrpc), OPS_PORT: String(p.inventoryOps) },
      payment: { PORT: String(p.payment), OPS_PORT: String(p.paymentOps), ADMIN_PORT: String(p.paymentAdmin) },
      order: {
        PORT: String(p.order),
        OPS_PORT: String(p.orderOps),
        INVENTORY_URL: `https://${HOST}:${p.inventory}`,
        INVENTORY_GRPC_TARGET: `${HOST}:${p.inventoryGrpc}`,
        PAYMENT_URL: `https://${HOST}:${p.payment}`,
      },
    };
    return { ...common, ...own[name], ...(this.#o.env?.[name] ?? {}) };
  }

  /** opsUrl is a service's plaintext ops base URL. */
  opsUrl(name: ServiceName): string {
    const port =
      this.#opsPorts.get(name) ??
      { order: this.ports.orderOps, payment: this.ports.paymentOps, inventory: this.ports.inventoryOps }[name];
    return `http://${HOST}:${port}`;
  }

  /** start starts one service and waits until its ops port says ready. */
  async start(name: ServiceName, env: Record<string, string> = {}): Promise<void> {
    this.#spawn(name, env);
    await this.#waitReady(name);
  }

  /**
   * handover replaces a running service with a new instance (new `env`, e.g.
   * another identity source) without a gap: the new one binds the same API
   * ports (both run with LISTEN_REUSE_PORT=true), gets its own ops port, and
   * only once it is ready is the old one told to drain (SIGTERM).
   */
  async handover(name: ServiceName, env: Record<string, string>): Promise<void> {
    const old = this.#children.get(name);
    const opsPort = await freePort();
    const previousOps = this.#opsPorts.get(name);
    this.#opsPorts.set(name, opsPort);
    this.#spawn(name, { ...env, OPS_PORT: String(opsPort) });
    try {
      await this.#waitReady(name);
    } catch (err) {
      // The new instance failed: the old one keeps serving.
      await this.stop(name);
      if (old) this.#children.set(name, old);
      if (previousOps === undefined) this.#opsPorts.delete(name);
      else this.#opsPorts.set(name, previousOps);
      throw err;
    }
    if (old) await this.#stopChild(old, 'SIGTERM');
  }

  #spawn(name: ServiceName, env: Record<string, string>): ChildProcess {
    mkdirSync(join(this.#o.dataDir, 'logs'), { recursive: true });
    const out = createWriteStream(this.logFile(name), { flags: 'a' });
    const child = spawn(process.execPath, [join(ROOT, 'services', name, 'src', 'server.ts')], {
      cwd: ROOT,
      env: { ...process.env, ...this.#env(name), ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout.pipe(out);
    child.stderr.pipe(out);
    this.#children.set(name, child);
    this.#live.add(child);
    child.once('exit', (code, signal) => {
      this.#live.delete(child);
      if (this.#children.get(name) === child) this.#children.delete(name);
      if (!this.#retiring.has(child)) this.#o.onExit?.(name, code, signal);
    });
    return child;
  }

  /** startAll starts inventory, payment, then order; if one fails, those already started are stopped. */
  async startAll(): Promise<void> {
    try {
      for (const name of ['inventory', 'payment', 'order'] as const) await this.start(name);
    } catch (err) {
      await this.stopAll();
      throw err;
    }
  }

  async #waitReady(name: ServiceName, timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (!this.#children.has(name)) throw new Error(`${name} exited during start-up; see ${this.logFile(name)}`);
      try {
        const res = await request(`${this.opsUrl(name)}/health/ready`, { signal: AbortSignal.timeout(1000) });
        await res.body.dump();
        if (res.statusCode === 200) return;
      } catch {
        // not listening yet
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`${name} was not ready within ${timeoutMs / 1000} s; see ${this.logFile(name)}`);
  }

  /** isRunning tells whether a service's process is alive. */
  isRunning(name: ServiceName): boolean {
    return this.#children.has(name);
  }

  /** stop ends a service: SIGTERM (graceful drain), or SIGKILL to simulate a crash. */
  async stop(name: ServiceName, signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM'): Promise<number | null> {
    const child = this.#children.get(name);
    if (!child) return null;
    return this.#stopChild(child, signal);
  }

  /** freeze stops a service's process where it stands (SIGSTOP): its sockets stay open, nothing answers. */
  freeze(name: ServiceName): void {
    this.#children.get(name)?.kill('SIGSTOP');
  }

  /** thaw lets a frozen service run again (SIGCONT); harmless on one that runs. */
  thaw(name: ServiceName): void {
    this.#children.get(name)?.kill('SIGCONT');
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

  /** stopAll stops order first, so nothing calls an upstream that has already gone. */
  async stopAll(): Promise<void> {
    for (const name of ['order', 'payment', 'inventory'] as const) await this.stop(name);
  }

  /** killAllNow is the last resort on process exit: SIGKILL whatever is left. */
  killAllNow(): void {
    for (const c of this.#live) c.kill('SIGKILL');
  }
}

/** createDevCerts runs the spiffe-auth CLI (tools/spiffe-auth) to create (or reuse) a development CA and the services' certificates. */
export function createDevCerts(certsDir: string, quiet = false): Promise<void> {
  return new Promise((res, rej) => {
    const p = spawn(
      process.execPath,
      [
        join(ROOT, 'tools/spiffe-auth/src/cli/main.ts'),
        'dev-certs',
        '--out-dir',
        certsDir,
        '--services',
        'order,payment,inventory',
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
