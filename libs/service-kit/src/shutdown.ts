import type { Logger } from './metrics.ts';

/** ShutdownStep is one thing to stop, in order (e.g. stop accepting, drain, close the store). */
export interface ShutdownStep {
  name: string;
  run: () => Promise<unknown>;
}

/** Shutdown tells whether a signal has started the shutdown. */
export interface Shutdown {
  /** stopping is true from the first signal on: a start-up step that fails because of it is not a start-up failure. */
  readonly stopping: boolean;
}

/**
 * onSignals runs `steps` in order on the first SIGINT or SIGTERM (each bounded
 * by `timeoutMs`), then exits 0 — or 1 if a step failed. A second signal
 * exits at once.
 */
export function onSignals(steps: ShutdownStep[], log: Logger, timeoutMs = 10_000): Shutdown {
  let stopping = false;
  const handler = (signal: NodeJS.Signals): void => {
    if (stopping) {
      log.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    stopping = true;
    log.info({ signal }, 'shutting down: draining in-flight requests');
    void runSteps(steps, log, timeoutMs).then((ok) => process.exit(ok ? 0 : 1));
  };
  process.once('SIGINT', handler);
  process.once('SIGTERM', handler);
  return {
    get stopping() {
      return stopping;
    },
  };
}

/** runSteps runs shutdown steps in order, each bounded by `timeoutMs`; true when all succeeded. */
export async function runSteps(steps: ShutdownStep[], log: Logger, timeoutMs = 10_000): Promise<boolean> {
  let ok = true;
  for (const step of steps) {
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        step.run(),
        new Promise((_r, reject) => {
          timer = setTimeout(() => {
            reject(new Error(`${step.name} took longer than ${timeoutMs} ms`));
          }, timeoutMs);
        }),
      ]);
    } catch (err) {
      ok = false;
      log.error({ err, step: step.name }, 'shutdown step failed');
    } finally {
      clearTimeout(timer);
    }
  }
  return ok;
}
