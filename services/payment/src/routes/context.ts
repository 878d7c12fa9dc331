import { randomUUID } from 'node:crypto';
import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify';
import { IDEMPOTENCY_KEY_HEADER, parseIdempotencyKey, type IdempotencyKeys } from '../idempotency.ts';
import type { CardProcessor } from '../processor.ts';
import type { PaymentStore } from '../store.ts';

/** RouteContext is what the API routes share. */
export interface RouteContext {
  store: PaymentStore;
  processor: CardProcessor;
  keys: IdempotencyKeys;
  /** now is the clock in ms since the epoch. */
  now: () => number;
}

/** AuditEntry is the one log line written per charge or refund (never a card number or a whole idempotency key). */
export interface AuditEntry {
  operation: 'charge' | 'refund';
  caller: string;
  result: string;
  payment_id?: string;
  refund_id?: string;
  order_id?: string;
  amount?: number;
  currency?: string;
  decline_reason?: string;
  card_last4?: string;
  idempotency_key_sha256: string;
}

/** audit writes the audit line of a charge or refund. */
export function audit(request: FastifyRequest, entry: AuditEntry): void {
  request.log.info({ audit: entry }, `${entry.operation} ${entry.result}`);
}

/** callerOf returns the verified caller's SPIFFE ID; the auth plugin has already refused requests without one. */
export function callerOf(request: FastifyRequest): string {
  if (!request.peer) throw new Error('request reached a handler without a verified peer');
  return request.peer.id.toString();
}

/** newId returns a fresh opaque ID such as `pay_3f9c…`. */
export function newId(prefix: 'pay' | 're'): string {
  return `${prefix}_${randomUUID().replaceAll('-', '')}`;
}

/**
 * sendJson answers with an already serialized JSON body, so a replay sends
 * exactly the bytes of the first answer.
 */
export function sendJson(reply: FastifyReply, statusCode: number, body: string, replayed = false): FastifyReply {
  if (replayed) void reply.header('idempotent-replayed', 'true');
  return reply.code(statusCode).type('application/json; charset=utf-8').send(body);
}

/** requireIdempotencyKey is a preValidation hook: a charge or refund without a valid key is refused before its body is looked at. */
export function requireIdempotencyKey(
  request: FastifyRequest,
  _reply: FastifyReply,
  done: HookHandlerDoneFunction,
): void {
  try {
    parseIdempotencyKey(request.headers[IDEMPOTENCY_KEY_HEADER]);
  } catch (err) {
    done(err as Error);
    return;
  }
  done();
}
