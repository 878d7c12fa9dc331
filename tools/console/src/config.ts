import { ConfigError, Env } from '@shop/service-kit';

/** ServiceTarget is where the console reads one service: its plaintext ops port. */
export interface ServiceTarget {
  /** name is the service's name, as its metrics' `service` label says it. */
  readonly name: string;
  /** opsUrl is the ops port's base URL (/metrics, /health/ready, /identity). */
  readonly opsUrl: string;
}

/**
 * ConsoleConfig is the console's configuration, resolved once at start and
 * frozen (tools/console/README.md#configuration).
 */
export interface ConsoleConfig {
  /** host the console listens on; loopback by default, since it is plaintext and unauthenticated. */
  readonly host: string;
  /** port of the web page, its JSON model and the OTLP receiver. */
  readonly port: number;
  /** services are read in this order; order, payment and inventory by default. */
  readonly services: readonly ServiceTarget[];
  /** paymentAdminUrl is payment's fault-injection server (latency and failure knobs). */
  readonly paymentAdminUrl: string;
  /** inventoryUrl is inventory's mTLS API, where the forged-certificate toggle calls. */
  readonly inventoryUrl: string;
  /** trustDomain is the shop's; the forged certificate claims its `/order`. */
  readonly trustDomain: string;
  /** pollMs is how often the services are read. */
  readonly pollMs: number;
  /** traceLimit is how many traces (the most recent) are kept in memory. */
  readonly traceLimit: number;
}

const DEFAULT_SERVICES = 'order=http://127.0.0.1:9080,payment=http://127.0.0.1:9443,inventory=http://127.0.0.1:9444';

function parseServices(raw: string): ServiceTarget[] {
  const out: ServiceTarget[] = [];
  for (const part of raw.split(',')) {
    const m = /^\s*([a-z][a-z0-9-]{0,62})=(\S+)\s*$/.exec(part);
    let url: URL | undefined;
    try {
      url = m?.[2] === undefined ? undefined : new URL(m[2]);
    } catch {
      url = undefined;
    }
    if (!m?.[1] || url === undefined || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
      throw new ConfigError(
        'CONSOLE_SERVICES',
        `must be name=http://host:port pairs separated by commas (e.g. ${DEFAULT_SERVICES}), got ${JSON.stringify(part)}`,
      );
    }
    out.push({ name: m[1], opsUrl: url.toString().replace(/\/+$/, '') });
  }
  return out;
}

/**
 * loadConsoleConfig reads the configuration from `env` once; a bad value
 * throws a ConfigError naming the variable and what it must be.
 */
export function loadConsoleConfig(env: NodeJS.ProcessEnv = process.env): Readonly<ConsoleConfig> {
  const e = new Env(env);
  return Object.freeze({
    host: e.string('HOST', '127.0.0.1'),
    port: e.port('PORT', 3000),
    services: Object.freeze(parseServices(e.string('CONSOLE_SERVICES', DEFAULT_SERVICES))),
    paymentAdminUrl: e.url('CONSOLE_PAYMENT_ADMIN_URL', 'http://127.0.0.1:9543', ['http:']),
    inventoryUrl: e.url('CONSOLE_INVENTORY_URL', 'https://127.0.0.1:8444', ['https:']),
    trustDomain: e.string('TRUST_DOMAIN', 'example.org'),
    pollMs: e.int('CONSOLE_POLL_MS', 1000, { min: 100, max: 60_000 }),
    traceLimit: e.int('CONSOLE_TRACE_LIMIT', 50, { min: 1, max: 1000 }),
  });
}
