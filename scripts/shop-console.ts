// The console beside a running shop: `npm start` and the browser tests start
// it the same way. It reads the shop's ops ports, receives the services'
// spans, and offers the orchestrator's toggles (this file owns them): let a
// certificate expire (files mode), stop a SPIRE agent (SPIFFE mode), remove
// a federated bundle (no federation in either mode: "not available").
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { loadConsoleConfig, startConsole, type RunningConsole, type Toggle } from '@shop/console';
import { ROOT, type Shop } from './shop.ts';
import type { Spire } from './spire/spire.ts';

const run = promisify(execFile);

/** CONSOLE_PORT is the console's documented port. */
export const CONSOLE_PORT = 3000;

/** EXPIRING_TTL is the lifetime of the certificate the "let it expire" toggle issues. */
export const EXPIRING_TTL = '30s';

/** FAULT_TARGET is the service the orchestrator's toggles act on: its loss opens order's payment breaker. */
export const FAULT_TARGET = 'payment';

/** ShopConsoleOptions say which shop the console watches and how it is run. */
export interface ShopConsoleOptions {
  shop: Shop;
  mode: 'files' | 'spiffe';
  /** certsDir is the development CA's folder (files mode). */
  certsDir?: string;
  /** spire runs the agents (SPIFFE mode). */
  spire?: Spire;
  /** port of the console; Default: CONSOLE_PORT (0 picks a free one). */
  port?: number;
  /** trustDomain of the shop; Default: the services' default, example.org. */
  trustDomain?: string;
  /** pollMs; Default: 1000. */
  pollMs?: number;
}

/** otelEnv is what the services need to export their spans to a console at `url` (unless the user set their own). */
export function otelEnv(url: string, env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  if (env.OTEL_EXPORTER_OTLP_ENDPOINT !== undefined || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT !== undefined) return {};
  return { OTEL_EXPORTER_OTLP_ENDPOINT: url, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json' };
}

async function issuePaymentCertificate(certsDir: string, ttl: string): Promise<string> {
  const { stdout } = await run(
    process.execPath,
    [
      join(ROOT, 'tools/spiffe-auth/src/cli/main.ts'),
      'cert',
      'issue',
      '--ca-dir',
      certsDir,
      '--service',
      FAULT_TARGET,
      '--out-dir',
      certsDir,
      '--ttl',
      ttl,
      '--force',
      '--json',
    ],
    { cwd: ROOT },
  );
  const notAfter = (JSON.parse(stdout) as { notAfter?: string }).notAfter;
  return notAfter ?? 'unknown';
}

/** orchestratorToggles are the toggles only the orchestrator can run, each saying where it is not available. */
export function orchestratorToggles(o: ShopConsoleOptions): Toggle[] {
  const filesOnly = (): true | string =>
    o.mode === 'files' ? true : 'not available in SPIFFE mode: SPIRE renews SVIDs';
  const spiffeOnly = (): true | string =>
    o.mode === 'spiffe' ? true : 'not available in files mode: there are no SPIRE agents';
  const certsDir = o.certsDir;
  return [
    {
      name: 'expire-certificate',
      label: `Let ${FAULT_TARGET}'s certificate expire`,
      description: `The orchestrator reissues ${FAULT_TARGET}'s certificate from the development CA with a ${EXPIRING_TTL} lifetime; ${FAULT_TARGET} loads it (a rotation), counts down, then expires: not ready, and order's calls to it fail.`,
      available: filesOnly,
      run: async () => {
        if (certsDir === undefined) throw new Error('no certificate folder');
        const notAfter = await issuePaymentCertificate(certsDir, EXPIRING_TTL);
        return `${FAULT_TARGET} has a new certificate valid until ${notAfter}`;
      },
    },
    {
      name: 'renew-certificate',
      label: `Renew ${FAULT_TARGET}'s certificate`,
      description: `The orchestrator reissues ${FAULT_TARGET}'s certificate with the usual 720 h lifetime; ${FAULT_TARGET} loads it and is ready again.`,
      available: filesOnly,
      run: async () => {
        if (certsDir === undefined) throw new Error('no certificate folder');
        const notAfter = await issuePaymentCertificate(certsDir, '720h');
        return `${FAULT_TARGET} has a new certificate valid until ${notAfter}`;
      },
    },
    {
      name: 'stop-agent',
      label: `Stop ${FAULT_TARGET}'s SPIRE agent`,
      description: `The orchestrator stops the SPIRE agent ${FAULT_TARGET} gets its SVID from: no more rotations; once the SVID expires, ${FAULT_TARGET} is not ready.`,
      available: spiffeOnly,
      run: async () => {
        if (!o.spire) throw new Error('no SPIRE');
        await o.spire.stopAgent(FAULT_TARGET);
        return `${FAULT_TARGET}'s SPIRE agent stopped`;
      },
    },
    {
      name: 'start-agent',
      label: `Start ${FAULT_TARGET}'s SPIRE agent`,
      description: `The orchestrator starts ${FAULT_TARGET}'s SPIRE agent again; ${FAULT_TARGET} gets a fresh SVID (a rotation).`,
      available: spiffeOnly,
      run: async () => {
        if (!o.spire) throw new Error('no SPIRE');
        await o.spire.startAgent(FAULT_TARGET);
        return `${FAULT_TARGET}'s SPIRE agent started`;
      },
    },
    {
      name: 'remove-federated-bundle',
      label: 'Remove a federated bundle',
      description:
        "Deletes a partner trust domain's bundle from the SPIRE server, so calls from that domain are refused.",
      available: () =>
        `not available in ${o.mode === 'spiffe' ? 'SPIFFE' : 'files'} mode: npm start runs one trust domain, with no federation`,
      run: () => Promise.reject(new Error('not available')),
    },
  ];
}

/** startShopConsole starts the console watching `o.shop`. */
export async function startShopConsole(o: ShopConsoleOptions): Promise<RunningConsole> {
  const p = o.shop.ports;
  const config = loadConsoleConfig({
    HOST: '127.0.0.1',
    PORT: String(o.port ?? CONSOLE_PORT),
    CONSOLE_SERVICES: (['order', 'payment', 'inventory'] as const).map((n) => `${n}=${o.shop.opsUrl(n)}`).join(','),
    CONSOLE_PAYMENT_ADMIN_URL: `http://127.0.0.1:${p.paymentAdmin}`,
    CONSOLE_INVENTORY_URL: `https://127.0.0.1:${p.inventory}`,
    TRUST_DOMAIN: o.trustDomain ?? 'example.org',
    CONSOLE_POLL_MS: String(o.pollMs ?? 1000),
  });
  return startConsole(config, { mode: o.mode, toggles: orchestratorToggles(o) });
}
