// Scenario 2: a new mTLS connection per request (full handshakes per second),
// raw Node verification against @shop/auth's in each role, with and without
// TLS session resumption, and proof that resumption never skips our checks.
import { X509Svid, authorizeId, connectMtls, isAuthError, type ResumableSession } from '@shop/auth';
import { MemorySource, createTestTrustDomain } from '@shop/auth-testing';
import type { Agent } from 'undici';
import { runClosedLoop } from '../load/closed-loop.ts';
import { GoClient } from '../load/go-client.ts';
import { httpAttempt } from '../load/http-load.ts';
import type { HttpServerConfig, HttpServerStats } from '../servers/http-server.ts';
import { ChildServer } from '../support/child-server.ts';
import type { Cleanup } from '../support/cleanup.ts';
import { serverScript, type BenchContext, type Scenario, type ScenarioOutcome } from '../support/context.ts';
import { processCpuMeter, selfCpuMeter } from '../support/cpu-meter.ts';
import { compare, variantFigures, type Check, type Comparison, type Group } from '../support/figures.ts';
import { authClient, countingAuthorizer, rawTlsClient, type ConnectionCounter } from '../support/http-clients.ts';
import { CLIENT_ID, SERVER_ID, type BenchPki } from '../support/pki.ts';
import { progress } from '../support/progress.ts';
import { goVersion } from '../support/machine.ts';
import { alternate } from '../support/rounds.ts';
import { buildGoPeer, startGoPeer } from './go-peer.ts';

type Side = 'raw' | 'auth' | 'go';

interface HandshakeVariant {
  id: string;
  label: string;
  server: Side;
  client: Side;
  resume: boolean;
}

const NAMES: Record<Side, string> = { raw: 'Node', auth: '@shop/auth', go: 'Go crypto/tls' };

// The Go peer is the reference line in each role, against the raw Node side.
const PAIRS: readonly (readonly [Side, Side])[] = [
  ['raw', 'raw'],
  ['auth', 'raw'],
  ['raw', 'auth'],
  ['auth', 'auth'],
  ['go', 'raw'],
  ['raw', 'go'],
];

const variantsFor = (withGo: boolean): HandshakeVariant[] =>
  (['full', 'resumed'] as const).flatMap((mode) =>
    PAIRS.filter(([server, client]) => withGo || (server !== 'go' && client !== 'go')).map(([server, client]) => ({
      id: `server-${server}.client-${client}.${mode}`,
      label: `server ${NAMES[server]}, client ${NAMES[client]}, ${mode === 'full' ? 'full handshake' : 'resumption on'}`,
      server,
      client,
      resume: mode === 'resumed',
    })),
  );

/** memorySource holds `pair` and trusts the bench CA, in this process. */
function memorySource(pki: BenchPki, pair: { certPem: string; keyPem: string }): MemorySource {
  return MemorySource.create(X509Svid.fromPem(pair.certPem, pair.keyPem), [pki.td.bundle]);
}

/** sessionFrom makes one verified connection and returns the session ticket it got. */
async function sessionFrom(port: number, source: MemorySource): Promise<ResumableSession> {
  let session: ResumableSession | undefined;
  const c = await connectMtls({
    host: '127.0.0.1',
    port,
    source,
    authorize: authorizeId(SERVER_ID),
    onSession: (s) => (session = s),
  });
  // TLS 1.3 tickets arrive after the handshake: read a response so they land.
  c.socket.write('GET /trivial HTTP/1.1\r\nhost: bench\r\nconnection: close\r\n\r\n');
  await new Promise((resolve) => c.socket.once('end', resolve).resume());
  if (!session) throw new Error('the server issued no session ticket');
  return session;
}

