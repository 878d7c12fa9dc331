// Docs and code agree on the error codes: every code the service answers
// with has a README row with the same HTTP and gRPC status, and back.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { HTTP_PROTOCOL_ERRORS } from '@shop/service-kit';
import { INVENTORY_ERRORS } from '../src/errors.ts';

test('README.md#error-codes documents every code in INVENTORY_ERRORS with its statuses, and no other service code', async () => {
  const readme = await readFile(new URL('../README.md', import.meta.url), 'utf8');
  const section = readme.slice(readme.indexOf('## Error codes'));
  const rows = new Map<string, { http: string; grpc: string }>();
  for (const m of section.matchAll(/^\| `([A-Z_]+)` +\| (\d+) +\| `([A-Z_]+)` +\|/gm))
    rows.set(m[1]!, { http: m[2]!, grpc: m[3]! });
  assert.ok(rows.size > 0, 'the table was found');

  for (const [code, status] of Object.entries(INVENTORY_ERRORS)) {
    assert.deepEqual(rows.get(code), { http: String(status.http), grpc: status.grpc }, code);
  }
  const generic = new Set(['NOT_FOUND', 'INTERNAL']);
  for (const code of rows.keys()) {
    assert.ok(code in INVENTORY_ERRORS || generic.has(code), `${code} is documented but never answered`);
  }
});

test('README.md#error-codes lists every HTTP-layer code of service-kit with its HTTP status and no gRPC one', async () => {
  const readme = await readFile(new URL('../README.md', import.meta.url), 'utf8');
  const section = readme.slice(readme.indexOf('## Error codes'));
  const rows = new Map<string, { http: string; grpc: string }>();
  for (const m of section.matchAll(/^\| `([A-Z_]+)` +\| ([^|]+?) +\| ([^|]+?) +\|/gm))
    rows.set(m[1]!, { http: m[2]!, grpc: m[3]! });
  assert.deepEqual(
    rows.get('INVALID_REQUEST'),
    { http: '400', grpc: '`INVALID_ARGUMENT`' },
    'positive control of the row parser',
  );
  for (const [code, status] of Object.entries(HTTP_PROTOCOL_ERRORS)) {
    assert.deepEqual(rows.get(code), { http: String(status), grpc: '—' }, code);
  }
});
