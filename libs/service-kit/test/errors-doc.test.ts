// Docs and code agree on service-kit's codes: the `@shop/service-kit`
// section of docs/errors.md has exactly one anchored row per code.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
import { DATABASE_UNAVAILABLE, DatabaseStartError } from '../src/db/database.ts';
import { CONFIG_ERROR_CODES, IdentityWaitError } from '../src/errors.ts';

const ERRORS_MD = new URL('../../../docs/errors.md', import.meta.url);

const CODES = [
  ...CONFIG_ERROR_CODES,
  new IdentityWaitError('m', 'r').code,
  new DatabaseStartError('m').code,
  DATABASE_UNAVAILABLE,
];

test('docs/errors.md documents every code of service-kit once, in its section, and no other there', async () => {
  const text = await readFile(ERRORS_MD, 'utf8');
  const start = text.indexOf('# Error codes of `@shop/service-kit`');
  assert.ok(start > 0, 'the section exists');
  const rows = [...text.slice(start).matchAll(/^\|\s*<a id="([^"]+)"><\/a>`([A-Z0-9_]+)`\s*\|/gm)].map((m) => ({
    anchor: m[1],
    code: m[2],
  }));
  assert.ok(rows.length > 0, 'positive control of the row parser');
  assert.deepEqual(rows.map((r) => r.code).sort(), [...CODES].sort());
  for (const r of rows) assert.equal(r.anchor, r.code?.toLowerCase());
});
