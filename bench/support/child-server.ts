// A server under test runs in its own Node process, so it gets a core of its
// own and the load generator does not share its event loop. The parent forks
// it, learns its port, talks to it over IPC (rotate, stats), and stops it.
import { fork, type ChildProcess } from 'node:child_process';
import type { Cleanup } from './cleanup.ts';

/** ChildRequest is a message to a child server: a type and its fields. */
export interface ChildRequest {
  type: string;
  [field: string]: unknown;
}

interface Reply {
  id: number;
  ok: boolean;
  result?: unknown;
  error?: string;
}

/** ChildServer is a server process started by the bench. */
export class ChildServer {
  readonly name: string;
  readonly port: number;
  readonly #child: ChildProcess;
  readonly #pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  #nextId = 1;
  #exited = false;

  private constructor(name: string, child: ChildProcess, port: number) {
    this.name = name;
    this.#child = child;
    this.port = port;
    child.on('message', (m: Reply) => {
      const p = this.#pending.get(m.id);
      if (!p) return;
      this.#pending.delete(m.id);
      if (m.ok) p.resolve(m.result);
      else p.reject(new Error(`${name}: ${m.error ?? 'failed'}`));
    });
    child.once('exit', () => {
      this.#exited = true;
      for (const p of this.#pending.values()) p.reject(new Error(`${name} exited`));
      this.#pending.clear();
    });
  }

  /**
   * start forks `script` with `config` (JSON) and Node options `execArgv`
   * (e.g. a module to preload), waits for its port, and registers its stop
   * with `cleanup`.
   */
  static async start(
    cleanup: Cleanup,
    name: string,
    script: string,
    config: unknown,
    execArgv: string[] = [],
  ): Promise<ChildServer> {
    const child = fork(script, [JSON.stringify(config)], {
      execPath: process.execPath,
      execArgv: [...process.execArgv, ...execArgv],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const detach = cleanup.onExit(() => child.kill('SIGKILL'));
    const port = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new Error(`${name} did not start within 30 s`));
      }, 30_000);
      child.once('message', (m: { type?: string; port?: number; error?: string }) => {
        clearTimeout(timer);
        if (m.type === 'ready' && typeof m.port === 'number') resolve(m.port);
        else reject(new Error(`${name} failed to start: ${m.error ?? JSON.stringify(m)}`));
      });
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`${name} exited during start-up (${signal ?? code ?? 'unknown'})`));
      });
    }).catch((err: unknown) => {
      child.kill('SIGKILL');
      detach();
      throw err;
    });
    const server = new ChildServer(name, child, port);
    cleanup.add(name, async () => {
      await server.stop();
      detach();
    });
    return server;
  }

  /** pid is the child's process id (for CPU meters). */
  get pid(): number | undefined {
    return this.#child.pid;
  }

  /** ask sends `request` and resolves with the child's answer. */
  ask<T>(request: ChildRequest): Promise<T> {
    if (this.#exited) return Promise.reject(new Error(`${this.name} has exited`));
    const id = this.#nextId++;
    return new Promise<T>((resolve, reject) => {
      this.#pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.#child.send({ ...request, id });
    });
  }

  /** stop asks the child to close (SIGTERM) and kills it if it has not exited within 5 s. */
  async stop(): Promise<void> {
    if (this.#exited) return;
    const exited = new Promise<void>((resolve) => {
      this.#child.once('exit', () => {
        resolve();
      });
    });
    this.#child.kill('SIGTERM');
    const timer = setTimeout(() => this.#child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  }
}
