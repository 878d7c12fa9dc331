// autocannon, driven programmatically, as a second opinion on the HTTP
// variants a plain TLS client can reach. It presents a client certificate
// through `tlsOptions` but never verifies the server (it forces
// rejectUnauthorized: false), so its figures show the server side's cost only.
import autocannon from 'autocannon';
import type { CpuMeter } from '../support/cpu-meter.ts';
import { cpuPerRequest, type LoadResult } from './closed-loop.ts';

/** AutocannonTarget is what autocannon drives. */
export interface AutocannonTarget {
  url: string;
  /** tls holds the client certificate (mTLS variants) and other `tls.connect` options. */
  tls?: { cert?: string; key?: string; ca?: string };
}

/** runAutocannon runs autocannon at `concurrency` connections for a warm-up, then measures `durationMs`. */
export async function runAutocannon(
  t: AutocannonTarget,
  o: { concurrency: number; warmupMs: number; durationMs: number; meters?: CpuMeter[] },
): Promise<LoadResult> {
  const options: autocannon.Options & { sampleInt?: number; servername?: string } = {
    url: t.url,
    connections: o.concurrency,
    pipelining: 1,
    duration: o.durationMs / 1000,
    // autocannon stops on a sampling tick; a short tick keeps short runs short.
    sampleInt: Math.min(1000, Math.max(100, o.durationMs / 4)),
    // An IP literal is no valid SNI name; any name does, servers here ignore it.
    servername: 'localhost',
    ...(t.tls ? { tlsOptions: t.tls } : {}),
  };
  if (o.warmupMs > 0) {
    await autocannon({ ...options, duration: o.warmupMs / 1000 });
  }
  const meters = o.meters ?? [];
  const cpuStart = meters.map((m) => m.read());
  const r = await autocannon(options);
  const cpuEnd = meters.map((m) => m.read());
  const seconds = r.duration > 0 ? r.duration : o.durationMs / 1000;
  const errors = r.errors + r.timeouts + r.non2xx;
  return {
    throughput: (r.requests.total - r.non2xx) / seconds,
    requests: r.requests.total - r.non2xx,
    errors,
    errorSamples: errors > 0 ? [`errors ${r.errors}, timeouts ${r.timeouts}, non-2xx ${r.non2xx}`] : [],
    p50: r.latency.p50,
    p90: r.latency.p90,
    p99: r.latency.p99,
    max: r.latency.max,
    windowStart: 0,
    cpuUsPerRequest: cpuPerRequest(meters, cpuStart, cpuEnd, r.requests.total - r.non2xx),
  };
}
