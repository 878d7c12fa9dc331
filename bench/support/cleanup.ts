// Everything the bench starts is registered here and stopped in reverse
// order: at the end of a scenario, on failure, and on Ctrl-C.

/** Cleanup is a stack of stop functions, run last-in first-out. */
export class Cleanup {
  readonly #steps: { what: string; stop: () => Promise<void> | void }[] = [];
  readonly #onExit = new Set<() => void>();

  /** add registers `stop` (async allowed) to run at the end. */
  add(what: string, stop: () => Promise<void> | void): void {
    this.#steps.push({ what, stop });
  }

  /** onExit registers a synchronous last resort for process exit (e.g. SIGKILL a child). */
  onExit(fn: () => void): () => void {
    this.#onExit.add(fn);
    return () => this.#onExit.delete(fn);
  }

  /** run stops everything registered so far, newest first; one failing step does not stop the others. */
  async run(): Promise<void> {
    while (this.#steps.length > 0) {
      const step = this.#steps.pop();
      if (!step) break;
      try {
        await step.stop();
      } catch (err) {
        console.error(`bench: stopping ${step.what} failed: ${(err as Error).message}`);
      }
    }
  }

  /** exitNow runs the synchronous last resorts; for process 'exit'. */
  exitNow(): void {
    for (const fn of this.#onExit) {
      try {
        fn();
      } catch {
        // Exiting anyway.
      }
    }
  }
}

/** withCleanup runs `fn` with a fresh Cleanup and always runs it afterwards. */
export async function withCleanup<T>(root: Cleanup, fn: (cleanup: Cleanup) => Promise<T>): Promise<T> {
  const cleanup = new Cleanup();
  const detach = root.onExit(() => {
    cleanup.exitNow();
  });
  try {
    return await fn(cleanup);
  } finally {
    await cleanup.run();
    detach();
  }
}
