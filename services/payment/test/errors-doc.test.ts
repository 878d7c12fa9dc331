import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { HTTP_PROTOCOL_ERRORS } from '@shop/service-kit';
import { PAYMENT_ERROR_CODES } from '../src/errors.ts';

// Codes the service passes through from service-kit, fastify and @shop/auth.
const OTHERS = new Set([
  'INVALID_REQUEST',
  'NOT_FOUND',
  'INTERNAL',
  'AUTH_ERR_*',
  ...Object.keys(HTTP_PROTOCOL_ERRORS),
]);

test('the README documents every error code of the service, and no code it does not have', async () => {
  const readme = await readFile(join(import.meta.dirname, '..', 'README.md'), 'utf8');
  const section = readme.split('## Error codes')[1]?.split('\n## ')[0] ?? '';
  const documented = [...section.matchAll(/^\| `([A-Z_*]+)`/gm)].map((m) => m[1]!);
  assert.ok(documented.length > 0, 'no error table found');
  for (const code of PAYMENT_ERROR_CODES) assert.ok(documented.includes(code), `${code} is not in the README`);
  for (const code of documented) {
    const known =
      (PAYMENT_ERROR_CODES as readonly string[]).includes(code) || OTHERS.has(code) || code.startsWith('FST_ERR_');
    assert.ok(known, `README documents ${code}, which the service does not answer with`);
  }
});

test('the README lists every HTTP-layer code of service-kit with the status it is answered with', async () => {
  const readme = await readFile(join(import.meta.dirname, '..', 'README.md'), 'utf8');
  const section = readme.split('## Error codes')[1]?.split('\n## ')[0] ?? '';
  const statuses = new Map([...section.matchAll(/^\| `([A-Z_*]+)` +\| ([^|]+?) +\|/gm)].map((m) => [m[1]!, m[2]!]));
  assert.equal(statuses.get('INVALID_REQUEST'), '400', 'positive control of the row parser');
  for (const [code, status] of Object.entries(HTTP_PROTOCOL_ERRORS))
    assert.equal(statuses.get(code), String(status), code);
});
