// Where a Node process spends its CPU, from a V8 CPU profile: self time by
// function and by where the code lives (a package, a node: module, @shop/auth,
// the garbage collector, native code V8 does not attribute).
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Session } from 'node:inspector/promises';

/** CpuProfile is the part of V8's .cpuprofile format read here. */
export interface CpuProfile {
  nodes: { id: number; hitCount?: number; callFrame: { functionName: string; url: string; lineNumber: number } }[];
  startTime: number;
  endTime: number;
  samples?: number[];
  /** timeDeltas are µs between samples, the first from startTime. */
  timeDeltas?: number[];
}

/** Share is one line of a profile summary: a name and its share of the sampled time, percent. */
export interface Share {
  name: string;
  percent: number;
}

/** ProfileSummary is a profile's top self time by function and by place. */
export interface ProfileSummary {
  samples: number;
  byFunction: Share[];
  byPlace: Share[];
}

/** placeOf names where a frame's code lives. */
export function placeOf(url: string, functionName: string): string {
  if (url === '') return functionName.startsWith('(') ? functionName : `(native) ${functionName || 'anonymous'}`;
  if (url.startsWith('node:'))
    return url
      .replace(/^node:(internal\/)?/, 'node:')
      .split('/')
      .slice(0, 2)
      .join('/');
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return pkg[1] ?? url;
  const lib = /\/libs\/([^/]+)\//.exec(url);
  if (lib) return `@shop/${lib[1] ?? ''}`;
  const bench = /\/bench\/(.+)$/.exec(url);
  return bench ? `bench/${bench[1] ?? ''}` : url;
}

function top(map: Map<string, number>, total: number, n: number): Share[] {
  return [...map.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([name, hits]) => ({ name, percent: Math.round((hits / total) * 1000) / 10 }));
}

/** ProfileWindow keeps the samples taken between `fromEndMs` and `toEndMs` before the profile's end (start-up and shutdown left out). */
export interface ProfileWindow {
  fromEndMs: number;
  toEndMs: number;
}

function hitsIn(p: CpuProfile, w: ProfileWindow | undefined): Map<number, number> {
  const hits = new Map<number, number>();
  if (!w || !p.samples || !p.timeDeltas) {
    for (const node of p.nodes) hits.set(node.id, node.hitCount ?? 0);
    return hits;
  }
  const from = p.endTime - w.fromEndMs * 1000;
  const to = p.endTime - w.toEndMs * 1000;
  let t = p.startTime;
  p.samples.forEach((id, i) => {
    t += p.timeDeltas?.[i] ?? 0;
    if (t >= from && t <= to) hits.set(id, (hits.get(id) ?? 0) + 1);
  });
  return hits;
}

/** summarizeProfile adds up self samples by function and by place, leaving out idle time; `n` lines of each. */
export function summarizeProfile(p: CpuProfile, n = 8, window?: ProfileWindow): ProfileSummary {
  const byFunction = new Map<string, number>();
  const byPlace = new Map<string, number>();
  const counted = hitsIn(p, window);
  let total = 0;
  for (const node of p.nodes) {
    const hits = counted.get(node.id) ?? 0;
    const { functionName, url, lineNumber } = node.callFrame;
    if (hits === 0 || functionName === '(idle)') continue;
    total += hits;
    const where = placeOf(url, functionName);
    const fn = url === '' ? where : `${functionName || 'anonymous'} (${where}:${lineNumber + 1})`;
    byFunction.set(fn, (byFunction.get(fn) ?? 0) + hits);
    byPlace.set(where, (byPlace.get(where) ?? 0) + hits);
  }
  return { samples: total, byFunction: top(byFunction, total, n), byPlace: top(byPlace, total, n) };
}

/** readNewestProfile reads the newest .cpuprofile Node wrote into `dir` (--cpu-prof-dir). */
export async function readNewestProfile(dir: string): Promise<CpuProfile> {
  const files = (await readdir(dir)).filter((f) => f.endsWith('.cpuprofile')).sort();
  const last = files.at(-1);
  if (!last) throw new Error(`no .cpuprofile in ${dir}`);
  return JSON.parse(await readFile(join(dir, last), 'utf8')) as CpuProfile;
}

/** profileSelf runs `work` under this process's V8 profiler and returns the profile (the profiler is stopped even if `work` fails). */
export async function profileSelf(work: () => Promise<unknown>): Promise<CpuProfile> {
  const session = new Session();
  session.connect();
  try {
    await session.post('Profiler.enable');
    await session.post('Profiler.setSamplingInterval', { interval: 100 });
    await session.post('Profiler.start');
    let failure: Error | undefined;
    try {
      await work();
    } catch (err) {
      failure = err instanceof Error ? err : new Error(String(err));
    }
    const { profile } = await session.post('Profiler.stop');
    await session.post('Profiler.disable');
    if (failure) throw failure;
    return profile;
  } finally {
    session.disconnect();
  }
}
