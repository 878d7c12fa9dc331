// Scenario 1: the same fastify handler over keep-alive connections as
// plaintext HTTP, TLS, raw Node mTLS, and mTLS through @shop/auth with the
// file source and with the Workload API source.
import { WorkloadX509Source } from '@shop/auth/workloadapi';
import { FileIdentitySource, type IdentitySource, X509Svid } from '@shop/auth';
import { FakeWorkloadApi } from '@shop/auth-testing';
import type { Agent } from 'undici';
import { runAutocannon } from '../load/autocannon-load.ts';
import { runClosedLoop } from '../load/closed-loop.ts';
import { httpAttempt } from '../load/http-load.ts';
import type { HttpServerConfig, HttpServerStats } from '../servers/http-server.ts';
import { ChildServer } from '../support/child-server.ts';
import { processCpuMeter, selfCpuMeter, type CpuMeter } from '../support/cpu-meter.ts';
import type { Cleanup } from '../support/cleanup.ts';
import { serverScript, type BenchContext, type Scenario, type ScenarioOutcome } from '../support/context.ts';
import { compare, variantFigures, type Check, type Group } from '../support/figures.ts';
import { authClient, plainClient, rawTlsClient } from '../support/http-clients.ts';
import { CLIENT_ID, type BenchPki, type PemPair } from '../support/pki.ts';
import { progress } from '../support/progress.ts';
import { alternate } from '../support/rounds.ts';

interface HttpVariant {
  id: string;
  label: string;
  config: Omit<HttpServerConfig, 'files' | 'allow'>;
  /** mutual: the client presents a certificate (autocannon too). */
  mutual: boolean;
  scheme: 'http' | 'https';
}

const VARIANTS: HttpVariant[] = [
  { id: 'http', label: 'plaintext HTTP', config: { security: 'plain' }, mutual: false, scheme: 'http' },
  { id: 'tls', label: 'TLS (server cert only)', config: { security: 'tls' }, mutual: false, scheme: 'https' },
  { id: 'mtls-raw', label: 'mTLS, raw Node options', config: { security: 'mtls-raw' }, mutual: true, scheme: 'https' },
  {
    id: 'auth-files',
    label: 'mTLS, @shop/auth, file source',
    config: { security: 'mtls-auth', source: 'files' },
    mutual: true,
    scheme: 'https',
  },
  {
    id: 'auth-workload',
    label: 'mTLS, @shop/auth, Workload API source (fake agent)',
    config: { security: 'mtls-auth', source: 'workload' },
    mutual: true,
    scheme: 'https',
  },
];

/** startFakeAgent serves `pair` over a FakeWorkloadApi (a real gRPC Workload API on a Unix socket). */
export async function startFakeAgent(cleanup: Cleanup, pki: BenchPki, pair: PemPair): Promise<FakeWorkloadApi> {
  const fake = await FakeWorkloadApi.start();
  cleanup.add('fake Workload API', () => fake.close());
  fake.setX509Context({ svids: [{ svid: X509Svid.fromPem(pair.certPem, pair.keyPem) }], bundle: pki.td.bundle });
  return fake;
}

async function trackSource<S extends IdentitySource>(cleanup: Cleanup, s: Promise<S>): Promise<S> {
  const source = await s;
  cleanup.add(`identity source (${source.describe()})`, () => source.close());
  return source;
}

