import { join } from 'node:path';
import {
  openDatabase,
  type Database,
  type DatabaseConfig,
  type DatabaseHealth,
  type Migration,
  type OpenDatabaseOptions,
} from '@shop/service-kit';

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

// Each step runs once, in order, in its own transaction, on SQLite or
// PostgreSQL (service-kit's database.ts says how one text serves both).
// Append, never edit.
const MIGRATIONS: readonly Migration[] = [
  `
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
  `,
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
 * PaymentStore is the service's ledger: payments, refunds and idempotency
 * keys, in SQLite under DATA_DIR or in PostgreSQL (DATABASE_URL). Every
 * rule that must hold across replicas is held by the database: one
 * successful payment per order (a unique index), one request per key (its
 * primary key, claimed with INSERT … ON CONFLICT DO NOTHING) and one refund
 * at a time per payment (`lockPayment`, a row lock).
 */
export class PaymentStore {
  readonly #db: Database;

  private constructor(db: Database) {
    this.#db = db;
  }

  /** open opens (creating and migrating if needed) the ledger `config` names. */
  static async open(config: DatabaseConfig, options: OpenDatabaseOptions = {}): Promise<PaymentStore> {
    return new PaymentStore(await openDatabase(config, MIGRATIONS, options));
  }

  /** sqliteConfig is the default database of `dataDir`: `payment.db` in it. */
  static sqliteConfig(dataDir: string): DatabaseConfig {
    return { engine: 'sqlite', file: join(dataDir, 'payment.db') };
  }

  /** isOpen is true until close(). */
  get isOpen(): boolean {
    return this.#db.isOpen;
  }

  /** health is the database's readiness (the `store` check of /health/ready). */
  health(): DatabaseHealth {
    return this.#db.health();
  }

  /** close closes the database; idempotent. */
  close(): Promise<void> {
    return this.#db.close();
  }

  /** transaction runs `fn` atomically: all of its writes or none. */
  transaction<T>(fn: () => Promise<T>): Promise<T> {
    return this.#db.transaction(fn);
  }

  /** insertPayment records a charge attempt's outcome. */
  async insertPayment(p: Payment): Promise<void> {
    await this.#db.run(
      `INSERT INTO payments (payment_id, order_id, user_id, amount, currency, status, decline_reason, card_last4, caller, created_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
      [
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
      ],
    );
  }

  /** getPayment returns the payment with `paymentId`, if any. */
  async getPayment(paymentId: string): Promise<Payment | undefined> {
    const row = await this.#db.get<PaymentRow>('SELECT * FROM payments WHERE payment_id = $1', [paymentId]);
    return row && toPayment(row);
  }

  /**
   * lockPayment holds the payment's row until the transaction ends (a no-op
   * update takes PostgreSQL's row lock; SQLite's write lock is already
   * held), so two refunds of one payment on two replicas run one after the other.
   */
  async lockPayment(paymentId: string): Promise<void> {
    await this.#db.run('UPDATE payments SET payment_id = payment_id WHERE payment_id = $1', [paymentId]);
  }

  /** succeededPaymentOf returns the successful payment of an order, if any (there is at most one). */
  async succeededPaymentOf(orderId: string): Promise<Payment | undefined> {
    const row = await this.#db.get<PaymentRow>("SELECT * FROM payments WHERE order_id = $1 AND status = 'succeeded'", [
      orderId,
    ]);
    return row && toPayment(row);
  }

  /** latestPaymentOf returns the most recent charge attempt of an order, if any. */
  async latestPaymentOf(orderId: string): Promise<Payment | undefined> {
    const row = await this.#db.get<PaymentRow>(
      'SELECT * FROM payments WHERE order_id = $1 ORDER BY rowid DESC LIMIT 1',
      [orderId],
    );
    return row && toPayment(row);
  }

  /** countPayments returns how many charge attempts are recorded (for tests and diagnostics). */
  async countPayments(): Promise<number> {
    const row = await this.#db.get<{ n: number }>('SELECT count(*) AS n FROM payments');
    return row?.n ?? 0;
  }

  /** insertRefund records a refund. */
  async insertRefund(r: Refund): Promise<void> {
    await this.#db.run(
      'INSERT INTO refunds (refund_id, payment_id, amount, reason, caller, created_at) VALUES ($1, $2, $3, $4, $5, $6)',
      [r.refundId, r.paymentId, r.amount, r.reason, r.caller, r.createdAt],
    );
  }

  /** refundsOf returns a payment's refunds, oldest first. */
  async refundsOf(paymentId: string): Promise<Refund[]> {
    const rows = await this.#db.all<RefundRow>('SELECT * FROM refunds WHERE payment_id = $1 ORDER BY rowid', [
      paymentId,
    ]);
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
  async refundedAmount(paymentId: string): Promise<number> {
    const row = await this.#db.get<{ total: number }>(
      'SELECT coalesce(sum(amount), 0) AS total FROM refunds WHERE payment_id = $1',
      [paymentId],
    );
    return row?.total ?? 0;
  }

  /** getKey returns what is stored under `caller`'s idempotency `key`, if anything. */
  async getKey(caller: string, key: string): Promise<IdempotencyRecord | undefined> {
    const row = await this.#db.get<KeyRow>('SELECT * FROM idempotency_keys WHERE caller = $1 AND key = $2', [
      caller,
      key,
    ]);
    return row && toRecord(row);
  }

  /**
   * insertKey stores a new in-progress idempotency record; false when the
   * key is already there. ON CONFLICT DO NOTHING makes a racing replica
   * wait for the first one's transaction and then see its row, instead of
   * failing on the primary key.
   */
  async insertKey(r: IdempotencyRecord, createdAt: string): Promise<boolean> {
    const changed = await this.#db.run(
      `INSERT INTO idempotency_keys (caller, key, operation, fingerprint, order_id, state, lock_token, locked_at, status_code, response, created_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
       ON CONFLICT (caller, key) DO NOTHING`,
      [
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
      ],
    );
    return changed === 1;
  }

  /** relockKey hands an abandoned in-progress record to a new request; false if it is no longer the same lock. */
  async relockKey(
    caller: string,
    key: string,
    oldToken: string | null,
    newToken: string,
    lockedAt: number,
  ): Promise<boolean> {
    const changed = await this.#db.run(
      `UPDATE idempotency_keys SET lock_token = $1, locked_at = $2
       WHERE caller = $3 AND key = $4 AND state = 'in_progress' AND lock_token IS NOT DISTINCT FROM $5`,
      [newToken, lockedAt, caller, key, oldToken],
    );
    return changed === 1;
  }

  /** completeKey stores the final answer under a key still held with `token`; false if the lock was lost. */
  async completeKey(
    caller: string,
    key: string,
    token: string,
    statusCode: number,
    response: string,
  ): Promise<boolean> {
    const changed = await this.#db.run(
      `UPDATE idempotency_keys SET state = 'done', status_code = $1, response = $2, lock_token = NULL, locked_at = NULL
       WHERE caller = $3 AND key = $4 AND state = 'in_progress' AND lock_token = $5`,
      [statusCode, response, caller, key, token],
    );
    return changed === 1;
  }

  /** deleteKey removes an in-progress record still held with `token` (the request ended without a stored answer). */
  async deleteKey(caller: string, key: string, token: string): Promise<void> {
    await this.#db.run(
      "DELETE FROM idempotency_keys WHERE caller = $1 AND key = $2 AND state = 'in_progress' AND lock_token = $3",
      [caller, key, token],
    );
  }

  /** chargeRunningFor says whether a charge of `orderId` holds an in-progress key locked at or after `since` (ms). */
  async chargeRunningFor(orderId: string, since: number): Promise<boolean> {
    const row = await this.#db.get(
      "SELECT 1 AS one FROM idempotency_keys WHERE order_id = $1 AND state = 'in_progress' AND operation = 'charge' AND locked_at >= $2 LIMIT 1",
      [orderId, since],
    );
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