/** statusOverResumed sends one request over a resumed connection and returns whether it resumed, the status and the body. */
async function statusOverResumed(
  port: number,
  source: MemorySource,
  session: ResumableSession,
): Promise<{ resumed: boolean; status: number; body: string }> {
  const c = await connectMtls({ host: '127.0.0.1', port, source, authorize: authorizeId(SERVER_ID), session });
  const resumed = c.socket.isSessionReused();
  c.socket.write('GET /trivial HTTP/1.1\r\nhost: bench\r\nconnection: close\r\n\r\n');
  const chunks: Buffer[] = [];
  c.socket.on('data', (d: Buffer) => chunks.push(d));
  await new Promise((resolve) => c.socket.once('end', resolve));
  const text = Buffer.concat(chunks).toString('utf8');
  return { resumed, status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0), body: text.split('\r\n\r\n')[1] ?? '' };
}

/**
 * resumptionChecks asserts on this run what rotation.test.ts asserts in the
 * test suite: a resumed connection is verified again in both roles, and
 * refused once the bundle no longer trusts the peer.
 */
async function resumptionChecks(pki: BenchPki, server: ChildServer): Promise<Check[]> {
  const checks: Check[] = [];
  const client = memorySource(pki, pki.client);
  const session = await sessionFrom(server.port, client);
  const positive = await statusOverResumed(server.port, client, session);
  checks.push({
    name: 'positive control: a resumed connection is accepted while both sides trust each other',
    ok: positive.resumed && positive.status === 200,
    detail: `resumed ${positive.resumed}, status ${positive.status}`,
  });

  // Client role: our bundle loses the server's CA; the resumed session must be refused.
  const other = await createTestTrustDomain('example.org');
  const distrusting = MemorySource.create(client.getX509Svid(), [other.bundle]);
  let clientRefusal = 'accepted';
  try {
    const c = await connectMtls({
      host: '127.0.0.1',
      port: server.port,
      source: distrusting,
      authorize: authorizeId(SERVER_ID),
      session,
    });
    c.socket.destroy();
  } catch (err) {
    clientRefusal = isAuthError(err) ? err.code : String(err);
  }
  checks.push({
    name: 'client role: a resumed session is refused once our bundle no longer trusts the server',
    ok: clientRefusal === 'AUTH_ERR_PEER_UNVERIFIED',
    detail: clientRefusal,
  });

  // Server role: the server's bundle loses our CA; the resumed connection gets 401.
  await server.ask({ type: 'set-bundles', caPems: [other.ca.certPem] });
  try {
    const refused = await statusOverResumed(server.port, client, session);
    const code = (JSON.parse(refused.body || '{}') as { code?: string }).code ?? '';
    checks.push({
      name: 'server role: a resumed connection is refused (401) once the server no longer trusts the client',
      ok: refused.resumed && refused.status === 401 && code === 'AUTH_ERR_PEER_UNVERIFIED',
      detail: `resumed ${refused.resumed}, status ${refused.status} ${code}`,
    });
  } finally {
    await server.ask({ type: 'set-bundles', caPems: [pki.caPem] });
  }
  return checks;
}

