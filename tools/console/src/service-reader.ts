// Reads one service's ops port: /metrics, /health/ready and /identity. The
// console's only sources of truth are these and the spans it receives.
import type { IdentityView } from '@shop/service-kit';
import type { ServiceTarget } from './config.ts';
import { parsePrometheusText, type Sample } from './prometheus-text.ts';

/** ServiceReading is what one read of a service's ops port found. */
export interface ServiceReading {
  name: string;
  opsUrl: string;
  /** at is when it was read (ms since the epoch). */
  at: number;
  /** reachable is false when the ops port did not answer /metrics. */
  reachable: boolean;
  /** error says why it was not reachable. */
  error: string | null;
  ready: boolean;
  /** readyReasons are /health/ready's reasons for each failing check. */
  readyReasons: Record<string, string>;
  identity: IdentityView | null;
  samples: Sample[];
}

const TIMEOUT_MS = 1500;

async function get(url: string): Promise<Response> {
  return fetch(url, { signal: AbortSignal.timeout(TIMEOUT_MS) });
}

/** readService reads a service's ops port once; it never throws (an unreachable service is a reading too). */
export async function readService(target: ServiceTarget, now = Date.now()): Promise<ServiceReading> {
  const base = { name: target.name, opsUrl: target.opsUrl, at: now };
  const [metrics, ready, identity] = await Promise.allSettled([
    get(`${target.opsUrl}/metrics`).then((r) => r.text()),
    get(`${target.opsUrl}/health/ready`).then(async (r) => ({ ok: r.ok, body: await r.json() })),
    get(`${target.opsUrl}/identity`).then(async (r) => (r.ok ? ((await r.json()) as IdentityView) : null)),
  ]);
  if (metrics.status === 'rejected') {
    const err = metrics.reason as Error & { cause?: { code?: string } };
    return {
      ...base,
      reachable: false,
      error: err.cause?.code ?? err.message,
      ready: false,
      readyReasons: {},
      identity: null,
      samples: [],
    };
  }
  const readyBody = ready.status === 'fulfilled' ? (ready.value.body as { reasons?: Record<string, string> }) : {};
  return {
    ...base,
    reachable: true,
    error: null,
    ready: ready.status === 'fulfilled' && ready.value.ok,
    readyReasons: readyBody.reasons ?? {},
    identity: identity.status === 'fulfilled' ? identity.value : null,
    samples: parsePrometheusText(metrics.value),
  };
}