/** keepAlive is scenario 1: the same handler over keep-alive HTTP, plaintext to mTLS through @shop/auth. */
export const keepAlive: Scenario = {
  id: 'keep-alive',
  title: 'Keep-alive HTTP: plaintext, TLS, raw mTLS, mTLS through @shop/auth',
  async run(ctx: BenchContext, cleanup: Cleanup): Promise<ScenarioOutcome> {
    const { pki, profile: p } = ctx;
    const serverAgent = await startFakeAgent(cleanup, pki, pki.server);
    const clientAgent = await startFakeAgent(cleanup, pki, pki.client);
    const clientFiles = await trackSource(cleanup, FileIdentitySource.create(pki.clientFiles));
    const clientWorkload = await trackSource(cleanup, WorkloadX509Source.create({ address: clientAgent.address }));

    const servers = new Map<string, ChildServer>();
    for (const v of VARIANTS) {
      const config: HttpServerConfig = {
        ...v.config,
        files: pki.serverFiles,
        allow: CLIENT_ID,
        workloadAddress: serverAgent.address,
      };
      servers.set(v.id, await ChildServer.start(cleanup, `server ${v.id}`, serverScript('http-server.ts'), config));
    }
    const url = (v: HttpVariant, path: string): string =>
      `${v.scheme}://127.0.0.1:${servers.get(v.id)?.port ?? 0}${path}`;
    const o = { connections: p.concurrency };
    const clients: Record<string, Agent> = {
      http: plainClient(cleanup, o),
      tls: rawTlsClient(cleanup, pki, { ...o, mutual: false }),
      'mtls-raw': rawTlsClient(cleanup, pki, { ...o, mutual: true }),
      'auth-files': authClient(cleanup, clientFiles, o),
      'auth-workload': authClient(cleanup, clientWorkload, o),
    };

    const window = { warmupMs: p.warmupMs, durationMs: p.durationMs };
    const meters = (v: HttpVariant): CpuMeter[] => [
      processCpuMeter('server', servers.get(v.id)?.pid),
      selfCpuMeter('client'),
    ];
    const groups: Group[] = [];
    // headlines lists the ratios ("of/to") that go into the report's summary table.
    const comparisons = (variants: Group['variants'], headlines: string[]): Group['comparisons'] =>
      (
        [
          ['tls', 'http', 'what TLS costs over plaintext'],
          ['mtls-raw', 'tls', 'what a client certificate adds (Node verifies it)'],
          ['auth-files', 'mtls-raw', 'what @shop/auth costs over raw Node mTLS'],
          ['auth-workload', 'auth-files', 'Workload API source vs file source'],
          ['auth-files', 'http', 'mTLS through @shop/auth vs plaintext, all in'],
        ] as const
      ).map(([of, to, meaning]) => compare(variants, of, to, meaning, headlines.includes(`${of}/${to}`)));
    for (const handler of [
      {
        path: '/trivial',
        id: 'trivial',
        title: 'trivial handler (undici closed loop)',
        headlines: ['auth-files/mtls-raw', 'auth-workload/auth-files', 'auth-files/http'],
      },
      {
        path: '/work',
        id: 'work',
        title: 'handler doing ~1 ms of CPU work (undici closed loop)',
        headlines: ['auth-files/mtls-raw'],
      },
    ]) {
      progress(`keep-alive: ${handler.title}`);
      const runs = await alternate(
        `keep-alive ${handler.id}`,
        VARIANTS.map((v) => {
          const dispatcher = clients[v.id];
          if (!dispatcher) throw new Error(`no client for ${v.id}`);
          const attempt = httpAttempt({ url: url(v, handler.path), dispatcher });
          return {
            id: v.id,
            run: (w) => runClosedLoop(attempt, { ...w, concurrency: p.concurrency, meters: meters(v) }),
          };
        }),
        p.rounds,
        window,
      );
      const variants = VARIANTS.map((v) => variantFigures(v.id, v.label, runs.get(v.id) ?? []));
      groups.push({
        id: handler.id,
        title: handler.title,
        unit: 'req/s',
        variants,
        comparisons: comparisons(variants, handler.headlines),
      });
    }
    if (p.autocannon) {
      progress('keep-alive: trivial handler, autocannon');
      const tls = { cert: pki.client.certPem, key: pki.client.keyPem };
      const runs = await alternate(
        'keep-alive autocannon',
        VARIANTS.map((v) => ({
          id: v.id,
          run: (w) =>
            runAutocannon(
              { url: url(v, '/trivial'), ...(v.mutual ? { tls } : {}) },
              // autocannon's own CPU is not the client side of the library; only the server's is comparable.
              { ...w, concurrency: p.concurrency, meters: [processCpuMeter('server', servers.get(v.id)?.pid)] },
            ),
        })),
        p.rounds,
        window,
      );
      const variants = VARIANTS.map((v) => variantFigures(v.id, v.label, runs.get(v.id) ?? []));
      groups.push({
        id: 'trivial-autocannon',
        title: 'trivial handler, autocannon (server side only: it does not verify servers)',
        unit: 'req/s',
        latencyResolutionMs: 1,
        variants,
        comparisons: comparisons(variants, ['auth-files/mtls-raw']),
      });
    }

    const checks: Check[] = [];
    for (const id of ['auth-files', 'auth-workload']) {
      const s = await servers.get(id)?.ask<HttpServerStats>({ type: 'stats' });
      checks.push({
        name: `${id}: every request reached the handler as the verified client (no 401/403)`,
        ok: s !== undefined && s.denied === 0 && s.allowed > 0,
        detail: s ? `${s.allowed} allowed, ${s.denied} denied ${s.denyCodes.join(' ')}` : 'no stats',
      });
    }
    return {
      settings: { concurrency: p.concurrency, rounds: p.rounds, warmupMs: p.warmupMs, durationMs: p.durationMs },
      groups,
      checks,
      notes: [
        'Each server runs in its own Node process; the load generator runs in the bench process. All HTTP/1.1 over loopback, one request in flight per connection.',
        'The Workload API variant uses FakeWorkloadApi from @shop/auth-testing (a real gRPC Workload API on a Unix socket) instead of a SPIRE agent; per request it costs what the file source costs, the source only matters when material changes.',
        'TLS variants are TLS 1.3 only, like @shop/auth. Raw clients check the URI SAN by hand (Node’s hostname check would refuse an SVID).',
      ],
    };
  },
};