/** newConnection is scenario 2: a new mTLS connection per request, with and without resumption. */
export const newConnection: Scenario = {
  id: 'new-connection',
  title: 'New connection per request: mTLS handshakes, Node vs @shop/auth verification, resumption',
  async run(ctx: BenchContext, cleanup: Cleanup): Promise<ScenarioOutcome> {
    const { pki, profile: p } = ctx;
    // The Go lines need `go` to build bench/go-peer; without it they are left out, said in the notes.
    const binary = goVersion() ? await buildGoPeer(ctx.tmp) : undefined;
    const VARIANTS = variantsFor(binary !== undefined);
    const goServer = binary ? await startGoPeer(cleanup, binary, pki.serverFiles, 1) : undefined;
    const servers: Record<'raw' | 'auth', ChildServer> = {
      raw: await ChildServer.start(cleanup, 'server mtls-raw', serverScript('http-server.ts'), {
        security: 'mtls-raw',
        files: pki.serverFiles,
        allow: CLIENT_ID,
      } satisfies HttpServerConfig),
      auth: await ChildServer.start(cleanup, 'server mtls-auth', serverScript('http-server.ts'), {
        security: 'mtls-auth',
        source: 'memory',
        files: pki.serverFiles,
        allow: CLIENT_ID,
      } satisfies HttpServerConfig),
    };
    const clientSource = memorySource(pki, pki.client);
    interface ClientState {
      agent?: Agent;
      go?: GoClient;
      counter: ConnectionCounter;
      authorizer?: ReturnType<typeof countingAuthorizer>;
    }
    const target = (v: HandshakeVariant): { port: number; pid: number | undefined } => {
      if (v.server === 'go') {
        if (!goServer) throw new Error('no Go server');
        return goServer;
      }
      const server = servers[v.server];
      return { port: server.port, pid: server.pid };
    };
    const clients = new Map<string, ClientState>();
    for (const v of VARIANTS) {
      const counter: ConnectionCounter = { connections: 0, resumed: 0 };
      const o = { connections: p.handshakeConcurrency, maxCachedSessions: v.resume ? 100 : 0, counter };
      if (v.client === 'go') {
        if (!binary) throw new Error('no go-peer binary');
        const go = await GoClient.start(cleanup, {
          binary,
          url: `https://127.0.0.1:${target(v).port}/trivial`,
          files: pki.clientFiles,
          serverId: SERVER_ID,
          resume: v.resume,
          concurrency: p.handshakeConcurrency,
        });
        clients.set(v.id, { go, counter });
      } else if (v.client === 'raw') {
        clients.set(v.id, { agent: rawTlsClient(cleanup, pki, { ...o, mutual: true }), counter });
      } else {
        const authorizer = countingAuthorizer(authorizeId(SERVER_ID));
        clients.set(v.id, {
          agent: authClient(cleanup, clientSource, { ...o, authorize: authorizer }),
          counter,
          authorizer,
        });
      }
    }

    // Per variant, what both sides counted over all its runs.
    const serverStats = new Map<string, HttpServerStats[]>();
    progress('new-connection: one request per connection (connection: close)');
    const runs = await alternate(
      'new-connection',
      VARIANTS.map((v) => {
        const c = clients.get(v.id);
        const child = v.server === 'go' ? undefined : servers[v.server];
        const { port, pid } = target(v);
        if (!c) throw new Error(`no client for ${v.id}`);
        const serverMeter = processCpuMeter('server', pid);
        const { go, agent } = c;
        const attempt = agent
          ? httpAttempt({ url: `https://127.0.0.1:${port}/trivial`, dispatcher: agent, reset: true })
          : undefined;
        return {
          id: v.id,
          run: async (w) => {
            await child?.ask({ type: 'stats', reset: true });
            const r = go
              ? await go.run(w, serverMeter)
              : await runClosedLoop(attempt ?? (() => Promise.resolve(false)), {
                  ...w,
                  concurrency: p.handshakeConcurrency,
                  meters: [serverMeter, selfCpuMeter('client')],
                });
            if (child) {
              const list = serverStats.get(v.id) ?? [];
              list.push(await child.ask<HttpServerStats>({ type: 'stats' }));
              serverStats.set(v.id, list);
            }
            return r;
          },
        };
      }),
      p.rounds,
      { warmupMs: p.warmupMs, durationMs: p.handshakeDurationMs },
    );
    const variants = VARIANTS.map((v) => {
      const f = variantFigures(v.id, v.label, runs.get(v.id) ?? []);
      const c = clients.get(v.id);
      const s = serverStats.get(v.id) ?? [];
      const sum = (k: 'connections' | 'resumed' | 'allowed' | 'denied'): number => s.reduce((a, x) => a + x[k], 0);
      const last = s[s.length - 1]?.verdicts;
      f.extra = {
        clientConnections: c?.go ? c.go.connections : (c?.counter.connections ?? 0),
        clientResumed: c?.go ? c.go.resumed : (c?.counter.resumed ?? 0),
        ...(last ? { serverVerdictHits: last.hits, serverVerdictMisses: last.misses } : {}),
        ...(c?.authorizer ? { clientVerifications: c.authorizer.calls } : {}),
        serverConnections: sum('connections'),
        serverResumed: sum('resumed'),
        ...(v.server === 'auth' ? { serverVerifiedRequests: sum('allowed'), serverRefused: sum('denied') } : {}),
      };
      return f;
    });

    const checks: Check[] = [];
    for (const v of variants) {
      const x = v.extra ?? {};
      const spec = VARIANTS.find((s) => s.id === v.id);
      if (spec?.resume) {
        checks.push({
          name: `${v.id}: sessions were really resumed (else the figure is a full handshake)`,
          ok: Number(x.clientResumed) > 0 && (spec.server === 'go' || Number(x.serverResumed) > 0),
          detail: `client resumed ${x.clientResumed}/${x.clientConnections}, server resumed ${x.serverResumed}/${x.serverConnections}`,
        });
      }
      if (spec?.client === 'auth') {
        checks.push({
          name: `${v.id}: the client verified and authorized every connection, resumed ones included`,
          ok: x.clientVerifications === x.clientConnections && Number(x.clientConnections) > 0,
          detail: `${x.clientVerifications} verifications for ${x.clientConnections} connections (${x.clientResumed} resumed)`,
        });
      }
      if (spec?.server === 'auth') {
        checks.push({
          name: `${v.id}: the server verified the client on every connection, resumed ones included`,
          ok: Number(x.serverRefused) === 0 && Number(x.serverVerifiedRequests) >= Number(x.serverConnections),
          detail: `${x.serverVerifiedRequests} verified requests on ${x.serverConnections} connections (${x.serverResumed} resumed), ${x.serverRefused} refused`,
        });
      }
    }
    checks.push(...(await resumptionChecks(pki, servers.auth)));

    const has = (id: string): boolean => variants.some((v) => v.id === id);
    const goComparisons = has('server-go.client-raw.full')
      ? [
          compare(variants, 'server-auth.client-raw.full', 'server-go.client-raw.full', '@shop/auth as server vs Go'),
          compare(variants, 'server-raw.client-raw.full', 'server-go.client-raw.full', 'Node as server vs Go'),
          compare(variants, 'server-raw.client-auth.full', 'server-raw.client-go.full', '@shop/auth as client vs Go'),
          compare(
            variants,
            'server-auth.client-raw.resumed',
            'server-go.client-raw.resumed',
            '@shop/auth as server vs Go, resumed',
          ),
          compare(
            variants,
            'server-raw.client-auth.resumed',
            'server-raw.client-go.resumed',
            '@shop/auth as client vs Go, resumed',
          ),
        ]
      : [];
    const roleComparisons = [
      compare(
        variants,
        'server-auth.client-raw.resumed',
        'server-raw.client-raw.resumed',
        '@shop/auth as server vs Node, resumed',
        true,
      ),
      compare(
        variants,
        'server-raw.client-auth.resumed',
        'server-raw.client-raw.resumed',
        '@shop/auth as client vs Node, resumed',
        true,
      ),
    ];
    const group: Group = {
      id: 'handshakes',
      title: 'one request per new connection (undici closed loop)',
      unit: 'connections/s',
      variants,
      comparisons: [
        compare(variants, 'server-auth.client-raw.full', 'server-raw.client-raw.full', '@shop/auth as server vs Node'),
        compare(variants, 'server-raw.client-auth.full', 'server-raw.client-raw.full', '@shop/auth as client vs Node'),
        compare(
          variants,
          'server-auth.client-auth.full',
          'server-raw.client-raw.full',
          '@shop/auth both roles vs Node',
          true,
        ),
        compare(
          variants,
          'server-raw.client-raw.resumed',
          'server-raw.client-raw.full',
          'what resumption saves, Node both roles',
        ),
        compare(
          variants,
          'server-auth.client-auth.resumed',
          'server-auth.client-auth.full',
          'what resumption saves, @shop/auth both roles',
          true,
        ),
        compare(
          variants,
          'server-auth.client-auth.resumed',
          'server-raw.client-raw.resumed',
          '@shop/auth both roles vs Node, resumed',
          true,
        ),
        ...roleComparisons,
        ...goComparisons,
      ],
    };
    const goals = goalNotes(group.comparisons);
    return {
      settings: {
        concurrency: p.handshakeConcurrency,
        rounds: p.rounds,
        warmupMs: p.warmupMs,
        durationMs: p.handshakeDurationMs,
      },
      groups: [group],
      checks,
      notes: [
        'Every request is GET /trivial with `reset: true`: the connection closes after the response, so each request pays a TCP connect and a TLS 1.3 handshake (ECDSA P-256).',
        'Node: `requestCert`, `ca`, `rejectUnauthorized: true` on the server; `ca`, client certificate and a URI SAN check on the client. @shop/auth: `fastifyMtlsOptions` + `spiffeAuth` on the server, its undici connector on the client; both verify the X.509-SVID rules against the peer’s own trust domain.',
        ...goals,
        binary
          ? 'Go: bench/go-peer (standard library) with GOMAXPROCS=1, as server (RequireAndVerifyClientCert, session tickets on by default) and as client (DisableKeepAlives, VerifyConnection checks the chain for serverAuth and the URI SAN on every handshake, resumed ones included; an LRU session cache of 100 with resumption).'
          : 'Go lines left out: `go` is not on PATH.',
        'With resumption the client offers its last session ticket (undici’s session cache, or @shop/auth’s, 100 sessions). @shop/auth re-verifies the remembered server chain on the client, and the client certificate kept in the session on the server.',
      ],
    };
  },
};

