// CPU time spent by a process, so a run can report CPU per request on each
// side. Throughput alone can hide a cost: when the load generator is the
// bottleneck, a server that got dearer still keeps up.
import { readFileSync } from 'node:fs';

/** CpuMeter reads a process's cumulative CPU time (user + system) in microseconds, or null if it cannot. */
export interface CpuMeter {
  /** side names what is measured, e.g. "server", "client". */
  side: string;
  read(): number | null;
}

// Linux reports /proc times in clock ticks; USER_HZ is 100 on every Linux ABI in use.
const TICK_US = 10_000;

/** processCpuMeter reads another process's CPU time from /proc (Linux); null elsewhere or once it exited. */
export function processCpuMeter(side: string, pid: number | undefined): CpuMeter {
  return {
    side,
    read() {
      if (pid === undefined) return null;
      try {
        const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
        // Fields after the command name (which may contain spaces) start at field 3.
        const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        return (Number(rest[11]) + Number(rest[12])) * TICK_US;
      } catch {
        return null;
      }
    },
  };
}

/** selfCpuMeter reads this process's CPU time (the load generator's side). */
export function selfCpuMeter(side = 'client'): CpuMeter {
  return {
    side,
    read() {
      const u = process.cpuUsage();
      return u.user + u.system;
    },
  };
}

/**
 * machineCpuMeter reads the busy time of every core together (Linux
 * /proc/stat), for work spread over several processes (the shop's three
 * services); anything else running on the machine is counted too.
 */
export function machineCpuMeter(side = 'machine'): CpuMeter {
  return {
    side,
    read() {
      try {
        const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0] ?? '';
        const [, ...fields] = line.trim().split(/\s+/);
        const ticks = fields.map(Number);
        const idle = (ticks[3] ?? 0) + (ticks[4] ?? 0);
        const total = ticks.slice(0, 8).reduce((s, x) => s + x, 0);
        return (total - idle) * TICK_US;
      } catch {
        return null;
      }
    },
  };
}
