// Summarises a V8 .cpuprofile (what `node --cpu-prof` and the inspector's
// Profiler write) by area: self time of every sample, attributed to the area
// of the nearest frame with a script, so a native function (an OpenSSL call
// through a binding) counts for the JavaScript that called it.

/** CpuProfile is the part of V8's profile format this reads. */
export interface CpuProfile {
  nodes: { id: number; callFrame: { functionName: string; url: string }; children?: number[] }[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

/** AREAS are the areas of a handshake's time, in the order the report lists them. */
export const AREAS = [
  'native, no JavaScript on the stack (OpenSSL record and handshake processing from libuv reads, libuv)',
  'OpenSSL through Node TLS bindings (handshake start, writes, session, close)',
  'Node TLS/net/stream JavaScript',
  'Node core other (events, ticks, async hooks, timers)',
  'garbage collector',
  'our verification (@shop/auth: chain read, verdict cache, path, signatures)',
  '@shop/auth other (connection set-up, adapters, core, audit)',
  'HTTP client (undici)',
  'HTTP server (node:http, fastify)',
  'bench harness and profiler',
  'other',
] as const;

/** Area is one of AREAS. */
export type Area = (typeof AREAS)[number];

function areaOfUrl(url: string): Area | undefined {
  if (url === '') return undefined;
  // Connection set-up (tls/client-connect.ts calling tls.connect) is not verification.
  if (
    /libs\/auth\/src\/(verify|x509|authorize|bundle|spiffeid|svid)\/|tls\/(peer-chain|connection-verifier)\.ts/.test(
      url,
    )
  ) {
    return AREAS[5];
  }
  if (/libs\/auth\/src\//.test(url)) return AREAS[6];
  if (/node_modules\/undici\//.test(url)) return AREAS[7];
  if (/node_modules\/(fastify|find-my-way|avvio|light-my-request|@fastify|fast-json-stringify|pino)/.test(url)) {
    return AREAS[8];
  }
  if (/^node:(_http|http)/.test(url)) return AREAS[8];
  if (/^node:(_tls|tls|net|stream|internal\/(tls|net|stream|streams|crypto\/x509))/.test(url)) return AREAS[2];
  if (
    /^node:(events|internal\/(process|async_hooks|timers|events|util|errors|validators))|^node:(timers|util)/.test(url)
  ) {
    return AREAS[3];
  }
  if (/\/bench\/|^node:inspector/.test(url)) return AREAS[9];
  return AREAS[10];
}

/** AreaSummary counts the samples of one profile by area (idle excluded), with the busiest functions. */
export interface AreaSummary {
  /** samples not idle. */
  busy: number;
  idle: number;
  /** byArea is each area's share of the busy samples (0..1). */
  byArea: Record<Area, number>;
  /** top lists the functions with the largest share of busy samples (name, url tail, share). */
  top: { fn: string; where: string; area: Area; share: number }[];
}

/** summarise attributes the samples of `profile` to areas. */
export function summarise(profile: CpuProfile, topN = 15): AreaSummary {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const areaOf = new Map<number, Area | 'idle'>();
  const resolve = (id: number): Area | 'idle' => {
    const known = areaOf.get(id);
    if (known) return known;
    const n = byId.get(id);
    let area: Area | 'idle';
    const name = n?.callFrame.functionName ?? '';
    if (name === '(idle)') area = 'idle';
    else if (name === '(garbage collector)') area = AREAS[4];
    else if (name === '(program)' || name === '(root)') area = AREAS[0];
    else {
      const fromUrl = areaOfUrl(n?.callFrame.url ?? '');
      const up = parent.get(id);
      const caller0 = up === undefined ? undefined : resolve(up);
      // Node's own crypto and TLS code that our verification calls (reading
      // the chain, X509Certificate) is the verification's cost.
      if (caller0 === AREAS[5] && /^node:/.test(n?.callFrame.url ?? '')) area = AREAS[5];
      else if (fromUrl !== undefined) area = fromUrl;
      else {
        // A native function counts for its caller, except that what Node's
        // TLS code calls into is OpenSSL's work, not JavaScript's.
        const caller = up === undefined ? AREAS[10] : resolve(up);
        area = caller === 'idle' ? AREAS[10] : caller === AREAS[2] ? AREAS[1] : caller;
      }
    }
    areaOf.set(id, area);
    return area;
  };
  const byArea = Object.fromEntries(AREAS.map((a) => [a, 0])) as Record<Area, number>;
  const selfUs = new Map<number, number>();
  let idle = 0;
  let total = 0;
  // Every sample weighs the same, whatever the time since the previous one:
  // on a loaded machine the gaps include time the process was not running,
  // and would land on whichever frame ran next. Callers scale the shares by
  // the CPU time they measured.
  profile.samples.forEach((id) => {
    const dt = 1;
    const area = resolve(id);
    if (area === 'idle') {
      idle += dt;
      return;
    }
    total += dt;
    byArea[area] += dt;
    selfUs.set(id, (selfUs.get(id) ?? 0) + dt);
  });
  // Same function, several call sites: add them up.
  const fns = new Map<string, { fn: string; where: string; area: Area; share: number }>();
  for (const [id, n0] of selfUs) {
    const n = byId.get(id);
    const fn = n?.callFrame.functionName || '(anonymous)';
    const where = (n?.callFrame.url ?? '').replace(/^.*\/(node_modules|libs|bench)\//, '$1/');
    const key = `${fn}@${where}`;
    const e = fns.get(key) ?? { fn, where, area: resolve(id) as Area, share: 0 };
    e.share += n0 / Math.max(total, 1);
    fns.set(key, e);
  }
  for (const a of AREAS) byArea[a] /= Math.max(total, 1);
  return {
    busy: total,
    idle,
    byArea,
    top: [...fns.values()].sort((a, b) => b.share - a.share).slice(0, topN),
  };
}
