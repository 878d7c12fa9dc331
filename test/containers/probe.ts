// Runs inside a container on the compose network (test/containers/*.test.ts
// mounts it into the shop's image): asks the SPIRE agent for an identity, then
// calls payment with it — or, with none, tries payment without a client
// certificate. With PROBE_STATIC_CERT=<dir>/<service> it instead calls payment
// holding that static certificate (<...>.crt.pem, <...>.key.pem).
// Prints one JSON line with what happened.
import { readFile } from 'node:fs/promises';
import { connect } from 'node:tls';
import { Agent, request, type Dispatcher } from 'undici';
import { authorizeId, SpiffeId } from '@shop/auth';
import { createMtlsDispatcher } from '@shop/auth/undici';
import { WorkloadX509Source } from '@shop/auth/workloadapi';

interface ProbeResult {
  identity: string | null;
  identityError?: string;
  paymentStatus?: number;
  paymentCode?: string;
  paymentError?: string;
}

const address = process.env.SPIFFE_ENDPOINT_SOCKET ?? 'unix:///run/spire/agent/public/api.sock';
const result: ProbeResult = { identity: null };

/** Without an SVID: a TLS client with no certificate, as any stranger on the network would be. */
async function callWithoutIdentity(): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect({ host: 'payment', port: 8443, rejectUnauthorized: false, servername: 'payment' });
    socket.setTimeout(5000, () => {
      socket.destroy();
      resolve('timeout');
    });
    socket.once('secureConnect', () => {
      socket.write('GET /api/payments?order_id=probe HTTP/1.1\r\nhost: payment\r\nconnection: close\r\n\r\n');
    });
    let answer = '';
    socket.on('data', (b: Buffer) => (answer += b.toString()));
    socket.once('error', (err: NodeJS.ErrnoException) => {
      resolve(`${err.code ?? ''} ${err.message}`.trim());
    });
    socket.once('close', () => {
      resolve(answer ? `answered: ${answer.split('\r\n')[0] ?? ''}` : 'closed without an answer');
    });
  });
}

/** callPayment looks an (unknown) order's payment up through `dispatcher`, recording what payment said. */
async function callPayment(dispatcher: Dispatcher): Promise<void> {
  try {
    const res = await request('https://payment:8443/api/payments?order_id=probe', { dispatcher });
    result.paymentStatus = res.statusCode;
    const body = (await res.body.json()) as { code?: string };
    if (body.code) result.paymentCode = body.code;
  } catch (err) {
    result.paymentError = (err as Error).message;
  } finally {
    await dispatcher.close();
  }
}

async function callWithStaticCertificate(prefix: string): Promise<void> {
  const [cert, key] = await Promise.all([readFile(`${prefix}.crt.pem`, 'utf8'), readFile(`${prefix}.key.pem`, 'utf8')]);
  // Does not verify payment: it only shows what payment does with this client.
  await callPayment(new Agent({ connect: { cert, key, rejectUnauthorized: false } }));
}

const staticCert = process.env.PROBE_STATIC_CERT;
if (staticCert) {
  await callWithStaticCertificate(staticCert);
  console.log(JSON.stringify(result));
  process.exit(0);
}

try {
  const source = await WorkloadX509Source.create({ address, timeoutMs: 8000 });
  result.identity = source.getX509Svid().id.toString();
  await callPayment(
    createMtlsDispatcher({ source, authorize: authorizeId(SpiffeId.parse('spiffe://example.org/payment')) }),
  );
  await source.close();
} catch (err) {
  const e = err as Error & { code?: string };
  result.identityError = `${e.code ?? ''} ${e.message}`.trim();
  result.paymentError = await callWithoutIdentity();
}
console.log(JSON.stringify(result));