// The goals of issue 18, read off the paired ratios (median of the rounds).
function goalNotes(comparisons: Comparison[]): string[] {
  const find = (of: string, to: string): Comparison | undefined => comparisons.find((c) => c.of === of && c.to === to);
  const line = (
    goal: string,
    c: Comparison | undefined,
    pick: (c: Comparison) => number | undefined,
    ok: (x: number) => boolean,
  ): string => {
    const x = c ? pick(c) : undefined;
    if (x === undefined || Number.isNaN(x)) return `Goal: ${goal}: not measured in this run.`;
    return `Goal: ${goal}: ${x.toFixed(2)}× — ${ok(x) ? 'met' : 'missed'}.`;
  };
  const serverResumed = find('server-auth.client-raw.resumed', 'server-raw.client-raw.resumed');
  const clientResumed = find('server-raw.client-auth.resumed', 'server-raw.client-raw.resumed');
  return [
    line(
      'resumed, @shop/auth as server ≥ 0.95× Node’s connections/s',
      serverResumed,
      (c) => c.throughput.median,
      (x) => x >= 0.95,
    ),
    line(
      'resumed, @shop/auth as server ≤ 1.05× Node’s server CPU',
      serverResumed,
      (c) => c.cpu.server?.median,
      (x) => x <= 1.05,
    ),
    line(
      'resumed, @shop/auth as client ≥ 0.95× Node’s connections/s',
      clientResumed,
      (c) => c.throughput.median,
      (x) => x >= 0.95,
    ),
    line(
      'resumed, @shop/auth as client ≤ 1.05× Node’s client CPU',
      clientResumed,
      (c) => c.cpu.client?.median,
      (x) => x <= 1.05,
    ),
    line(
      'full handshake, @shop/auth server CPU ≤ 1.0× raw Node’s',
      find('server-auth.client-raw.full', 'server-raw.client-raw.full'),
      (c) => c.cpu.server?.median,
      (x) => x <= 1.0,
    ),
    line(
      'full handshake, @shop/auth server CPU within 1.5× of Go’s',
      find('server-auth.client-raw.full', 'server-go.client-raw.full'),
      (c) => c.cpu.server?.median,
      (x) => x <= 1.5,
    ),
  ];
}
