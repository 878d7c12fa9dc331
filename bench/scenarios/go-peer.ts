// Scenario 6: the same trivial handler behind Go's net/http with crypto/tls
// mutual TLS, as a reference line for the Node servers, driven by the same
// client. Built from bench/go-peer with `go build`; skipped without `go`.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Agent } from 'undici';
import { runAutocannon } from '../load/autocannon-load.ts';
import { runClosedLoop } from '../load/closed-loop.ts';
import { httpAttempt } from '../load/http-load.ts';
import type { HttpServerConfig } from '../servers/http-server.ts';
import { ChildServer } from '../support/child-server.ts';
import type { Cleanup } from '../support/cleanup.ts';
import { BENCH_DIR, serverScript, type BenchContext, type Scenario, type ScenarioOutcome } from '../support/context.ts';
import { processCpuMeter, selfCpuMeter } from '../support/cpu-meter.ts';
import { compare, variantFigures, type Group } from '../support/figures.ts';
import { rawTlsClient } from '../support/http-clients.ts';
import { goVersion } from '../support/machine.ts';
import { CLIENT_ID, type PemFiles } from '../support/pki.ts';
import { progress } from '../support/progress.ts';
import { alternate, type Runner } from '../support/rounds.ts';

const run = promisify(execFile);

/** buildGoPeer compiles bench/go-peer into `outDir` and returns the binary's path. */
export async function buildGoPeer(outDir: string): Promise<string> {
  const binary = join(outDir, 'go-peer');
  // GOTOOLCHAIN=local: build with the Go on PATH, never download another.
  await run('go', ['build', '-o', binary, '.'], {
    cwd: join(BENCH_DIR, 'go-peer'),
    env: { ...process.env, GOTOOLCHAIN: 'local', GOFLAGS: '-mod=mod' },
  });
  return binary;
}

/** startGoPeer runs the binary with `gomaxprocs` threads and resolves once it prints its port. */
export async function startGoPeer(
  cleanup: Cleanup,
  binary: string,
  files: PemFiles,
  gomaxprocs: number | undefined,
): Promise<{ port: number; pid: number | undefined }> {
  const child: ChildProcess = spawn(binary, ['-cert', files.certFile, '-key', files.keyFile, '-ca', files.caFile], {
    env: { ...process.env, ...(gomaxprocs ? { GOMAXPROCS: String(gomaxprocs) } : {}) },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const detach = cleanup.onExit(() => child.kill('SIGKILL'));
  cleanup.add(`go-peer (GOMAXPROCS ${gomaxprocs ?? 'default'})`, async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
    detach();
  });
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => {
      reject(new Error('go-peer did not print its port within 10 s'));
    }, 10_000);
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /port (\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`go-peer exited (${code ?? 'signal'}) before listening`));
    });
  });
  return { port, pid: child.pid };
}

/** goPeer is scenario 6: Go's net/http + crypto/tls mTLS next to the Node servers. */
export const goPeer: Scenario = {
  id: 'go-peer',
  title: 'A Go peer: net/http + crypto/tls mTLS as a reference line',
  async run(ctx: BenchContext, cleanup: Cleanup): Promise<ScenarioOutcome> {
    const { pki, profile: p } = ctx;
    const go = goVersion();
    if (!go) {
      return {
        settings: {},
        groups: [],
        checks: [],
        notes: [],
        skipped: '`go` is not on PATH: scenario 6 needs Go to build bench/go-peer.',
      };
    }
    progress(`go-peer: building bench/go-peer with ${go}`);
    const binary = await buildGoPeer(ctx.tmp);
    const targets: { id: string; label: string; port: number; pid: number | undefined }[] = [];
    for (const [id, procs] of [
      ['go-1', 1],
      ['go', undefined],
    ] as const) {
      const g = await startGoPeer(cleanup, binary, pki.serverFiles, procs);
      targets.push({
        id,
        label: procs
          ? `Go net/http + crypto/tls, GOMAXPROCS=${procs}`
          : 'Go net/http + crypto/tls, GOMAXPROCS=all cores',
        ...g,
      });
    }
    for (const [id, label, config] of [
      ['node-raw', 'Node fastify, mTLS raw options', { security: 'mtls-raw' }],
      ['node-auth', 'Node fastify, mTLS through @shop/auth (files)', { security: 'mtls-auth', source: 'files' }],
    ] as const) {
      const s = await ChildServer.start(cleanup, `server ${id}`, serverScript('http-server.ts'), {
        ...config,
        files: pki.serverFiles,
        allow: CLIENT_ID,
      } satisfies HttpServerConfig);
      targets.push({ id, label, port: s.port, pid: s.pid });
    }
    const client: Agent = rawTlsClient(cleanup, pki, { connections: p.concurrency, mutual: true });
    const window = { warmupMs: p.warmupMs, durationMs: p.durationMs };
    const runners: Runner[] = targets.map((t) => {
      const attempt = httpAttempt({ url: `https://127.0.0.1:${t.port}/trivial`, dispatcher: client });
      return {
        id: t.id,
        run: (w) =>
          runClosedLoop(attempt, {
            ...w,
            concurrency: p.concurrency,
            meters: [processCpuMeter('server', t.pid), selfCpuMeter('client')],
          }),
      };
    });
    const comparisons = (v: Group['variants'], headline: boolean): Group['comparisons'] => [
      compare(v, 'node-raw', 'go-1', 'Node raw mTLS vs Go, one core each', headline),
      compare(v, 'node-auth', 'go-1', 'Node + @shop/auth vs Go, one core each', headline),
      compare(v, 'go', 'go-1', 'Go on all cores vs one (the load generator shares them)'),
    ];
    progress('go-peer: trivial handler, same undici client for every server');
    const runs = await alternate('go-peer', runners, p.rounds, window);
    const variants = targets.map((t) => variantFigures(t.id, t.label, runs.get(t.id) ?? []));
    const groups: Group[] = [
      {
        id: 'trivial',
        title: 'trivial handler, raw mTLS undici client',
        unit: 'req/s',
        variants,
        comparisons: comparisons(variants, true),
      },
    ];
    if (p.autocannon) {
      const tls = { cert: pki.client.certPem, key: pki.client.keyPem };
      const ac = await alternate(
        'go-peer autocannon',
        targets.map((t) => ({
          id: t.id,
          run: (w) =>
            runAutocannon(
              { url: `https://127.0.0.1:${t.port}/trivial`, tls },
              { ...w, concurrency: p.concurrency, meters: [processCpuMeter('server', t.pid)] },
            ),
        })),
        p.rounds,
        window,
      );
      const acVariants = targets.map((t) => variantFigures(t.id, t.label, ac.get(t.id) ?? []));
      groups.push({
        id: 'trivial-autocannon',
        title: 'trivial handler, autocannon',
        unit: 'req/s',
        latencyResolutionMs: 1,
        variants: acVariants,
        comparisons: comparisons(acVariants, false),
      });
    }
    return {
      settings: {
        go,
        concurrency: p.concurrency,
        rounds: p.rounds,
        warmupMs: p.warmupMs,
        durationMs: p.durationMs,
      },
      groups,
      checks: [],
      notes: [
        'bench/go-peer is standard library only: TLS 1.3, RequireAndVerifyClientCert with ClientCAs from the CA file, the same JSON body as the Node handler, HTTP/1.1 (HTTP/2 turned off, as every client here speaks HTTP/1.1).',
        'A Node server runs its JavaScript on one core; GOMAXPROCS=1 gives Go the same, the default lets Go use both cores, which the load generator needs too.',
      ],
    };
  },
};
