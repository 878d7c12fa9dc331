import { join } from 'node:path';
import type { DatabaseSync } from 'node:sqlite';
import { openDatabase, transaction, type Migration } from '@shop/service-kit';

/** PaymentStatus is the outcome of a charge at the processor. */
export type PaymentStatus = 'succeeded' | 'declined';

/** Payment is one charge attempt that reached the processor and got an answer. */
export interface Payment {
  paymentId: string;
  orderId: string;
  userId: string;
  amount: number;
  currency: string;
  status: PaymentStatus;
  declineReason: string | null;
  cardLast4: string;
  caller: string;
  createdAt: string;
}

/** Refund is money given back on a succeeded payment. */
export interface Refund {
  refundId: string;
  paymentId: string;
  amount: number;
  reason: string | null;
  caller: string;
  createdAt: string;
}

/** IdempotencyOperation names the endpoint an idempotency key was first used with. */
export type IdempotencyOperation = 'charge' | 'refund';

/** IdempotencyRecord is what is stored under one caller's idempotency key. */
export interface IdempotencyRecord {
  caller: string;
  key: string;
  operation: IdempotencyOperation;
  fingerprint: string;
  orderId: string | null;
  state: 'in_progress' | 'done';
  lockToken: string | null;
  lockedAt: number | null;
  statusCode: number | null;
  response: string | null;
}

// Each step runs once, in order, in its own transaction (service-kit's
// openDatabase keeps the version in SQLite's user_version). Append, never edit.
const MIGRATIONS: readonly Migration[] = [
  (db) => {
    db.exec(`
      CREATE TABLE payments (
        payment_id     TEXT PRIMARY KEY,
        order_id       TEXT NOT NULL,
        user_id        TEXT NOT NULL,
        amount         INTEGER NOT NULL CHECK (amount > 0),
        currency       TEXT NOT NULL,
        status         TEXT NOT NULL CHECK (status IN ('succeeded', 'declined')),
        decline_reason TEXT,
        card_last4     TEXT NOT NULL,
        caller         TEXT NOT NULL,
        created_at     TEXT NOT NULL
      ) STRICT;
      -- The database, not only the code, refuses a second successful charge of an order.
      CREATE UNIQUE INDEX payments_one_success_per_order ON payments (order_id) WHERE status = 'succeeded';
      CREATE INDEX payments_by_order ON payments (order_id);

      CREATE TABLE refunds (
        refund_id  TEXT PRIMARY KEY,
        payment_id TEXT NOT NULL REFERENCES payments (payment_id),
        amount     INTEGER NOT NULL CHECK (amount > 0),
        reason     TEXT,
        caller     TEXT NOT NULL,
        created_at TEXT NOT NULL
      ) STRICT;
      CREATE INDEX refunds_by_payment ON refunds (payment_id);

      CREATE TABLE idempotency_keys (
        caller      TEXT NOT NULL,
        key         TEXT NOT NULL,
        operation   TEXT NOT NULL CHECK (operation IN ('charge', 'refund')),
        fingerprint TEXT NOT NULL,
        order_id    TEXT,
        state       TEXT NOT NULL CHECK (state IN ('in_progress', 'done')),
        lock_token  TEXT,
        locked_at   INTEGER,
        status_code INTEGER,
        response    TEXT,
        created_at  TEXT NOT NULL,
        PRIMARY KEY (caller, key)
      ) STRICT;
      CREATE INDEX idempotency_running_by_order ON idempotency_keys (order_id) WHERE state = 'in_progress';
    `);
  },
];

interface PaymentRow {
  payment_id: string;
  order_id: string;
  user_id: string;
  amount: number;
  currency: string;
  status: PaymentStatus;
  decline_reason: string | null;
  card_last4: string;
  caller: string;
  created_at: string;
}

interface RefundRow {
  refund_id: string;
  payment_id: string;
  amount: number;
  reason: string | null;
  caller: string;
  created_at: string;
}

