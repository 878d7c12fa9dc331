// The Go reference client: bench/go-peer in client mode, a closed loop of
// requests on new mutual-TLS connections, driven one window at a time over
// stdin/stdout so the parent reads the server's CPU around the same window.
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface, type Interface } from 'node:readline';
import type { Cleanup } from '../support/cleanup.ts';
import type { CpuMeter } from '../support/cpu-meter.ts';
import type { PemFiles } from '../support/pki.ts';
import type { Window } from '../support/rounds.ts';
import type { LoadResult } from './closed-loop.ts';

/** GoClientOptions say where the Go client connects and how. */
export interface GoClientOptions {
  binary: string;
  url: string;
  files: PemFiles;
  serverId: string;
  resume: boolean;
  concurrency: number;
}

interface GoWindow {
  requests: number;
  errors: number;
  resumed: number;
  cpuUs: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  error?: string;
}

/** GoClient is one running Go client process. */
export class GoClient {
  readonly #child: ChildProcess;
  readonly #lines: Interface;
  readonly #queue: string[] = [];
  #waiter: ((line: string) => void) | undefined;
  /** resumed counts the connections that resumed a session, over all windows. */
  resumed = 0;
  connections = 0;

  private constructor(child: ChildProcess) {
    this.#child = child;
    if (!child.stdout) throw new Error('go-peer client has no stdout');
    this.#lines = createInterface({ input: child.stdout });
    this.#lines.on('line', (line) => {
      const w = this.#waiter;
      if (w) {
        this.#waiter = undefined;
        w(line);
      } else this.#queue.push(line);
    });
  }

  /** start runs the client and waits until it is ready; `cleanup` stops it. */
  static async start(cleanup: Cleanup, o: GoClientOptions): Promise<GoClient> {
    const args = ['-client', o.url, '-cert', o.files.certFile, '-key', o.files.keyFile, '-ca', o.files.caFile];
    args.push('-server-id', o.serverId, '-concurrency', String(o.concurrency), `-resume=${String(o.resume)}`);
    const child = spawn(o.binary, args, {
      stdio: ['pipe', 'pipe', 'inherit'],
      env: { ...process.env, GOMAXPROCS: '1' },
    });
    const detach = cleanup.onExit(() => child.kill('SIGKILL'));
    const client = new GoClient(child);
    cleanup.add(`go-peer client ${o.resume ? 'resumed' : 'full'}`, async () => {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.stdin.end('quit\n');
        const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
        await exited;
        clearTimeout(timer);
      }
      detach();
    });
    const ready = await client.#next(10_000);
    if (ready !== 'ready') throw new Error(`go-peer client did not start: ${ready}`);
    return client;
  }

  #next(timeoutMs: number): Promise<string> {
    const queued = this.#queue.shift();
    if (queued !== undefined) return Promise.resolve(queued);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiter = undefined;
        reject(new Error('go-peer client did not answer'));
      }, timeoutMs);
      this.#waiter = (line) => {
        clearTimeout(timer);
        resolve(line);
      };
    });
  }

  /** run measures one window; `server` is read when the Go client starts and ends its measured part. */
  async run(w: Window, server: CpuMeter): Promise<LoadResult> {
    this.#child.stdin?.write(`run ${w.warmupMs} ${w.durationMs}\n`);
    const marker = await this.#next(w.warmupMs + 30_000);
    if (marker !== 'measuring') throw new Error(`go-peer client: ${marker}`);
    const windowStart = performance.now();
    const s0 = server.read();
    const answer = JSON.parse(await this.#next(w.durationMs + 30_000)) as GoWindow;
    const s1 = server.read();
    this.resumed += answer.resumed;
    this.connections += answer.requests + answer.errors;
    const perRequest = (us: number | null): number | null =>
      us === null || answer.requests === 0 ? null : us / answer.requests;
    return {
      p50: answer.p50,
      p90: answer.p90,
      p99: answer.p99,
      max: answer.max,
      throughput: answer.requests / (w.durationMs / 1000),
      requests: answer.requests,
      errors: answer.errors,
      errorSamples: answer.error ? [answer.error] : [],
      windowStart,
      cpuUsPerRequest: {
        [server.side]: perRequest(s0 === null || s1 === null ? null : s1 - s0),
        client: answer.requests === 0 ? null : answer.cpuUs,
      },
    };
  }
}
