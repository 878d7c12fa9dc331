// Toggles inject identity faults. Each acts through something that owns the
// state: a service's admin endpoint, the orchestrator (scripts/start.ts), or
// a call the console makes itself as an outsider (the forged certificate);
// never by editing a service's state behind its back.
import { request as httpsRequest } from 'node:https';
import { CertificateAuthority } from '@shop/spiffe-auth-cli/dev-ca';

/** ToggleInput is one form field of a toggle. */
export interface ToggleInput {
  name: string;
  label: string;
  type: 'number';
  min: number;
  max: number;
  step: number;
  value: number;
}

/** Toggle is one fault the page can inject (or undo). */
export interface Toggle {
  /** name is the toggle's id in POST /api/toggles/:name. */
  readonly name: string;
  /** label is the button's text. */
  readonly label: string;
  /** description says what it does and what should happen. */
  readonly description: string;
  /** inputs are form fields sent as the JSON body. */
  readonly inputs?: readonly ToggleInput[];
  /** available is true, or says why the toggle cannot run (e.g. "not available in files mode"). */
  available(): true | string;
  /** run injects the fault and says what happened; a throw is shown as the failure. */
  run(body: Record<string, unknown>): Promise<string>;
}

/** ToggleState is a toggle as GET /api/model lists it. */
export interface ToggleState {
  name: string;
  label: string;
  description: string;
  inputs: readonly ToggleInput[];
  available: true | string;
  /** last is the outcome of the latest run, if any. */
  last: { at: string; ok: boolean; message: string } | null;
}

/** ForgeOptions describe the forged-certificate call. */
export interface ForgeOptions {
  /** inventoryUrl is inventory's mTLS API. */
  inventoryUrl: string;
  /** spiffeId is the ID the forged certificate claims. */
  spiffeId: string;
}

/** presentForgedCertificate calls inventory with a certificate for `spiffeId` from a CA nobody trusts, and reports the answer. */
export async function presentForgedCertificate(o: ForgeOptions): Promise<string> {
  const ca = await CertificateAuthority.createRoot({ subject: 'CN=Forged CA nobody trusts', ttlSeconds: 600 });
  const leaf = await ca.issueSvid(o.spiffeId, { ttlSeconds: 600 });
  const url = new URL('/api/stock/forged-certificate-check', o.inventoryUrl);
  return await new Promise<string>((resolve) => {
    const req = httpsRequest(
      url,
      {
        method: 'GET',
        cert: leaf.certPem,
        key: leaf.keyPem,
        // The console plays an outsider here: it neither has nor needs the shop's trust bundle.
        rejectUnauthorized: false,
        timeout: 5000,
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => {
          let code: string;
          try {
            const parsed = (JSON.parse(body) as { code?: unknown }).code;
            code = typeof parsed === 'string' ? parsed : '';
          } catch {
            code = body.slice(0, 80);
          }
          resolve(
            `presented a certificate for ${o.spiffeId} from a CA nobody trusts: inventory answered ${res.statusCode ?? '?'}${code ? ` ${code}` : ''}`,
          );
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error('no answer within 5 s')));
    req.on('error', (err: Error & { code?: string }) => {
      resolve(
        `presented a certificate for ${o.spiffeId} from a CA nobody trusts: inventory refused the connection (${err.code ?? err.message})`,
      );
    });
    req.end();
  });
}

/** forgedCertificateToggle is the "present a forged certificate to inventory" toggle. */
export function forgedCertificateToggle(o: ForgeOptions): Toggle {
  return {
    name: 'forged-certificate',
    label: 'Present a forged certificate to inventory',
    description: `The console calls inventory itself with a certificate claiming ${o.spiffeId}, signed by a CA nobody trusts. Inventory must refuse it: a deny from an unauthenticated caller appears on inventory.`,
    available: () => true,
    run: () => presentForgedCertificate(o),
  };
}

/** paymentFaultsToggle sets payment's processor latency and failure rate through its admin endpoint. */
export function paymentFaultsToggle(adminUrl: string): Toggle {
  return {
    name: 'payment-faults',
    label: 'Set payment latency and failure rate',
    description: `POST ${adminUrl}/admin/faults: payment's own fault knobs. Slow or failing charges open order's payment breaker.`,
    inputs: [
      { name: 'latency_ms', label: 'Latency (ms)', type: 'number', min: 0, max: 30_000, step: 100, value: 0 },
      { name: 'failure_rate', label: 'Failure rate (0–1)', type: 'number', min: 0, max: 1, step: 0.05, value: 0 },
    ],
    available: () => true,
    run: async (body) => {
      const res = await fetch(`${adminUrl}/admin/faults`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(5000),
      });
      const text = await res.text();
      if (!res.ok) throw new Error(`payment's admin endpoint answered ${res.status}: ${text.slice(0, 200)}`);
      return `payment's faults are now ${text}`;
    },
  };
}
