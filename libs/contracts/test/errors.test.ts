// The error tables of all services, side by side: every gRPC status is a real
// one, and a code two services share means the same HTTP status in both
// unless SHARED_CODE_EXCEPTIONS says why not.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import * as grpc from '@grpc/grpc-js';
import {
  INVENTORY_ERRORS,
  ORDER_ERRORS,
  PAYMENT_ERRORS,
  SHARED_CODE_EXCEPTIONS,
  type ErrorTable,
} from '../src/index.ts';

const TABLES: Record<string, ErrorTable> = {
  inventory: INVENTORY_ERRORS,
  order: ORDER_ERRORS,
  payment: PAYMENT_ERRORS,
};

test('every row names a gRPC status grpc-js knows, an HTTP error status and a meaning', () => {
  assert.equal(grpc.status[INVENTORY_ERRORS.UNKNOWN_PRODUCT.grpc], grpc.status.NOT_FOUND, 'positive control');
  for (const [service, table] of Object.entries(TABLES)) {
    for (const [code, spec] of Object.entries(table)) {
      assert.equal(typeof grpc.status[spec.grpc], 'number', `${service} ${code}`);
      assert.ok(spec.http >= 400 && spec.http < 600, `${service} ${code}`);
      assert.match(code, /^[A-Z][A-Z0-9_]*$/, `${service} ${code}`);
      assert.ok(spec.meaning.length > 0, `${service} ${code}`);
    }
  }
});

test('a code shared by two services has one HTTP status, unless SHARED_CODE_EXCEPTIONS documents why not', () => {
  const statuses = new Map<string, Map<number, string[]>>();
  for (const [service, table] of Object.entries(TABLES)) {
    for (const [code, spec] of Object.entries(table)) {
      const byStatus = statuses.get(code) ?? new Map<number, string[]>();
      byStatus.set(spec.http, [...(byStatus.get(spec.http) ?? []), service]);
      statuses.set(code, byStatus);
    }
  }
  // Positive control: IDEMPOTENCY_KEY_REUSED is shared by order and payment with one status.
  assert.deepEqual([...(statuses.get('IDEMPOTENCY_KEY_REUSED') ?? new Map()).entries()], [[422, ['order', 'payment']]]);
  const differing = [...statuses].filter(([, byStatus]) => byStatus.size > 1).map(([code]) => code);
  assert.deepEqual(differing.sort(), Object.keys(SHARED_CODE_EXCEPTIONS).sort());
});

test('the package depends on no server framework and no database', async () => {
  const pkg = JSON.parse(await readFile(new URL('../package.json', import.meta.url), 'utf8')) as {
    dependencies?: Record<string, string>;
  };
  const deps = Object.keys(pkg.dependencies ?? {});
  assert.ok(deps.includes('@grpc/grpc-js'), 'positive control: the gRPC client needs grpc-js');
  assert.deepEqual(
    deps.filter((d) => !['@grpc/grpc-js', '@grpc/proto-loader'].includes(d)),
    [],
  );
});
