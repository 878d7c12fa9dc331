// Scenario 8: library or sidecar? One hop at fixed request rates (open loop)
// as plaintext, raw Node mTLS, @shop/auth in-process, and a ghostunnel pair
// (plaintext undici → ghostunnel client → mTLS → ghostunnel server →
// plaintext fastify), every identity from a Workload API; then full
// handshakes per second and CPU per handshake for Node raw, @shop/auth, Go
// crypto/tls and ghostunnel as the server; in a full run, the shop's chain
// with real SPIRE, in-process against sidecars on every hop (sidecar-chain.ts).
import { execFile } from 'node:child_process';
import { mkdtemp } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { WorkloadX509Source } from '@shop/auth/workloadapi';
import { Agent, request } from 'undici';
import { GHOSTUNNEL_VERSION, getGhostunnel } from '../../scripts/sidecar/get-ghostunnel.ts';
import { runClosedLoop, type LoadResult } from '../load/closed-loop.ts';
import { httpAttempt } from '../load/http-load.ts';
import { runOpenLoop, type OpenLoopResult } from '../load/open-loop.ts';
import type { HttpServerConfig, HttpServerStats } from '../servers/http-server.ts';
import { ChildServer } from '../support/child-server.ts';
import type { Cleanup } from '../support/cleanup.ts';
import { BENCH_DIR, serverScript, type BenchContext, type Scenario, type ScenarioOutcome } from '../support/context.ts';
import { profileSelf, readNewestProfile, summarizeProfile, type ProfileSummary } from '../support/cpu-profile.ts';
import { processCpuMeter, selfCpuMeter, type CpuMeter } from '../support/cpu-meter.ts';
import { compare, variantFigures, type Check, type Group, type VariantFigures } from '../support/figures.ts';
import { authClient, plainClient, rawTlsClient } from '../support/http-clients.ts';
import { goVersion } from '../support/machine.ts';
import { CLIENT_ID, SERVER_ID, checkSpiffeUri } from '../support/pki.ts';
import { progress } from '../support/progress.ts';
import { alternate, type Runner } from '../support/rounds.ts';
import {
  freePort,
  ghostunnelClientArgs,
  ghostunnelServerArgs,
  rssMiB,
  spawnListening,
  type Spawned,
} from '../support/sidecar-process.ts';
import { median, round } from '../support/stats.ts';
import { startFakeAgent } from './keep-alive.ts';
import { runSidecarChain, SIDECAR_CHAIN_FULL, type ChainSettings, type SidecarChainFigures } from './sidecar-chain.ts';

const run = promisify(execFile);

/** SidecarSettings are the scenario's own durations and rates (the shared profile has none for an open loop). */
export interface SidecarSettings {
  rates: number[];
  rounds: number;
  warmupMs: number;
  durationMs: number;
  /** connections of each client (keep-alive); maxInFlight bounds outstanding requests. */
  connections: number;
  maxInFlight: number;
  handshakeDurationMs: number;
  handshakeConcurrency: number;
  /** chain runs the shop's chain with real SPIRE, in-process vs sidecars (sidecar-chain.ts); left out of --quick. */
  chain?: ChainSettings;
}

/** SIDECAR_FULL is the report's run: about 4 minutes on 2 cores. */
export const SIDECAR_FULL: SidecarSettings = {
  rates: [500, 1000, 2000, 4000],
  rounds: 3,
  warmupMs: 500,
  durationMs: 3000,
  connections: 32,
  maxInFlight: 256,
  handshakeDurationMs: 2500,
  handshakeConcurrency: 8,
  chain: SIDECAR_CHAIN_FULL,
};

/** SIDECAR_QUICK only shows the scenario runs (`--quick --only sidecar`); its figures mean nothing. */
export const SIDECAR_QUICK: SidecarSettings = {
  rates: [500, 1000],
  rounds: 1,
  warmupMs: 100,
  durationMs: 400,
  connections: 8,
  maxInFlight: 64,
  handshakeDurationMs: 300,
  handshakeConcurrency: 2,
};

/** KEEPING_UP says when a variant keeps up with a rate: what the report's "stops keeping up" means. */
export const KEEPING_UP = { minAchieved: 0.95, maxP99Ms: 50 } as const;

/** Process is one process on a variant's path, measured for CPU and RSS. */
interface PathProcess {
  side: string;
  pid: number | undefined;
}

