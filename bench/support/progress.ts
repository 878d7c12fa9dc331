// Progress lines go to stderr, so stdout stays free for the summary.

/** progress prints one progress line with the elapsed time of the run. */
export function progress(line: string): void {
  process.stderr.write(`[${(performance.now() / 1000).toFixed(0).padStart(4)} s] ${line}\n`);
}
