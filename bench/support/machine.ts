// The machine a run was made on, recorded with every figure.
import { execFileSync } from 'node:child_process';
import { arch, cpus, loadavg, release, totalmem, type } from 'node:os';

/** Machine describes where the figures come from. */
export interface Machine {
  cpus: number;
  model: string;
  mhz: number;
  memoryGiB: number;
  os: string;
  node: string;
  openssl: string;
  go: string | null;
  /** loadAverage at the start of the run (1, 5, 15 min); above the core count means something else was running. */
  loadAverage: number[];
}

/** goVersion returns `go version`'s output, or null when go is not on PATH. */
export function goVersion(): string | null {
  try {
    return execFileSync('go', ['version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return null;
  }
}

/** describeMachine reads the machine's description. */
export function describeMachine(): Machine {
  const c = cpus();
  return {
    cpus: c.length,
    model: c[0]?.model.trim() ?? 'unknown',
    mhz: c[0]?.speed ?? 0,
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    os: `${type()} ${release()} ${arch()}`,
    node: process.version,
    openssl: process.versions.openssl,
    go: goVersion(),
    loadAverage: loadavg().map((x) => Math.round(x * 100) / 100),
  };
}
