// Scenario 5: scenario 1's @shop/auth variant under load while both sides'
// identities rotate every few seconds, SPIRE style: each SVID lives two
// periods and is replaced at its half-life, where servers recycle
// connections, so every rotation brings a wave of new handshakes.
import { X509Svid } from '@shop/auth';
import { MemorySource } from '@shop/auth-testing';
import { runClosedLoop } from '../load/closed-loop.ts';
import { httpAttempt } from '../load/http-load.ts';
import type { HttpServerConfig, HttpServerStats } from '../servers/http-server.ts';
import { ChildServer } from '../support/child-server.ts';
import type { Cleanup } from '../support/cleanup.ts';
import { serverScript, type BenchContext, type Scenario, type ScenarioOutcome } from '../support/context.ts';
import { processCpuMeter, selfCpuMeter } from '../support/cpu-meter.ts';
import { variantFigures, type Check } from '../support/figures.ts';
import { authClient, type ConnectionCounter } from '../support/http-clients.ts';
import { CLIENT_ID, SERVER_ID, type PemPair } from '../support/pki.ts';
import { progress } from '../support/progress.ts';
import { percentile, round } from '../support/stats.ts';

/** WINDOW_BEFORE_MS and WINDOW_AFTER_MS bound "around a rotation": requests started in [t − before, t + after]. */
export const WINDOW_BEFORE_MS = 250;
export const WINDOW_AFTER_MS = 750;

/** LatencyWindow is the latency of the requests started in one part of the run. */
export interface LatencyWindow {
  requests: number;
  failed: number;
  p50: number;
  p99: number;
  max: number;
}

/** RotationFigures is what scenario 5 reports besides the usual variant figures. */
export interface RotationFigures {
  periodMs: number;
  rotations: number;
  svidLifetimeMs: number;
  failed: number;
  clientConnections: number;
  steady: LatencyWindow;
  aroundRotation: LatencyWindow;
  perRotation: LatencyWindow[];
}

function latencyWindow(latency: number[], failed: number): LatencyWindow {
  const sorted = Float64Array.from(latency).sort();
  return {
    requests: sorted.length,
    failed,
    p50: round(percentile(sorted, 50), 4),
    p99: round(percentile(sorted, 99), 4),
    max: round(sorted.length > 0 ? (sorted[sorted.length - 1] ?? Number.NaN) : Number.NaN, 4),
  };
}

