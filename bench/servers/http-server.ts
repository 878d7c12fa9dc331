// Child process: one fastify server, the same two routes (`/trivial`,
// `/work`), behind one of the transports the bench compares.
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import Fastify, { type FastifyInstance } from 'fastify';
import { FileIdentitySource, X509Bundle, X509Svid, type IdentitySource } from '@shop/auth';
import { WorkloadX509Source } from '@shop/auth/workloadapi';
import { fastifyMtlsOptions, spiffeAuth } from '@shop/auth/fastify';
import { MemorySource } from '@shop/auth-testing';
import { runChild } from '../support/child-main.ts';
import type { PemFiles } from '../support/pki.ts';
import { TRIVIAL_BODY, WORK_MS, busyWork } from './handlers.ts';

/** HttpSecurity names the transports: plaintext, TLS (server cert only), mTLS by Node alone, mTLS through @shop/auth. */
export type HttpSecurity = 'plain' | 'tls' | 'mtls-raw' | 'mtls-auth';

/** HttpServerConfig configures the child. */
export interface HttpServerConfig {
  security: HttpSecurity;
  /** source backs `mtls-auth`: the files, the Workload API, or an in-memory source the parent rotates. */
  source?: 'files' | 'workload' | 'memory';
  files: PemFiles;
  workloadAddress?: string;
  /** allow is the client ID the `mtls-auth` server accepts. */
  allow: string;
  /** otlpEndpoint, when set, starts tracing (service-kit's startTracing) exporting every span there. */
  otlpEndpoint?: string;
}

/** HttpServerStats are the child's counters since start (or the last `stats` with reset). */
export interface HttpServerStats {
  connections: number;
  resumed: number;
  allowed: number;
  denied: number;
  /** denyCodes are the first few distinct reasons for a refusal (code: message). */
  denyCodes: string[];
}

const TRUST_DOMAIN = 'example.org';

async function openSource(c: HttpServerConfig): Promise<IdentitySource> {
  if (c.source === 'workload') return WorkloadX509Source.create({ address: c.workloadAddress ?? '' });
  if (c.source === 'memory') {
    const svid = X509Svid.fromPem(readFileSync(c.files.certFile, 'utf8'), readFileSync(c.files.keyFile, 'utf8'));
    return MemorySource.create(svid, [X509Bundle.fromPem(TRUST_DOMAIN, readFileSync(c.files.caFile, 'utf8'))]);
  }
  return FileIdentitySource.create(c.files);
}

runChild(async (c: HttpServerConfig) => {
  const pem = {
    cert: readFileSync(c.files.certFile, 'utf8'),
    key: readFileSync(c.files.keyFile, 'utf8'),
    ca: readFileSync(c.files.caFile, 'utf8'),
  };
  const stats: HttpServerStats = { connections: 0, resumed: 0, allowed: 0, denied: 0, denyCodes: [] };
  // As a shop service does it: the standard variables, then runService's startTracing.
  let tracing: { shutdown(): Promise<void> } | undefined;
  if (c.otlpEndpoint) {
    process.env.OTEL_EXPORTER_OTLP_ENDPOINT = c.otlpEndpoint;
    const { startTracing } = await import('@shop/service-kit');
    tracing = await startTracing({ serviceName: 'bench-http' });
  }
  let app: FastifyInstance;
  let source: IdentitySource | undefined;
  switch (c.security) {
    case 'plain':
      app = Fastify({ logger: false });
      break;
    case 'tls':
      app = Fastify({ logger: false, https: { cert: pem.cert, key: pem.key, minVersion: 'TLSv1.3' } });
      break;
    case 'mtls-raw':
      app = Fastify({
        logger: false,
        https: { ...pem, minVersion: 'TLSv1.3', requestCert: true, rejectUnauthorized: true },
      });
      break;
    case 'mtls-auth':
      source = await openSource(c);
      app = Fastify({ logger: false, https: fastifyMtlsOptions(source) });
      await app.register(spiffeAuth, {
        source,
        allow: [c.allow],
        onDecision: (d) => {
          if (d.decision === 'allow') stats.allowed++;
          else {
            stats.denied++;
            const why = `${d.code ?? ''}: ${d.reason ?? ''}`;
            if (stats.denyCodes.length < 5 && !stats.denyCodes.includes(why)) stats.denyCodes.push(why);
          }
        },
      });
      break;
  }
  app.server.on('secureConnection', (socket: TLSSocket) => {
    stats.connections++;
    if (socket.isSessionReused()) stats.resumed++;
  });
  app.get('/trivial', () => TRIVIAL_BODY);
  app.get('/work', () => {
    busyWork(WORK_MS);
    return TRIVIAL_BODY;
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const port = (app.server.address() as AddressInfo).port;
  const answer = (m: { type: string; [field: string]: unknown }): unknown => {
    switch (m.type) {
      case 'stats': {
        const out = { ...stats, denyCodes: [...stats.denyCodes] };
        if (m.reset) Object.assign(stats, { connections: 0, resumed: 0, allowed: 0, denied: 0, denyCodes: [] });
        return out;
      }
      case 'rotate': {
        if (!(source instanceof MemorySource)) throw new Error('rotate needs the memory source');
        source.set(X509Svid.fromPem(m.certPem as string, m.keyPem as string), source.getX509Bundles().bundles());
        return { serial: source.getX509Svid().leaf.serialNumber };
      }
      case 'set-bundles': {
        if (!(source instanceof MemorySource)) throw new Error('set-bundles needs the memory source');
        const bundles = (m.caPems as string[]).map((p) => X509Bundle.fromPem(TRUST_DOMAIN, p));
        source.set(source.getX509Svid(), bundles);
        return { bundles: bundles.length };
      }
      default:
        throw new Error(`unknown request ${m.type}`);
    }
  };
  return {
    port,
    handle: (m) => Promise.resolve(m).then(answer),
    stop: async () => {
      app.server.closeAllConnections();
      await Promise.race([app.close(), once(app.server, 'close')]);
      await source?.close();
      await tracing?.shutdown();
    },
  };
});