/** SidecarRate is one variant at one rate, over rounds (medians), for the verdict and the chart. */
export interface SidecarRate {
  variant: string;
  rate: number;
  achieved: number;
  p50: number;
  p99: number;
  p999: number;
  totalCpuUs: number;
  overflow: number;
  errors: number;
  keptUp: boolean;
}

/** SidecarFigures go into ScenarioResult.extra.sidecar. */
export interface SidecarFigures {
  rates: SidecarRate[];
  /** highestKeptUp is, per variant, the highest rate it kept up with (0: none). */
  highestKeptUp: Record<string, number>;
  /** goal is the issue's goal at 1000 req/s, measured. */
  goal?: {
    rate: number;
    cpuInProcessUs: number;
    cpuPairUs: number;
    cpuPlainUs: number;
    /** cpuRatio is in-process total CPU/request over the pair's (goal ≤ 0.2). */
    cpuRatio: number;
    /** addedCpuRatio is the same over plaintext's: what mTLS adds in-process over what the pair adds. */
    addedCpuRatio: number;
    addedP99InProcessMs: number;
    addedP99PairMs: number;
    /** p99Ratio is added p99 over plaintext, in-process over the pair's (goal ≤ 1/3). */
    p99Ratio: number;
    met: boolean;
  };
  rssMiB: Record<string, Record<string, number>>;
  loadAverage: number[];
  /** chain is the shop's chain with real SPIRE, in-process vs sidecars on every hop (not in --quick). */
  chain?: SidecarChainFigures;
  /** profile says where @shop/auth's hop spends CPU at 1000 req/s, when the goal was missed. */
  profile?: { server: ProfileSummary; client: ProfileSummary };
}

const VARIANTS = [
  { id: 'http', label: 'plaintext HTTP' },
  { id: 'mtls-raw', label: 'mTLS, raw Node options' },
  { id: 'auth', label: 'mTLS, @shop/auth in-process (Workload API)' },
  { id: 'ghostunnel', label: 'ghostunnel pair (plaintext app ↔ sidecar ↔ mTLS ↔ sidecar ↔ plaintext app)' },
] as const;

function totalMeter(meters: CpuMeter[]): CpuMeter {
  return {
    side: 'total',
    read() {
      let sum = 0;
      for (const m of meters) {
        const v = m.read();
        if (v === null) return null;
        sum += v;
      }
      return sum;
    },
  };
}

function openLoopExtra(
  runs: OpenLoopResult[],
  procs: PathProcess[],
  rss: Map<string, number[]>,
): VariantFigures['extra'] {
  const extra: Record<string, number> = {
    'target req/s': runs[0]?.targetRate ?? 0,
    'p99.9 ms': round(median(runs.map((r) => r.p999))),
    overflow: runs.reduce((s, r) => s + r.overflow, 0),
    'generator send lag p99 ms': round(median(runs.map((r) => r.sendLagP99))),
  };
  for (const p of procs) {
    const v = rss.get(p.side) ?? [];
    if (v.length > 0) extra[`RSS ${p.side} MiB`] = round(Math.max(...v));
  }
  return extra;
}

async function buildGoPeer(outDir: string): Promise<string> {
  const binary = join(outDir, 'go-peer-sidecar');
  await run('go', ['build', '-o', binary, '.'], {
    cwd: join(BENCH_DIR, 'go-peer'),
    env: { ...process.env, GOTOOLCHAIN: 'local', GOFLAGS: '-mod=mod' },
  });
  return binary;
}