/** rotation is scenario 5: keep-alive HTTP through @shop/auth while both identities rotate. */
export const rotation: Scenario = {
  id: 'rotation',
  title: 'Rotation under load: @shop/auth keep-alive HTTP while both identities rotate',
  async run(ctx: BenchContext, cleanup: Cleanup): Promise<ScenarioOutcome> {
    const { pki, profile: p } = ctx;
    const period = p.rotationPeriodMs;
    const lifetime = 2 * period + 2000;
    // Each SVID is valid from a second before its turn until a second after
    // its successor's half-life: replaced at its own half-life, like SPIRE.
    const issuePair = async (at: number): Promise<{ server: PemPair; client: PemPair }> => {
      const validity = { notBefore: new Date(at - 1000), notAfter: new Date(at - 1000 + lifetime) };
      const [server, client] = await Promise.all([pki.issue(SERVER_ID, validity), pki.issue(CLIENT_ID, validity)]);
      return { server, client };
    };
    const server = await ChildServer.start(cleanup, 'server mtls-auth (rotating)', serverScript('http-server.ts'), {
      security: 'mtls-auth',
      source: 'memory',
      files: pki.serverFiles,
      allow: CLIENT_ID,
    } satisfies HttpServerConfig);
    // Rotation 0 installs the first short-lived pair before any connection
    // exists, so every connection of the run is subject to recycling.
    const t0 = Date.now();
    const first = await issuePair(t0);
    const clientSource = MemorySource.create(X509Svid.fromPem(first.client.certPem, first.client.keyPem), [
      pki.td.bundle,
    ]);
    await server.ask({ type: 'rotate', ...first.server });
    const rotations = Math.max(1, Math.floor((p.warmupMs + p.rotationRunMs - WINDOW_AFTER_MS) / period));
    const pairs = await Promise.all(Array.from({ length: rotations }, (_, k) => issuePair(t0 + (k + 1) * period)));

    const counter: ConnectionCounter = { connections: 0, resumed: 0 };
    const dispatcher = authClient(cleanup, clientSource, { connections: p.concurrency, counter });
    const attempt = httpAttempt({ url: `https://127.0.0.1:${server.port}/trivial`, dispatcher });
    await server.ask({ type: 'stats', reset: true });

    // Rotation times on performance.now()'s clock, to line up with the samples.
    const rotatedAt: number[] = [];
    const timers = pairs.map((pair, k) =>
      setTimeout(
        () => {
          clientSource.set(X509Svid.fromPem(pair.client.certPem, pair.client.keyPem), [pki.td.bundle]);
          rotatedAt.push(performance.now());
          void server.ask({ type: 'rotate', ...pair.server });
        },
        t0 + (k + 1) * period - Date.now(),
      ),
    );
    cleanup.add('rotation timers', () => {
      timers.forEach(clearTimeout);
    });
    progress(`rotation: ${rotations} rotations, one every ${period / 1000} s, SVIDs living ${lifetime / 1000} s`);
    const result = await runClosedLoop(attempt, {
      warmupMs: p.warmupMs,
      durationMs: p.rotationRunMs,
      concurrency: p.concurrency,
      meters: [processCpuMeter('server', server.pid), selfCpuMeter('client')],
      keepSamples: true,
    });
    const stats = await server.ask<HttpServerStats>({ type: 'stats' });

    const s = result.samples ?? { start: new Float64Array(), latency: new Float64Array(), ok: new Uint8Array() };
    const inRotation = (t: number): number =>
      rotatedAt.findIndex((r) => t >= r - WINDOW_BEFORE_MS && t <= r + WINDOW_AFTER_MS);
    const steady: number[] = [];
    const around: number[] = [];
    const per = rotatedAt.map(() => ({ latency: [] as number[], failed: 0 }));
    let steadyFailed = 0;
    let aroundFailed = 0;
    for (let i = 0; i < s.start.length; i++) {
      const k = inRotation(s.start[i] ?? 0);
      const ok = s.ok[i] === 1;
      const ms = s.latency[i] ?? 0;
      if (k < 0) {
        if (ok) steady.push(ms);
        else steadyFailed++;
      } else {
        if (ok) around.push(ms);
        else aroundFailed++;
        const w = per[k];
        if (w) {
          if (ok) w.latency.push(ms);
          else w.failed++;
        }
      }
    }
    const figures: RotationFigures = {
      periodMs: period,
      rotations: rotatedAt.length,
      svidLifetimeMs: lifetime,
      failed: result.errors,
      clientConnections: counter.connections,
      steady: latencyWindow(steady, steadyFailed),
      aroundRotation: latencyWindow(around, aroundFailed),
      perRotation: per.map((w) => latencyWindow(w.latency, w.failed)),
    };
    const variant = variantFigures('auth-rotating', 'mTLS, @shop/auth, identities rotating', [result]);
    variant.extra = {
      clientConnections: counter.connections,
      serverConnections: stats.connections,
      serverVerifiedRequests: stats.allowed,
      serverRefused: stats.denied,
    };
    const checks: Check[] = [
      {
        name: 'no request failed while identities rotated',
        ok: result.errors === 0 && stats.denied === 0,
        detail: `${result.errors} failed (${result.errorSamples.join('; ') || 'none'}), ${stats.denied} refused by the server ${stats.denyCodes.join(' ')}`,
      },
      {
        name: 'every rotation happened during the measured window and brought new connections',
        ok: rotatedAt.length === rotations && counter.connections > p.concurrency,
        detail: `${rotatedAt.length}/${rotations} rotations, ${counter.connections} client connections for ${p.concurrency} in flight`,
      },
    ];
    return {
      settings: {
        concurrency: p.concurrency,
        periodMs: period,
        svidLifetimeMs: lifetime,
        durationMs: p.rotationRunMs,
        windowBeforeMs: WINDOW_BEFORE_MS,
        windowAfterMs: WINDOW_AFTER_MS,
      },
      groups: [
        {
          id: 'rotating',
          title: 'keep-alive HTTP through @shop/auth while both sides rotate',
          unit: 'req/s',
          variants: [variant],
          comparisons: [],
        },
      ],
      checks,
      notes: [
        `Both sides use a MemorySource; every ${period / 1000} s the bench sets a fresh SVID from the test CA on each (the server’s over IPC). Each SVID lives ${lifetime / 1000} s, so it is replaced at its half-life, when the server starts answering \`connection: close\` and clients reconnect with the new SVIDs.`,
        `“Around a rotation” is every request started from ${WINDOW_BEFORE_MS} ms before to ${WINDOW_AFTER_MS} ms after it; “steady” is every other request of the same run.`,
      ],
      extra: { rotation: figures },
    };
  },
};
