// Runs inside a pod of the shop's image (test/k8s.test.ts mounts it from a
// ConfigMap under /app, so @shop/auth resolves from the image's node_modules):
// gets this pod's identity from the SPIRE agent's Workload API, then looks a
// payment up with it. Prints one JSON line with what happened.
//   SPIFFE_ENDPOINT_SOCKET  the agent's socket (the chart's hostPath mount)
//   PROBE_PAYMENT_URL       e.g. https://payment:8443
//   PROBE_PAYMENT_ID        the SPIFFE ID payment must have
//   PROBE_ORDER_ID          the order whose payment to look up
import { request } from 'undici';
import { authorizeId, SpiffeId } from '@shop/auth';
import { createMtlsDispatcher } from '@shop/auth/undici';
import { WorkloadX509Source } from '@shop/auth/workloadapi';

interface ProbeResult {
  identity: string | null;
  dnsNames?: string[];
  identityError?: string;
  paymentStatus?: number;
  paymentBody?: unknown;
  paymentError?: string;
}

const env = (name: string): string => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} must be set`);
  return v;
};
const result: ProbeResult = { identity: null };
try {
  // A new pod's entry is created by the controller manager once the pod
  // exists, and reaches the agent within seconds: wait for it.
  const source = await WorkloadX509Source.create({ address: env('SPIFFE_ENDPOINT_SOCKET'), timeoutMs: 90_000 });
  const svid = source.getX509Svid();
  result.identity = svid.id.toString();
  result.dnsNames = svid.leaf.subjectAltName?.split(', ').filter((n) => n.startsWith('DNS:')) ?? [];
  const dispatcher = createMtlsDispatcher({
    source,
    authorize: authorizeId(SpiffeId.parse(env('PROBE_PAYMENT_ID'))),
  });
  try {
    const res = await request(
      `${env('PROBE_PAYMENT_URL')}/api/payments?order_id=${encodeURIComponent(env('PROBE_ORDER_ID'))}`,
      { dispatcher, headersTimeout: 10_000 },
    );
    result.paymentStatus = res.statusCode;
    result.paymentBody = await res.body.json();
  } catch (err) {
    result.paymentError = (err as Error).message;
  } finally {
    await dispatcher.close();
    await source.close();
  }
} catch (err) {
  result.identityError = (err as Error).message;
}
console.log(JSON.stringify(result));
// A source that never got an identity may still hold a retry timer.
process.exit(0);
