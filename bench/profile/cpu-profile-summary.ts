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
  'native: OpenSSL, libuv, kernel (no JavaScript on the stack)',
  'garbage collector',
  'Node TLS socket setup (_tls_wrap, tls, net, stream)',
  'our verification (@shop/auth: chain, verify, authorize)',
  '@shop/auth other (adapters, audit, core)',
  'HTTP client (undici)',
  'HTTP server (node:http, fastify)',
  'bench harness',
  'other',
] as const;

/** Area is one of AREAS. */
export type Area = (typeof AREAS)[number];

function areaOfUrl(url: string): Area | undefined {
  if (url === '') return undefined;
  if (/libs\/auth\/src\/(verify|x509|tls|authorize|bundle|spiffeid|svid)\//.test(url)) return AREAS[3];
  if (/libs\/auth\/src\//.test(url)) return AREAS[4];
  if (/node_modules\/undici\//.test(url)) return AREAS[5];
  if (/node_modules\/(fastify|find-my-way|avvio|light-my-request|@fastify|fast-json-stringify|pino)/.test(url)) {
    return AREAS[6];
  }
  if (/^node:_http|^node:http/.test(url)) return AREAS[6];
  if (/^node:(_tls|tls|net|stream|internal\/(tls|net|stream|streams))/.test(url)) return AREAS[2];
  if (/\/bench\//.test(url)) return AREAS[7];
  return AREAS[8];
}

/** AreaSummary is the self time of one profile by area, in milliseconds, with the busiest functions. */
export interface AreaSummary {
  /** totalMs is the profile's sampled time, idle excluded. */
  totalMs: number;
  idleMs: number;
  byArea: Record<Area, number>;
  /** top lists the functions with the most self time (name, url tail, ms). */
  top: { fn: string; where: string; area: Area; ms: number }[];
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
    else if (name === '(garbage collector)') area = AREAS[1];
    else if (name === '(program)' || name === '(root)') area = AREAS[0];
    else {
      const fromUrl = areaOfUrl(n?.callFrame.url ?? '');
      const up = parent.get(id);
      area = fromUrl ?? (up === undefined ? AREAS[8] : resolve(up));
      if (area === 'idle') area = AREAS[8];
    }
    areaOf.set(id, area);
    return area;
  };
  const byArea = Object.fromEntries(AREAS.map((a) => [a, 0])) as Record<Area, number>;
  const selfUs = new Map<number, number>();
  let idle = 0;
  let total = 0;
  profile.samples.forEach((id, i) => {
    const dt = profile.timeDeltas[i + 1] ?? 0;
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
  const fns = new Map<string, { fn: string; where: string; area: Area; ms: number }>();
  for (const [id, us] of selfUs) {
    const n = byId.get(id);
    const fn = n?.callFrame.functionName || '(anonymous)';
    const where = (n?.callFrame.url ?? '').replace(/^.*\/(node_modules|libs|bench)\//, '$1/');
    const key = `${fn}@${where}`;
    const e = fns.get(key) ?? { fn, where, area: resolve(id) as Area, ms: 0 };
    e.ms += us / 1000;
    fns.set(key, e);
  }
  for (const a of AREAS) byArea[a] /= 1000;
  return {
    totalMs: total / 1000,
    idleMs: idle / 1000,
    byArea,
    top: [...fns.values()].sort((a, b) => b.ms - a.ms).slice(0, topN),
  };
}
