// Docs and code agree on the error codes: every code of CONSOLE_ERRORS has a
// README row with its HTTP status, and the README documents no other code.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { readErrorTable } from '@shop/service-kit/testing';
import { CONSOLE_ERRORS } from '../src/errors.ts';

test('README.md#error-codes documents every code of CONSOLE_ERRORS with its status, and no other', async () => {
  const rows = await readErrorTable(new URL('../README.md', import.meta.url));
  assert.equal(rows.get('CONSOLE_OTLP_UNSUPPORTED')?.http, '415', 'positive control of the row parser');
  for (const [code, spec] of Object.entries(CONSOLE_ERRORS))
    assert.deepEqual(rows.get(code), { http: String(spec.http), grpc: '—' }, code);
  for (const code of rows.keys()) assert.ok(code in CONSOLE_ERRORS, `${code} is documented but never answered`);
});