interface KeyRow {
  caller: string;
  key: string;
  operation: IdempotencyOperation;
  fingerprint: string;
  order_id: string | null;
  state: 'in_progress' | 'done';
  lock_token: string | null;
  locked_at: number | null;
  status_code: number | null;
  response: string | null;
}

/**
 * PaymentStore is the service's ledger in SQLite (WAL) under DATA_DIR:
 * payments, refunds and idempotency keys. Every method is synchronous, so a
 * `transaction()` is never interleaved with another request of this process;
 * other processes queue on SQLite's write lock.
 */
export class PaymentStore {
  readonly #db: DatabaseSync;

  private constructor(db: DatabaseSync) {
    this.#db = db;
  }

  /** open opens (creating and migrating if needed) `payment.db` in `dataDir`. */
  static open(dataDir: string): PaymentStore {
    return new PaymentStore(openDatabase(join(dataDir, 'payment.db'), MIGRATIONS));
  }

  /** isOpen is true until close(). */
  get isOpen(): boolean {
    return this.#db.isOpen;
  }

  /** close closes the database; idempotent. */
  close(): void {
    if (this.#db.isOpen) this.#db.close();
  }

  /** transaction runs `fn` atomically: all of its writes or none. */
  transaction<T>(fn: () => T): T {
    return transaction(this.#db, fn);
  }

  /** insertPayment records a charge attempt's outcome. */
  insertPayment(p: Payment): void {
    this.#db
      .prepare(
        `INSERT INTO payments (payment_id, order_id, user_id, amount, currency, status, decline_reason, card_last4, caller, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(
        p.paymentId,
        p.orderId,
        p.userId,
        p.amount,
        p.currency,
        p.status,
        p.declineReason,
        p.cardLast4,
        p.caller,
        p.createdAt,
      );
  }

  /** getPayment returns the payment with `paymentId`, if any. */
  getPayment(paymentId: string): Payment | undefined {
    const row = this.#db.prepare('SELECT * FROM payments WHERE payment_id = ?').get(paymentId) as
      PaymentRow | undefined;
    return row && toPayment(row);
  }

  /** succeededPaymentOf returns the successful payment of an order, if any (there is at most one). */
  succeededPaymentOf(orderId: string): Payment | undefined {
    const row = this.#db.prepare("SELECT * FROM payments WHERE order_id = ? AND status = 'succeeded'").get(orderId) as
      PaymentRow | undefined;
    return row && toPayment(row);
  }

  /** latestPaymentOf returns the most recent charge attempt of an order, if any. */
  latestPaymentOf(orderId: string): Payment | undefined {
    const row = this.#db
      .prepare('SELECT * FROM payments WHERE order_id = ? ORDER BY rowid DESC LIMIT 1')
      .get(orderId) as PaymentRow | undefined;
    return row && toPayment(row);
  }

  /** countPayments returns how many charge attempts are recorded (for tests and diagnostics). */
  countPayments(): number {
    return (this.#db.prepare('SELECT count(*) AS n FROM payments').get() as { n: number }).n;
  }

  /** insertRefund records a refund. */
  insertRefund(r: Refund): void {
    this.#db
      .prepare(
        'INSERT INTO refunds (refund_id, payment_id, amount, reason, caller, created_at) VALUES (?, ?, ?, ?, ?, ?)',
      )
      .run(r.refundId, r.paymentId, r.amount, r.reason, r.caller, r.createdAt);
  }

  /** refundsOf returns a payment's refunds, oldest first. */
  refundsOf(paymentId: string): Refund[] {
    const rows = this.#db
      .prepare('SELECT * FROM refunds WHERE payment_id = ? ORDER BY rowid')
      .all(paymentId) as unknown as RefundRow[];
    return rows.map((r) => ({
      refundId: r.refund_id,
      paymentId: r.payment_id,
      amount: r.amount,
      reason: r.reason,
      caller: r.caller,
      createdAt: r.created_at,
    }));
  }

  /** refundedAmount returns the sum of a payment's refunds. */
  refundedAmount(paymentId: string): number {
    const row = this.#db
      .prepare('SELECT coalesce(sum(amount), 0) AS total FROM refunds WHERE payment_id = ?')
      .get(paymentId) as {
      total: number;
    };
    return row.total;
  }

  /** getKey returns what is stored under `caller`'s idempotency `key`, if anything. */
  getKey(caller: string, key: string): IdempotencyRecord | undefined {
    const row = this.#db.prepare('SELECT * FROM idempotency_keys WHERE caller = ? AND key = ?').get(caller, key) as
      KeyRow | undefined;
    return row && toRecord(row);
  }

  /** insertKey stores a new in-progress idempotency record. */
  insertKey(r: IdempotencyRecord, createdAt: string): void {
    this.#db
      .prepare(
        `INSERT INTO idempotency_keys (caller, key, operation, fingerprint, order_id, state, lock_token, locked_at, status_code, response, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(
        r.caller,
        r.key,
        r.operation,
        r.fingerprint,
        r.orderId,
        r.state,
        r.lockToken,
        r.lockedAt,
        r.statusCode,
        r.response,
        createdAt,
      );
  }

  /** relockKey hands an abandoned in-progress record to a new request; false if it is no longer the same lock. */
  relockKey(caller: string, key: string, oldToken: string | null, newToken: string, lockedAt: number): boolean {
    const res = this.#db
      .prepare(
        "UPDATE idempotency_keys SET lock_token = ?, locked_at = ? WHERE caller = ? AND key = ? AND state = 'in_progress' AND lock_token IS ?",
      )
      .run(newToken, lockedAt, caller, key, oldToken);
    return Number(res.changes) === 1;
  }

  /** completeKey stores the final answer under a key still held with `token`; false if the lock was lost. */
  completeKey(caller: string, key: string, token: string, statusCode: number, response: string): boolean {
    const res = this.#db
      .prepare(
        `UPDATE idempotency_keys SET state = 'done', status_code = ?, response = ?, lock_token = NULL, locked_at = NULL
         WHERE caller = ? AND key = ? AND state = 'in_progress' AND lock_token = ?`,
      )
      .run(statusCode, response, caller, key, token);
    return Number(res.changes) === 1;
  }

  /** deleteKey removes an in-progress record still held with `token` (the request ended without a stored answer). */
  deleteKey(caller: string, key: string, token: string): void {
    this.#db
      .prepare("DELETE FROM idempotency_keys WHERE caller = ? AND key = ? AND state = 'in_progress' AND lock_token = ?")
      .run(caller, key, token);
  }

  /** chargeRunningFor says whether a charge of `orderId` holds an in-progress key locked at or after `since` (ms). */
  chargeRunningFor(orderId: string, since: number): boolean {
    const row = this.#db
      .prepare(
        "SELECT 1 AS one FROM idempotency_keys WHERE order_id = ? AND state = 'in_progress' AND operation = 'charge' AND locked_at >= ? LIMIT 1",
      )
      .get(orderId, since);
    return row !== undefined;
  }
}

function toPayment(r: PaymentRow): Payment {
  return {
    paymentId: r.payment_id,
    orderId: r.order_id,
    userId: r.user_id,
    amount: r.amount,
    currency: r.currency,
    status: r.status,
    declineReason: r.decline_reason,
    cardLast4: r.card_last4,
    caller: r.caller,
    createdAt: r.created_at,
  };
}

function toRecord(r: KeyRow): IdempotencyRecord {
  return {
    caller: r.caller,
    key: r.key,
    operation: r.operation,
    fingerprint: r.fingerprint,
    orderId: r.order_id,
    state: r.state,
    lockToken: r.lock_token,
    lockedAt: r.locked_at,
    statusCode: r.status_code,
    response: r.response,
  };
}
