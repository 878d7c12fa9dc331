// Where a new connection's CPU goes: CPU profiles of the server (a bench
// child) and of the client (this process) while they make one request per
// connection, full handshakes and resumed ones, for raw Node and for
// @shop/auth in both roles. Writes the .cpuprofile files and prints a
// markdown summary by area (see cpu-profile-summary.ts).
// Usage: node bench/profile/profile-handshakes.ts [--seconds 5] [--out <dir>]
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { Session } from 'node:inspector/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { VerdictCache, X509Svid } from '@shop/auth';
import { MemorySource } from '@shop/auth-testing';
import { runClosedLoop } from '../load/closed-loop.ts';
import { httpAttempt } from '../load/http-load.ts';
import type { HttpServerConfig } from '../servers/http-server.ts';
import { ChildServer } from '../support/child-server.ts';
import { Cleanup } from '../support/cleanup.ts';
import { serverScript } from '../support/context.ts';
import { processCpuMeter, selfCpuMeter } from '../support/cpu-meter.ts';
import { authClient, rawTlsClient } from '../support/http-clients.ts';
import { CLIENT_ID, createBenchPki } from '../support/pki.ts';
import { AREAS, summarise, type AreaSummary, type CpuProfile } from './cpu-profile-summary.ts';

type Side = 'raw' | 'auth' | 'auth-nocache';
type Mode = 'full' | 'resumed';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '5' },
    out: { type: 'string' },
    concurrency: { type: 'string', default: '4' },
  },
});
const seconds = Number(values.seconds);
const concurrency = Number(values.concurrency);
const out = values.out ?? (await mkdtemp(join(tmpdir(), 'shop-prof-')));
await mkdir(out, { recursive: true });

const cleanup = new Cleanup();
const tmp = await mkdtemp(join(tmpdir(), 'shop-prof-pki-'));
const summaries = new Map<
  string,
  { server: AreaSummary; client: AreaSummary; requests: number; cpuUs: { server: number; client: number } }
>();
try {
  const pki = await createBenchPki(tmp);
  for (const side of ['raw', 'auth', 'auth-nocache'] as Side[]) {
    const server = await ChildServer.start(cleanup, `server ${side}`, serverScript('http-server.ts'), {
      security: side === 'raw' ? 'mtls-raw' : 'mtls-auth',
      source: 'memory',
      files: pki.serverFiles,
      allow: CLIENT_ID,
      ...(side === 'auth-nocache' ? { verdictCacheSize: 0 } : {}),
    } satisfies HttpServerConfig);
    for (const mode of ['full', 'resumed'] as Mode[]) {
      const o = { connections: concurrency, maxCachedSessions: mode === 'resumed' ? 100 : 0 };
      const agent =
        side === 'raw'
          ? rawTlsClient(cleanup, pki, { ...o, mutual: true })
          : authClient(
              cleanup,
              MemorySource.create(X509Svid.fromPem(pki.client.certPem, pki.client.keyPem), [pki.td.bundle]),
              side === 'auth-nocache' ? { ...o, verdicts: new VerdictCache({ maxEntries: 0 }) } : o,
            );
      const attempt = httpAttempt({ url: `https://127.0.0.1:${server.port}/trivial`, dispatcher: agent, reset: true });
      await runClosedLoop(attempt, { concurrency, warmupMs: 1000, durationMs: 1 });
      const name = `${mode}-${side}`;
      const session = new Session();
      session.connect();
      await session.post('Profiler.enable');
      await server.ask({ type: 'cpu-profile-start' });
      await session.post('Profiler.start');
      const r = await runClosedLoop(attempt, {
        concurrency,
        warmupMs: 0,
        durationMs: seconds * 1000,
        meters: [processCpuMeter('server', server.pid), selfCpuMeter('client')],
      });
      const { profile } = await session.post('Profiler.stop');
      session.disconnect();
      const serverFile = join(out, `${name}-server.cpuprofile`);
      await server.ask({ type: 'cpu-profile-stop', file: serverFile });
      await writeFile(join(out, `${name}-client.cpuprofile`), JSON.stringify(profile));
      summaries.set(name, {
        server: summarise(JSON.parse(await readFile(serverFile, 'utf8')) as CpuProfile),
        client: summarise(profile as unknown as CpuProfile),
        requests: r.requests,
        cpuUs: { server: r.cpuUsPerRequest.server ?? Number.NaN, client: r.cpuUsPerRequest.client ?? Number.NaN },
      });
      process.stderr.write(`${name}: ${r.requests} connections, ${r.errors} errors\n`);
    }
  }
} finally {
  await cleanup.run();
  await rm(tmp, { recursive: true, force: true });
}

// Markdown: µs of CPU per connection by area, per role: each area's share
// of the profile's samples times the CPU per connection the meters measured.
const names = [...summaries.keys()];
const lines: string[] = [];
for (const role of ['server', 'client'] as const) {
  lines.push(`\n${role}: CPU µs per connection by area (measured CPU × share of profile samples)\n`);
  lines.push(`| area | ${names.join(' | ')} |`, `|---|${names.map(() => '---:').join('|')}|`);
  for (const area of AREAS) {
    const row = names.map((n) => {
      const s = summaries.get(n);
      return s ? (s[role].byArea[area] * s.cpuUs[role]).toFixed(0) : '';
    });
    lines.push(`| ${area} | ${row.join(' | ')} |`);
  }
  lines.push(
    `| **CPU per connection (measured)** | ${names.map((n) => summaries.get(n)?.cpuUs[role].toFixed(0) ?? '').join(' | ')} |`,
  );
}
for (const [name, s] of summaries) {
  for (const role of ['server', 'client'] as const) {
    lines.push(`\n${name}, ${role}: busiest functions (share of samples, ${s[role].busy} samples)`);
    for (const t of s[role].top.slice(0, 12)) {
      lines.push(`- ${(t.share * 100).toFixed(1)}% ${t.fn} ${t.where} [${t.area}]`);
    }
  }
}
process.stdout.write(`${lines.join('\n')}\n\nprofiles in ${out}\n`);
