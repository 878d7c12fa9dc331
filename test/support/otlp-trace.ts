// A realistic OTLP/HTTP JSON export of one order, as the services send it
// once they trace (issue 14): order's server span, its client spans to
// inventory (gRPC) and payment (HTTP), and those services' server spans with
// the peer's identity. The attribute names are the project's contract.
import { randomBytes } from 'node:crypto';

type Attr = { key: string; value: { stringValue: string } | { boolValue: boolean } | { intValue: string } };

function attrs(o: Record<string, string | boolean | number>): Attr[] {
  return Object.entries(o).map(([key, v]) => ({
    key,
    value:
      typeof v === 'boolean' ? { boolValue: v } : typeof v === 'number' ? { intValue: String(v) } : { stringValue: v },
  }));
}

/** OrderTrace is the export plus the ids a test looks for. */
export interface OrderTrace {
  traceId: string;
  body: unknown;
}

/** orderTrace builds one order's trace for trust domain `td`, the payment server span denied when `paymentDenied`. */
export function orderTrace(td: string, paymentDenied = false): OrderTrace {
  const traceId = randomBytes(16).toString('hex');
  const id = (): string => randomBytes(8).toString('hex');
  const t0 = BigInt(Date.now()) * 1_000_000n;
  const at = (ms: number): string => String(t0 + BigInt(ms) * 1_000_000n);
  const root = id();
  const toInventory = id();
  const toPayment = id();
  const peer = (name: string, serial: string) => ({
    'spiffe.self.id': `spiffe://${td}/${name}`,
    'spiffe.peer.id': `spiffe://${td}/order`,
    'spiffe.peer.trust_domain': td,
    'spiffe.peer.svid.serial': serial,
    'spiffe.peer.svid.not_after': new Date(Date.now() + 3_600_000).toISOString(),
    'tls.resumed': false,
    'tls.group': 'X25519MLKEM768',
    'tls.cipher': 'TLS_AES_256_GCM_SHA384',
    'tls.protocol.version': '1.3',
  });
  const resource = (name: string, spans: unknown[]) => ({
    resource: { attributes: attrs({ 'service.name': name }) },
    scopeSpans: [{ scope: { name: '@shop/auth' }, spans }],
  });
  const span = (
    spanId: string,
    parent: string | undefined,
    name: string,
    kind: number,
    from: number,
    to: number,
    a: Record<string, string | boolean | number>,
    error = false,
  ) => ({
    traceId,
    spanId,
    ...(parent ? { parentSpanId: parent } : {}),
    name,
    kind,
    startTimeUnixNano: at(from),
    endTimeUnixNano: at(to),
    attributes: attrs(a),
    status: { code: error ? 2 : 1 },
  });
  return {
    traceId,
    body: {
      resourceSpans: [
        resource('order', [
          span(root, undefined, 'POST /orders', 2, 0, 40, { 'http.request.method': 'POST', 'http.route': '/orders' }),
          span(toInventory, root, 'shop.inventory.v1.Inventory/ReserveStock', 3, 2, 12, {
            'spiffe.self.id': `spiffe://${td}/order`,
            'spiffe.server.id': `spiffe://${td}/inventory`,
            'spiffe.server.trust_domain': td,
          }),
          span(
            toPayment,
            root,
            'POST',
            3,
            14,
            38,
            {
              'spiffe.self.id': `spiffe://${td}/order`,
              'spiffe.server.id': `spiffe://${td}/payment`,
              'spiffe.server.trust_domain': td,
            },
            paymentDenied,
          ),
        ]),
        resource('inventory', [
          span(id(), toInventory, 'shop.inventory.v1.Inventory/ReserveStock', 2, 3, 11, {
            ...peer('inventory', '0A1B2C3D'),
            'spiffe.authz.rule': `ID is one of [spiffe://${td}/order]`,
            'spiffe.authz.decision': 'allow',
          }),
        ]),
        resource('payment', [
          span(
            id(),
            toPayment,
            'POST /api/payments',
            2,
            15,
            37,
            {
              ...peer('payment', '0A1B2C3D'),
              'spiffe.authz.rule': `ID is one of [spiffe://${td}/order]`,
              'spiffe.authz.decision': paymentDenied ? 'deny' : 'allow',
              ...(paymentDenied ? { 'spiffe.authz.reason': 'caller is not allowed' } : {}),
            },
            paymentDenied,
          ),
        ]),
      ],
    },
  };
}
