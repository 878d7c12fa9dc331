// The child side of ChildServer: parse the config, start, report the port,
// answer requests, and close on SIGTERM or when the parent goes away.
import { writeFile } from 'node:fs/promises';
import { Session } from 'node:inspector/promises';

/** ChildHandle is a started server: its port, what it answers, and how it stops. */
export interface ChildHandle {
  port: number;
  /** handle answers a request from the parent (by `type`). */
  handle?: (request: { type: string; [field: string]: unknown }) => Promise<unknown>;
  stop: () => Promise<void>;
}

/**
 * runChild starts a child server with the config the parent passed as argv[2]
 * (JSON); `start` names the config's type on its parameter.
 */
export function runChild(start: (config: never) => Promise<ChildHandle>): void {
  const send = (m: unknown): void => {
    process.send?.(m);
  };
  const config = JSON.parse(process.argv[2] ?? '{}') as never;
  start(config).then(
    (h) => {
      let stopping = false;
      const stop = (): void => {
        if (stopping) return;
        stopping = true;
        const force = setTimeout(() => process.exit(0), 3000);
        force.unref();
        h.stop().then(
          () => process.exit(0),
          () => process.exit(1),
        );
      };
      process.on('SIGTERM', stop);
      process.on('SIGINT', stop);
      // The parent died without stopping us: do not outlive it.
      process.on('disconnect', stop);
      process.on('message', (m: { id: number; type: string; [field: string]: unknown }) => {
        const answer = m.type.startsWith('cpu-profile-')
          ? cpuProfile(m)
          : h.handle
            ? h.handle(m)
            : Promise.reject(new Error(`no handler for ${m.type}`));
        answer.then(
          (result) => {
            send({ id: m.id, ok: true, result });
          },
          (err: unknown) => {
            send({ id: m.id, ok: false, error: (err as Error).message });
          },
        );
      });
      send({ type: 'ready', port: h.port });
    },
    (err: unknown) => {
      send({ type: 'failed', error: (err as Error).stack ?? String(err) });
      process.exit(1);
    },
  );
}

// Every child can be profiled over IPC, for the measured window only:
// `cpu-profile-start`, then `cpu-profile-stop` with `file` (a .cpuprofile).
let profiler: Session | undefined;
async function cpuProfile(m: { type: string; [field: string]: unknown }): Promise<unknown> {
  if (m.type === 'cpu-profile-start') {
    profiler = new Session();
    profiler.connect();
    await profiler.post('Profiler.enable');
    await profiler.post('Profiler.start');
    return null;
  }
  if (m.type === 'cpu-profile-stop' && profiler && typeof m.file === 'string') {
    const { profile } = await profiler.post('Profiler.stop');
    profiler.disconnect();
    profiler = undefined;
    await writeFile(m.file, JSON.stringify(profile));
    return null;
  }
  throw new Error(`cannot ${m.type} now`);
}