/** sidecar is scenario 8: in-process mTLS against a SPIFFE-aware sidecar pair, per hop, at fixed rates. */
export const sidecar: Scenario = {
  id: 'sidecar',
  title: 'Library or sidecar? @shop/auth in-process vs a ghostunnel pair, per hop, at fixed rates (open loop)',
  async run(ctx: BenchContext, cleanup: Cleanup): Promise<ScenarioOutcome> {
    const { pki } = ctx;
    const s = ctx.profile.name === 'full' ? SIDECAR_FULL : SIDECAR_QUICK;
    const loadAverage = loadavg().map((x) => round(x));
    if (!goVersion()) {
      return {
        settings: {},
        groups: [],
        checks: [],
        notes: [],
        skipped: '`go` is not on PATH: scenario 8 needs Go to build ghostunnel (npm run sidecar:get).',
      };
    }
    progress('sidecar: ghostunnel (npm run sidecar:get: built once, cached)');
    const ghostunnel = await getGhostunnel();
    const serverAgent = await startFakeAgent(cleanup, pki, pki.server);
    const clientAgent = await startFakeAgent(cleanup, pki, pki.client);
    const clientSource = await WorkloadX509Source.create({ address: clientAgent.address });
    cleanup.add('client Workload API source', () => clientSource.close());

    const child = (name: string, config: Omit<HttpServerConfig, 'files' | 'allow'>): Promise<ChildServer> =>
      ChildServer.start(cleanup, `server ${name}`, serverScript('http-server.ts'), {
        ...config,
        files: pki.serverFiles,
        allow: CLIENT_ID,
        workloadAddress: serverAgent.address,
      } satisfies HttpServerConfig);
    const plain = await child('http', { security: 'plain' });
    const raw = await child('mtls-raw', { security: 'mtls-raw' });
    const auth = await child('auth', { security: 'mtls-auth', source: 'workload' });
    const behindSidecar = await child('behind ghostunnel', { security: 'plain' });
    const guServerPort = await freePort();
    const guServer = await spawnListening(
      cleanup,
      'ghostunnel server',
      ghostunnel,
      ghostunnelServerArgs({ workloadApi: serverAgent.address }, guServerPort, behindSidecar.port, CLIENT_ID),
      guServerPort,
    );
    const guClientPort = await freePort();
    const guClient = await spawnListening(
      cleanup,
      'ghostunnel client',
      ghostunnel,
      ghostunnelClientArgs({ workloadApi: clientAgent.address }, guClientPort, guServerPort, SERVER_ID),
      guClientPort,
    );

    const o = { connections: s.connections };
    const targets: Record<string, { url: string; dispatcher: Agent; procs: PathProcess[] }> = {
      http: {
        url: `http://127.0.0.1:${plain.port}/trivial`,
        dispatcher: plainClient(cleanup, o),
        procs: [{ side: 'server', pid: plain.pid }],
      },
      'mtls-raw': {
        url: `https://127.0.0.1:${raw.port}/trivial`,
        dispatcher: rawTlsClient(cleanup, pki, { ...o, mutual: true }),
        procs: [{ side: 'server', pid: raw.pid }],
      },
      auth: {
        url: `https://127.0.0.1:${auth.port}/trivial`,
        dispatcher: authClient(cleanup, clientSource, o),
        procs: [{ side: 'server', pid: auth.pid }],
      },
      ghostunnel: {
        url: `http://127.0.0.1:${guClientPort}/trivial`,
        dispatcher: plainClient(cleanup, o),
        procs: [
          { side: 'server', pid: behindSidecar.pid },
          { side: 'client sidecar', pid: guClient.pid },
          { side: 'server sidecar', pid: guServer.pid },
        ],
      },
    };

    const groups: Group[] = [];
    const rates: SidecarRate[] = [];
    const rssBy: Record<string, Record<string, number>> = {};
    for (const rate of s.rates) {
      progress(`sidecar: ${rate} req/s, open loop`);
      const rss = new Map<string, Map<string, number[]>>();
      const runners: Runner[] = VARIANTS.map((v) => {
        const t = targets[v.id];
        if (!t) throw new Error(`no target for ${v.id}`);
        const attempt = httpAttempt({ url: t.url, dispatcher: t.dispatcher });
        const meters = [selfCpuMeter('client'), ...t.procs.map((p) => processCpuMeter(p.side, p.pid))];
        return {
          id: v.id,
          run: async (w) => {
            const r = await runOpenLoop(attempt, {
              rate,
              ...w,
              maxInFlight: s.maxInFlight,
              meters: [...meters, totalMeter(meters)],
            });
            const byVariant = rss.get(v.id) ?? new Map<string, number[]>();
            rss.set(v.id, byVariant);
            for (const p of [{ side: 'client', pid: process.pid }, ...t.procs]) {
              const x = rssMiB(p.pid);
              if (x !== null) byVariant.set(p.side, [...(byVariant.get(p.side) ?? []), x]);
            }
            return r;
          },
        };
      });
      const runs = await alternate(`sidecar ${rate}/s`, runners, s.rounds, {
        warmupMs: s.warmupMs,
        durationMs: s.durationMs,
      });
      const variants = VARIANTS.map((v) => {
        const r = (runs.get(v.id) ?? []) as OpenLoopResult[];
        const procs = [{ side: 'client', pid: process.pid }, ...(targets[v.id]?.procs ?? [])];
        const f = variantFigures(v.id, v.label, r);
        f.extra = openLoopExtra(r, procs, rss.get(v.id) ?? new Map<string, number[]>());
        const achieved = median(r.map((x) => x.throughput));
        const p99 = median(r.map((x) => x.p99));
        const overflow = r.reduce((sum, x) => sum + x.overflow, 0);
        rates.push({
          variant: v.id,
          rate,
          achieved: round(achieved),
          p50: round(median(r.map((x) => x.p50))),
          p99: round(p99),
          p999: round(median(r.map((x) => x.p999))),
          totalCpuUs: round(median(r.map((x) => x.cpuUsPerRequest.total ?? Number.NaN))),
          overflow,
          errors: f.errors,
          keptUp:
            achieved >= KEEPING_UP.minAchieved * rate && p99 <= KEEPING_UP.maxP99Ms && overflow === 0 && f.errors === 0,
        });
        for (const [side, values] of rss.get(v.id) ?? []) {
          const by = (rssBy[v.id] ??= {});
          by[side] = round(Math.max(by[side] ?? 0, ...values));
        }
        return f;
      });
      groups.push({
        id: `rate-${rate}`,
        title: `${rate} req/s offered, trivial handler, keep-alive (${s.connections} connections), latency from the intended send time`,
        unit: 'req/s',
        variants,
        comparisons: [
          compare(variants, 'auth', 'http', '@shop/auth in-process vs plaintext', rate === 1000),
          compare(variants, 'ghostunnel', 'http', 'ghostunnel pair vs plaintext', rate === 1000),
          compare(variants, 'auth', 'ghostunnel', '@shop/auth in-process vs the ghostunnel pair', rate === 1000),
          compare(variants, 'auth', 'mtls-raw', '@shop/auth vs raw Node mTLS'),
        ],
      });
    }

    // Full handshakes: a new connection per request, no resumption, the same raw Node client for every server.
    progress('sidecar: full handshakes per second (new connection per request, no resumption)');
    const hsTargets: { id: string; label: string; port: number; procs: PathProcess[] }[] = [
      {
        id: 'hs-node-raw',
        label: 'Node fastify, raw mTLS options',
        port: raw.port,
        procs: [{ side: 'server', pid: raw.pid }],
      },
      {
        id: 'hs-auth',
        label: 'Node fastify, @shop/auth (Workload API)',
        port: auth.port,
        procs: [{ side: 'server', pid: auth.pid }],
      },
      {
        id: 'hs-ghostunnel',
        label: 'ghostunnel server (+ a plaintext connection to the app behind it)',
        port: guServerPort,
        procs: [
          { side: 'server', pid: guServer.pid },
          { side: 'app behind', pid: behindSidecar.pid },
        ],
      },
    ];
    const notes: string[] = [];
    try {
      const binary = await buildGoPeer(ctx.tmp);
      const goPort = await freePort();
      const g: Spawned = await spawnListening(
        cleanup,
        'go-peer (sidecar)',
        binary,
        [
          '-cert',
          pki.serverFiles.certFile,
          '-key',
          pki.serverFiles.keyFile,
          '-ca',
          pki.serverFiles.caFile,
          '-addr',
          `127.0.0.1:${goPort}`,
        ],
        goPort,
      );
      hsTargets.push({
        id: 'hs-go',
        label: 'Go net/http + crypto/tls (bench/go-peer)',
        port: g.port,
        procs: [{ side: 'server', pid: g.pid }],
      });
    } catch (err) {
      notes.push(`The Go peer did not start, so it is missing from the handshake group: ${(err as Error).message}`);
    }
    const hsClient = rawTlsClient(cleanup, pki, {
      connections: s.handshakeConcurrency,
      mutual: true,
      maxCachedSessions: 0,
    });
    const hsRuns = await alternate(
      'sidecar handshakes',
      hsTargets.map((t) => {
        const attempt = httpAttempt({ url: `https://127.0.0.1:${t.port}/trivial`, dispatcher: hsClient, reset: true });
        const meters = [selfCpuMeter('client'), ...t.procs.map((p) => processCpuMeter(p.side, p.pid))];
        return {
          id: t.id,
          run: (w): Promise<LoadResult> =>
            runClosedLoop(attempt, { ...w, concurrency: s.handshakeConcurrency, meters }),
        };
      }),
      s.rounds,
      { warmupMs: s.warmupMs, durationMs: s.handshakeDurationMs },
    );
    const hsVariants = hsTargets.map((t) => variantFigures(t.id, t.label, hsRuns.get(t.id) ?? []));
    const hsComparisons = [
      compare(hsVariants, 'hs-auth', 'hs-node-raw', '@shop/auth vs raw Node, per full handshake'),
      compare(hsVariants, 'hs-ghostunnel', 'hs-node-raw', 'ghostunnel vs raw Node, per full handshake', true),
    ];
    if (hsVariants.some((v) => v.id === 'hs-go')) {
      hsComparisons.push(
        compare(hsVariants, 'hs-ghostunnel', 'hs-go', 'ghostunnel vs the Go peer (both Go crypto/tls)'),
      );
    }
    groups.push({
      id: 'handshakes',
      title: `full mTLS handshakes: a new connection per request, no resumption, ${s.handshakeConcurrency} in flight (closed loop)`,
      unit: 'handshakes/s',
      variants: hsVariants,
      comparisons: hsComparisons,
    });

    // Correctness: ghostunnel refuses a caller with another SPIFFE ID, lets the bench client in.
    const checks: Check[] = [];
    const intruder = await pki.issue('spiffe://example.org/intruder');
    const probe = async (pair: { certPem: string; keyPem: string }): Promise<string> => {
      const agent = new Agent({
        connect: {
          ca: pki.caPem,
          cert: pair.certPem,
          key: pair.keyPem,
          minVersion: 'TLSv1.3',
          checkServerIdentity: checkSpiffeUri(SERVER_ID),
        },
      });
      try {
        const res = await request(`https://127.0.0.1:${guServerPort}/trivial`, { dispatcher: agent });
        await res.body.dump();
        return `HTTP ${res.statusCode}`;
      } catch (err) {
        return `refused (${(err as { code?: string }).code ?? (err as Error).message})`;
      } finally {
        await agent.destroy();
      }
    };
    const allowed = await probe(pki.client);
    const refused = await probe(intruder);
    checks.push({
      name: 'ghostunnel server lets the bench client’s SPIFFE ID in (--allow-uri)',
      ok: allowed === 'HTTP 200',
      detail: `${CLIENT_ID}: ${allowed}`,
    });
    checks.push({
      name: 'ghostunnel server refuses another SPIFFE ID of the same trust domain',
      ok: refused.startsWith('refused'),
      detail: `spiffe://example.org/intruder: ${refused}`,
    });
    const st = await auth.ask<HttpServerStats>({ type: 'stats' });
    checks.push({
      name: 'auth: every request reached the handler as the verified client (no 401/403)',
      ok: st.denied === 0 && st.allowed > 0,
      detail: `${st.allowed} allowed, ${st.denied} denied ${st.denyCodes.join(' ')}`,
    });
    const errorsTotal = rates.reduce((sum, r) => sum + r.errors, 0);
    checks.push({
      name: 'no request failed at any rate (overflow, when a variant cannot keep up, is not a failure)',
      ok: errorsTotal === 0,
      detail: `${errorsTotal} failed`,
    });

    // The chain with real SPIRE: in-process mTLS vs sidecars on every hop (full runs only).
    const chainSettings: Record<string, number | string> = {};
    let chainFigures: SidecarChainFigures | undefined;
    if (s.chain) {
      try {
        const part = await runSidecarChain(ctx, cleanup, ghostunnel, s.chain);
        groups.push(part.group);
        checks.push(...part.checks);
        notes.push(...part.notes);
        Object.assign(chainSettings, part.settings);
        chainFigures = part.figures;
      } catch (err) {
        checks.push({
          name: 'chain with real SPIRE, in-process vs sidecars: ran',
          ok: false,
          detail: (err as Error).message.slice(0, 500),
        });
      }
    } else {
      notes.push(
        'The chain with real SPIRE (in-process vs sidecars on every hop) is left out of --quick: it needs SPIRE (npm run spire:get).',
      );
    }

    const highestKeptUp: Record<string, number> = {};
    for (const v of VARIANTS) {
      highestKeptUp[v.id] = Math.max(0, ...rates.filter((r) => r.variant === v.id && r.keptUp).map((r) => r.rate));
    }
    const at = (variant: string, rate: number): SidecarRate | undefined =>
      rates.find((r) => r.variant === variant && r.rate === rate);
    const figures: SidecarFigures = {
      rates,
      highestKeptUp,
      rssMiB: rssBy,
      loadAverage,
      ...(chainFigures ? { chain: chainFigures } : {}),
    };
    const [inProc, pair, plainAt] = [at('auth', 1000), at('ghostunnel', 1000), at('http', 1000)];
    if (inProc && pair && plainAt) {
      const addedIn = inProc.p99 - plainAt.p99;
      const addedPair = pair.p99 - plainAt.p99;
      const cpuRatio = inProc.totalCpuUs / pair.totalCpuUs;
      const p99Ratio = addedPair > 0 ? Math.max(0, addedIn) / addedPair : Number.NaN;
      figures.goal = {
        rate: 1000,
        cpuInProcessUs: inProc.totalCpuUs,
        cpuPairUs: pair.totalCpuUs,
        cpuPlainUs: plainAt.totalCpuUs,
        cpuRatio: round(cpuRatio),
        addedCpuRatio: round((inProc.totalCpuUs - plainAt.totalCpuUs) / (pair.totalCpuUs - plainAt.totalCpuUs)),
        addedP99InProcessMs: round(addedIn),
        addedP99PairMs: round(addedPair),
        p99Ratio: round(p99Ratio),
        met: cpuRatio <= 0.2 && p99Ratio <= 1 / 3,
      };
    }
    if (figures.goal && !figures.goal.met) {
      progress('sidecar: goal missed; profiling @shop/auth’s hop (server and client) at 1000 req/s');
      const dir = await mkdtemp(join(ctx.tmp, 'prof-'));
      const saved = process.env.NODE_OPTIONS;
      // ChildServer forks with this process's environment: the profiled server inherits --cpu-prof from it.
      process.env.NODE_OPTIONS = `${saved ?? ''} --cpu-prof --cpu-prof-interval=100 --cpu-prof-dir=${dir}`.trim();
      let profiled: ChildServer;
      try {
        profiled = await child('auth (profiled)', { security: 'mtls-auth', source: 'workload' });
      } finally {
        if (saved === undefined) delete process.env.NODE_OPTIONS;
        else process.env.NODE_OPTIONS = saved;
      }
      const attempt = httpAttempt({
        url: `https://127.0.0.1:${profiled.port}/trivial`,
        dispatcher: authClient(cleanup, clientSource, o),
      });
      const clientProfile = await profileSelf(() =>
        runOpenLoop(attempt, {
          rate: 1000,
          warmupMs: s.warmupMs,
          durationMs: s.durationMs,
          maxInFlight: s.maxInFlight,
        }),
      );
      await profiled.stop();
      // The measured window only: the server's profile also holds its start-up (module loading) and shutdown.
      const window = { fromEndMs: s.durationMs, toEndMs: 200 };
      figures.profile = {
        server: summarizeProfile(await readNewestProfile(dir), 8, window),
        client: summarizeProfile(clientProfile, 8, window),
      };
    }
    return {
      settings: {
        rates: s.rates.join('/'),
        rounds: s.rounds,
        warmupMs: s.warmupMs,
        durationMs: s.durationMs,
        connections: s.connections,
        maxInFlight: s.maxInFlight,
        handshakeDurationMs: s.handshakeDurationMs,
        handshakeConcurrency: s.handshakeConcurrency,
        'load average at start': loadAverage.join(' / '),
        ...chainSettings,
      },
      groups,
      checks,
      extra: { sidecar: figures },
      notes: [
        ...notes,
        'Open loop (bench/load/open-loop.ts): requests leave on a constant schedule and latency runs from the intended send time, so queueing behind a slow request counts. Throughput is the achieved rate; `overflow` counts requests not sent because 256 were outstanding.',
        'CPU per request is every process on the path: `client` is the bench process (load generator + client-side TLS for raw and @shop/auth; plaintext for the pair), `server` the fastify child, the sidecars read from /proc/<pid>/stat; `total` is their sum. The fake Workload API agents run in the bench process and are idle during a run.',
        `ghostunnel ${GHOSTUNNEL_VERSION} (npm run sidecar:get), default GOMAXPROCS (all cores), --quiet=conns; identities from FakeWorkloadApi over --use-workload-api-addr; the server sidecar allows only ${CLIENT_ID} (--allow-uri), the client sidecar only ${SERVER_ID} (--verify-uri).`,
        `A variant keeps up with a rate when its median achieved rate is ≥ ${KEEPING_UP.minAchieved * 100} % of it, its p99 ≤ ${KEEPING_UP.maxP99Ms} ms, and nothing overflowed or failed.`,
        'Handshakes: one raw Node client (undici, no session cache) for every server, so the server side differs; the ghostunnel row also opens a plaintext connection to the app per handshake, as a sidecar does.',
        'One machine, loopback, the load generator on the same 2 cores as everything it measures, other work running: the figures compare variants measured side by side, they are not capacity numbers.',
      ],
    };
  },
};
