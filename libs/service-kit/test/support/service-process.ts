// Runs a service's real process (src/server.ts) for the services' server
// tests, and follows its start-up through its JSON log lines.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import type { TestContext } from 'node:test';

/** ServiceProcess is a running service process whose log the test follows line by line. */
export interface ServiceProcess {
  /** lines holds every JSON log line written to stdout so far. */
  lines: Record<string, unknown>[];
  /** exited resolves with the exit code (null after a signal). */
  exited: Promise<number | null>;
  /** stderr returns what the process wrote to stderr so far. */
  stderr(): string;
  /** line resolves with the first log line whose msg is `msg`; it rejects, with stderr and the lines, if the process exits first. */
  line(msg: string): Promise<Record<string, unknown>>;
  kill(signal: NodeJS.Signals): void;
}

/**
 * spawnService runs `node <server>` on 127.0.0.1 with PORT and OPS_PORT 0
 * (free ports), `env` on top and nothing else from this process's environment;
 * the process is killed, if still running, when test `t` ends.
 */
export function spawnService(t: TestContext, server: string | URL, env: NodeJS.ProcessEnv): ServiceProcess {
  const file = server instanceof URL ? server.pathname : server;
  const child = spawn(process.execPath, [file], {
    env: { PATH: process.env.PATH, HOST: '127.0.0.1', PORT: '0', OPS_PORT: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = once(child, 'exit').then(([code]) => code as number | null);
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    return exited;
  });
  let stderr = '';
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  const lines: Record<string, unknown>[] = [];
  const waiters: { msg: string; resolve: (l: Record<string, unknown>) => void }[] = [];
  createInterface({ input: child.stdout }).on('line', (line) => {
    const entry = JSON.parse(line) as Record<string, unknown>;
    lines.push(entry);
    for (const w of waiters) if (w.msg === entry.msg) w.resolve(entry);
  });
  return {
    lines,
    exited,
    stderr: () => stderr,
    kill: (signal) => child.kill(signal),
    line(msg) {
      const seen = lines.find((l) => l.msg === msg);
      if (seen) return Promise.resolve(seen);
      return Promise.race([
        new Promise<Record<string, unknown>>((resolve) => waiters.push({ msg, resolve })),
        exited.then((code) =>
          Promise.reject(new Error(`exited with ${String(code)} before "${msg}": ${stderr}${JSON.stringify(lines)}`)),
        ),
      ]);
    },
  };
}

/** ReadyBody is the JSON of an ops port's /health/ready. */
export interface ReadyBody {
  status: string;
  checks: Record<string, boolean>;
  reasons?: Record<string, string>;
}

/** readyUntil polls `<ops>/health/ready` until `done` holds (or 10 s pass) and returns the last answer. */
export async function readyUntil(
  ops: string,
  done: (body: ReadyBody) => boolean,
): Promise<{ status: number; body: ReadyBody }> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const res = await fetch(`${ops}/health/ready`);
    const body = (await res.json()) as ReadyBody;
    if (done(body) || Date.now() > deadline) return { status: res.status, body };
    await new Promise((r) => setTimeout(r, 50));
  }
}
