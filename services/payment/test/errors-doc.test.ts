// Docs and code agree on the error codes: every code of PAYMENT_ERRORS has a
// README row with the same HTTP and gRPC status, the README documents no code
// the service does not answer with, and service-kit's HTTP-layer codes are
// listed with their status. The same test is in every service.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HTTP_PROTOCOL_ERRORS } from '@shop/service-kit';
import { PASSTHROUGH_CODE, readErrorTable } from '@shop/service-kit/testing';
import { PAYMENT_ERRORS } from '../src/errors.ts';

const README = new URL('../README.md', import.meta.url);

test('README.md#error-codes documents every code in PAYMENT_ERRORS with its statuses, and no other service code', async () => {
  const rows = await readErrorTable(README);
  assert.deepEqual(rows.get('INVALID_REQUEST')?.http, '400', 'positive control of the row parser');
  for (const [code, spec] of Object.entries(PAYMENT_ERRORS)) {
    assert.deepEqual(rows.get(code), { http: String(spec.http), grpc: spec.grpc }, code);
  }
  for (const code of rows.keys()) {
    const known = code in PAYMENT_ERRORS || code in HTTP_PROTOCOL_ERRORS || PASSTHROUGH_CODE.test(code);
    assert.ok(known, `${code} is documented but never answered`);
  }
});

test('README.md#error-codes lists every HTTP-layer code of service-kit with its HTTP status and no gRPC one', async () => {
  const rows = await readErrorTable(README);
  for (const [code, status] of Object.entries(HTTP_PROTOCOL_ERRORS)) {
    assert.deepEqual(rows.get(code), { http: String(status), grpc: '—' }, code);
  }
});
