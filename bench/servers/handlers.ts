// The handlers every HTTP variant serves, so variants differ only in transport.

/** TRIVIAL_BODY is what the trivial handler answers (the Go peer answers the same bytes). */
export const TRIVIAL_BODY = { hello: 'world' };

/** WORK_MS is how long the "work" handler keeps the event loop busy. */
export const WORK_MS = 1;

/** busyWork keeps the CPU busy for `ms`, as a handler doing real work would (parsing, rendering, hashing). */
export function busyWork(ms: number): number {
  const end = performance.now() + ms;
  let spins = 0;
  while (performance.now() < end) spins++;
  return spins;
}
