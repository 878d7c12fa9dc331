// Docs and code agree on the error codes, as fastify's
// test/internals/errors.test.js checks for docs/Reference/Errors.md.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { before, describe, test } from 'node:test';
import { AuthError, errorHints, type AuthErrorCode } from '../src/errors.ts';

const ERRORS_MD = new URL('../../../docs/errors.md', import.meta.url);

interface Row {
  anchor: string;
  code: string;
  line: number;
}

/** rowsOf returns every table row of docs/errors.md that documents a code: `| <a id="x"></a>`CODE` | ...`. */
function rowsOf(markdown: string): Row[] {
  const rows: Row[] = [];
  markdown.split('\n').forEach((text, i) => {
    const m = /^\|\s*<a id="([^"]+)"><\/a>\s*`([A-Z0-9_]+)`\s*\|/.exec(text);
    if (m) rows.push({ anchor: m[1] ?? '', code: m[2] ?? '', line: i + 1 });
  });
  return rows;
}

describe('docs/errors.md and errorHints agree', () => {
  let markdown: string;
  let rows: Row[];
  before(async () => {
    markdown = await readFile(ERRORS_MD, 'utf8');
    rows = rowsOf(markdown);
  });

  test('the page has rows (positive control of the row parser)', () => {
    assert.ok(rows.length > 0);
    assert.ok(rows.some((r) => r.code === 'AUTH_ERR_TRUST_DOMAIN_INVALID'));
  });

  test('every code in errorHints has a row with anchor <a id="<lower-case code>">', () => {
    const byCode = new Map(rows.map((r) => [r.code, r]));
    const undocumented = Object.keys(errorHints).filter((code) => !byCode.has(code));
    assert.deepEqual(undocumented, [], `codes missing from docs/errors.md: ${undocumented.join(', ')}`);
    for (const code of Object.keys(errorHints)) {
      assert.equal(byCode.get(code)?.anchor, code.toLowerCase(), `anchor of ${code}`);
    }
  });

  test('every code documented exists in errorHints', () => {
    const unknown = rows.filter((r) => !(r.code in errorHints)).map((r) => `${r.code} (line ${r.line})`);
    assert.deepEqual(unknown, [], `docs/errors.md documents codes errors.ts does not have: ${unknown.join(', ')}`);
    // Every `AUTH_ERR_*` mentioned anywhere on the page, not only in rows, must exist too.
    const mentioned = new Set(markdown.match(/\bAUTH_ERR_[A-Z0-9_]+\b/g) ?? []);
    const stray = [...mentioned].filter((code) => !(code in errorHints));
    assert.deepEqual(stray, [], `docs/errors.md mentions unknown codes: ${stray.join(', ')}`);
  });

  test('each code is documented once, and anchors are unique', () => {
    const seen = new Map<string, number>();
    for (const r of rows) seen.set(r.code, (seen.get(r.code) ?? 0) + 1);
    assert.deepEqual(
      [...seen].filter(([, n]) => n > 1).map(([code]) => code),
      [],
    );
    assert.equal(new Set(rows.map((r) => r.anchor)).size, rows.length);
  });

  test('every code has a non-empty hint that AuthError carries', () => {
    for (const code of Object.keys(errorHints) as AuthErrorCode[]) {
      assert.ok(errorHints[code].length > 10, `hint of ${code}`);
      assert.equal(new AuthError(code, 'm').hint, errorHints[code]);
      assert.match(code, /^AUTH_ERR_[A-Z0-9_]+$/);
    }
  });
});
