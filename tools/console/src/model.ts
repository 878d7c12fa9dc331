// The JSON model the page draws, built from the latest readings of the
// services' ops ports (and earlier ones, for rates) and the traces received.
import type { IdentityView } from '@shop/service-kit';
import type { ServiceReading } from './service-reader.ts';
import type { TraceView } from './trace-store.ts';

/** RATE_WINDOW_MS is how far back rates look. */
export const RATE_WINDOW_MS = 10_000;

/** Figure is a number with where it comes from. */
export interface Rate {
  total: number;
  /** perSecond over the last RATE_WINDOW_MS (0 until two readings exist). */
  perSecond: number;
}

/** EdgeView is one caller → service edge, as the server side's authorization decisions report it. */
export interface EdgeView {
  /** from is the calling service's name, or null when the caller is not one of the services read. */
  from: string | null;
  to: string;
  /** caller is the verified SPIFFE ID, or "none" when the caller was not authenticated. */
  caller: string;
  /** rules are the authorizers that decided (allow rules first). */
  rules: string[];
  allow: Rate;
  deny: Rate;
  /** source names the metric and ops URL these figures come from. */
  source: string;
}

/** BreakerView is one circuit breaker's state. */
export interface BreakerView {
  service: string;
  breaker: string;
  state: 'closed' | 'half-open' | 'open' | 'unknown';
  source: string;
}

/** ServiceView is one service as the page shows it. */
export interface ServiceView {
  name: string;
  opsUrl: string;
  reachable: boolean;
  error: string | null;
  ready: boolean;
  readyReasons: Record<string, string>;
  identity: IdentityView | null;
  handshakeFailures: Rate;
  sources: { identity: string; ready: string; metrics: string };
}

/** ConsoleModel is GET /api/model's body. */
export interface ConsoleModel {
  generatedAt: string;
  pollMs: number;
  services: ServiceView[];
  edges: EdgeView[];
  breakers: BreakerView[];
  traces: TraceView[];
  traceSource: string;
}

const BREAKER_STATES = ['closed', 'half-open', 'open'] as const;

function sum(r: ServiceReading, name: string, match: (l: Record<string, string>) => boolean = () => true): number {
  return r.samples.filter((s) => s.name === name && match(s.labels)).reduce((a, s) => a + s.value, 0);
}

/**
 * ModelBuilder keeps the readings of the last RATE_WINDOW_MS per service and
 * builds the model from them.
 */
export class ModelBuilder {
  readonly #history = new Map<string, ServiceReading[]>();

  /** record adds a reading. */
  record(r: ServiceReading): void {
    const list = this.#history.get(r.name) ?? [];
    list.push(r);
    while (list.length > 2 && (list[0]?.at ?? 0) < r.at - RATE_WINDOW_MS) list.shift();
    this.#history.set(r.name, list);
  }

  #rate(name: string, total: (r: ServiceReading) => number): Rate {
    const list = (this.#history.get(name) ?? []).filter((r) => r.reachable);
    const last = list.at(-1);
    const first = list[0];
    if (!last) return { total: 0, perSecond: 0 };
    const now = total(last);
    if (!first || first === last || last.at <= first.at) return { total: now, perSecond: 0 };
    // A restarted service starts its counters at 0 again: no negative rates.
    return { total: now, perSecond: Math.max(0, (now - total(first)) / ((last.at - first.at) / 1000)) };
  }

  /** build makes the model from the latest readings of `order` (service names, in page order). */
  build(order: readonly string[], traces: TraceView[], pollMs: number, traceSource: string): ConsoleModel {
    const latest = order.map((n) => this.#history.get(n)?.at(-1)).filter((r): r is ServiceReading => r !== undefined);
    const idOf = new Map<string, string>();
    for (const r of latest) if (r.identity?.spiffeId) idOf.set(r.identity.spiffeId, r.name);
    const services: ServiceView[] = latest.map((r) => ({
      name: r.name,
      opsUrl: r.opsUrl,
      reachable: r.reachable,
      error: r.error,
      ready: r.ready,
      readyReasons: r.readyReasons,
      identity: r.identity,
      handshakeFailures: this.#rate(r.name, (x) => sum(x, 'shop_tls_handshake_failures_total')),
      sources: {
        identity: `GET ${r.opsUrl}/identity`,
        ready: `GET ${r.opsUrl}/health/ready`,
        metrics: `GET ${r.opsUrl}/metrics`,
      },
    }));
    const edges: EdgeView[] = [];
    for (const r of latest) {
      const callers = new Map<string, Set<string>>();
      for (const s of r.samples) {
        if (s.name !== 'shop_authz_decisions_total') continue;
        const caller = s.labels.caller ?? 'none';
        const rules = callers.get(caller) ?? new Set<string>();
        if (s.labels.rule) rules.add(s.labels.rule);
        callers.set(caller, rules);
      }
      for (const [caller, rules] of callers) {
        const of = (decision: string) => (x: ServiceReading) =>
          sum(x, 'shop_authz_decisions_total', (l) => l.caller === caller && l.decision === decision);
        const allowRules = new Set(
          r.samples
            .filter(
              (s) =>
                s.name === 'shop_authz_decisions_total' &&
                s.labels.caller === caller &&
                s.labels.decision === 'allow' &&
                s.value > 0,
            )
            .map((s) => s.labels.rule ?? ''),
        );
        edges.push({
          from: idOf.get(caller) ?? null,
          to: r.name,
          caller,
          rules: [...allowRules, ...[...rules].filter((x) => !allowRules.has(x))],
          allow: this.#rate(r.name, of('allow')),
          deny: this.#rate(r.name, of('deny')),
          source: `shop_authz_decisions_total at GET ${r.opsUrl}/metrics`,
        });
      }
    }
    const breakers: BreakerView[] = latest.flatMap((r) =>
      r.samples
        .filter((s) => s.name === 'shop_circuit_breaker_state')
        .map((s) => ({
          service: r.name,
          breaker: s.labels.breaker ?? '?',
          state: BREAKER_STATES[s.value] ?? 'unknown',
          source: `shop_circuit_breaker_state at GET ${r.opsUrl}/metrics`,
        })),
    );
    return { generatedAt: new Date().toISOString(), pollMs, services, edges, breakers, traces, traceSource };
  }
}
