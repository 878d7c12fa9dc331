// Scenario: what tracing costs. The keep-alive mTLS server of scenario 1
// (@shop/auth, file source, trivial handler) three ways: with no
// OpenTelemetry at all (@opentelemetry/api replaced by empty functions), as
// shipped with no OTLP endpoint set (the real API, no SDK: every span a
// no-op), and with the SDK exporting every span to a local OTLP receiver.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { FileIdentitySource } from '@shop/auth';
import { runClosedLoop } from '../load/closed-loop.ts';
import { httpAttempt } from '../load/http-load.ts';
import type { HttpServerConfig, HttpServerStats } from '../servers/http-server.ts';
import { ChildServer } from '../support/child-server.ts';
import type { Cleanup } from '../support/cleanup.ts';
import { processCpuMeter, selfCpuMeter } from '../support/cpu-meter.ts';
import { serverScript, type BenchContext, type Scenario, type ScenarioOutcome } from '../support/context.ts';
import { compare, variantFigures, type Check } from '../support/figures.ts';
import { authClient } from '../support/http-clients.ts';
import { CLIENT_ID } from '../support/pki.ts';
import { progress } from '../support/progress.ts';
import { alternate } from '../support/rounds.ts';

const NO_OTEL_HOOK = fileURLToPath(new URL('../support/no-otel-hook.ts', import.meta.url));

interface Variant {
  id: string;
  label: string;
  execArgv: string[];
  export: boolean;
}

const VARIANTS: Variant[] = [
  { id: 'no-otel', label: 'no OpenTelemetry (API stubbed out)', execArgv: ['--import', NO_OTEL_HOOK], export: false },
  { id: 'otel-off', label: 'as shipped, no OTLP endpoint (no SDK loaded)', execArgv: [], export: false },
  { id: 'otel-export', label: 'SDK on, every span exported (OTLP http/protobuf)', execArgv: [], export: true },
];

// A receiver that takes export requests and drops them: its CPU is the
// bench process's, shared with the load generator, so it does no decoding.
async function startSink(cleanup: Cleanup): Promise<{ url: string; requests: () => number }> {
  let requests = 0;
  const server = createServer((req, res) => {
    requests++;
    req.resume();
    req.on('end', () => res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanup.add(
    'OTLP sink',
    () =>
      new Promise<void>((resolve) => {
        server.close(() => {
          resolve();
        });
      }),
  );
  return { url: `http://127.0.0.1:${String((server.address() as AddressInfo).port)}`, requests: () => requests };
}

/** otel is the tracing-cost scenario. */
export const otel: Scenario = {
  id: 'otel',
  title: 'Tracing: no OpenTelemetry vs tracing off (as shipped) vs exporting every span',
  async run(ctx: BenchContext, cleanup: Cleanup): Promise<ScenarioOutcome> {
    const { pki, profile: p } = ctx;
    const sink = await startSink(cleanup);
    const servers = new Map<string, ChildServer>();
    for (const v of VARIANTS) {
      const config: HttpServerConfig = {
        security: 'mtls-auth',
        source: 'files',
        files: pki.serverFiles,
        allow: CLIENT_ID,
        ...(v.export ? { otlpEndpoint: sink.url } : {}),
      };
      servers.set(
        v.id,
        await ChildServer.start(cleanup, `server ${v.id}`, serverScript('http-server.ts'), config, v.execArgv),
      );
    }
    const source = await FileIdentitySource.create(pki.clientFiles);
    cleanup.add('client identity source', () => source.close());
    const client = authClient(cleanup, source, { connections: p.concurrency });
    progress('otel: trivial handler over keep-alive mTLS');
    const runs = await alternate(
      'otel trivial',
      VARIANTS.map((v) => {
        const attempt = httpAttempt({
          url: `https://127.0.0.1:${String(servers.get(v.id)?.port ?? 0)}/trivial`,
          dispatcher: client,
        });
        return {
          id: v.id,
          run: (w) =>
            runClosedLoop(attempt, {
              ...w,
              concurrency: p.concurrency,
              meters: [processCpuMeter('server', servers.get(v.id)?.pid), selfCpuMeter('client')],
            }),
        };
      }),
      p.rounds,
      { warmupMs: p.warmupMs, durationMs: p.durationMs },
    );
    const variants = VARIANTS.map((v) => variantFigures(v.id, v.label, runs.get(v.id) ?? []));
    const checks: Check[] = [];
    for (const v of VARIANTS) {
      const s = await servers.get(v.id)?.ask<HttpServerStats>({ type: 'stats' });
      checks.push({
        name: `${v.id}: every request reached the handler as the verified client`,
        ok: s !== undefined && s.denied === 0 && s.allowed > 0,
        detail: s ? `${String(s.allowed)} allowed, ${String(s.denied)} denied` : 'no stats',
      });
    }
    // The batch processor exports every 5 s at most: give the last batch time to leave.
    await servers.get('otel-export')?.stop();
    checks.push({
      name: 'otel-export: spans reached the OTLP receiver',
      ok: sink.requests() > 0,
      detail: `${String(sink.requests())} export requests`,
    });
    return {
      settings: { concurrency: p.concurrency, rounds: p.rounds, warmupMs: p.warmupMs, durationMs: p.durationMs },
      groups: [
        {
          id: 'trivial',
          title: 'trivial handler over keep-alive mTLS (@shop/auth, file source; undici closed loop)',
          unit: 'req/s',
          variants,
          comparisons: [
            compare(variants, 'otel-off', 'no-otel', 'what the tracing hooks cost with no endpoint set', true),
            compare(variants, 'otel-export', 'otel-off', 'what exporting every span costs', true),
          ],
        },
      ],
      checks,
      notes: [
        'The client is the bench process with no SDK: only the server side traces. The server span of each request carries the peer, rule and TLS attributes (libs/auth/docs/telemetry.md).',
        '"no OpenTelemetry" preloads bench/support/no-otel-hook.ts, which resolves @opentelemetry/api to empty functions: what @shop/auth costs with no tracing code to speak of.',
        'The OTLP receiver is a sink in the bench process that reads and drops each export request (no decoding).',
      ],
    };
  },
};
