// Docs and code agree on the CLI's own error codes, as libs/auth's
// errors-doc test does for the library (after fastify's
// test/internals/errors.test.js).
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { before, describe, test } from 'node:test';
import { errorHints } from '@shop/auth';
import { CliError, cliErrorHints, hintOf, type CliErrorCode } from '../src/errors.ts';

const ERRORS_MD = new URL('../docs/errors.md', import.meta.url);

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

describe('tools/spiffe-auth/docs/errors.md and cliErrorHints agree', () => {
  let markdown: string;
  let rows: Row[];
  before(async () => {
    markdown = await readFile(ERRORS_MD, 'utf8');
    rows = rowsOf(markdown);
  });

  test('the page has rows (positive control of the row parser)', () => {
    assert.ok(rows.length > 0);
    assert.ok(rows.some((r) => r.code === 'AUTH_ERR_CLI_USAGE'));
  });

  test('every code in cliErrorHints has a row with anchor <a id="<lower-case code>">', () => {
    const byCode = new Map(rows.map((r) => [r.code, r]));
    const undocumented = Object.keys(cliErrorHints).filter((code) => !byCode.has(code));
    assert.deepEqual(undocumented, [], `codes missing from docs/errors.md: ${undocumented.join(', ')}`);
    for (const code of Object.keys(cliErrorHints)) {
      assert.equal(byCode.get(code)?.anchor, code.toLowerCase(), `anchor of ${code}`);
    }
  });

  test('every code documented in a row exists in cliErrorHints; every code mentioned exists in the CLI or the library', () => {
    const unknown = rows.filter((r) => !(r.code in cliErrorHints)).map((r) => `${r.code} (line ${r.line})`);
    assert.deepEqual(unknown, [], `docs/errors.md documents codes errors.ts does not have: ${unknown.join(', ')}`);
    const mentioned = new Set(markdown.match(/\bAUTH_ERR_[A-Z0-9_]+\b/g) ?? []);
    const stray = [...mentioned].filter((code) => !(code in cliErrorHints) && !(code in errorHints));
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

  test('every code has a non-empty hint that CliError carries; no code is also a library code', () => {
    for (const code of Object.keys(cliErrorHints) as CliErrorCode[]) {
      assert.ok(cliErrorHints[code].length > 10, `hint of ${code}`);
      assert.equal(new CliError(code, 'm').hint, cliErrorHints[code]);
      assert.equal(hintOf(code), cliErrorHints[code]);
      assert.match(code, /^AUTH_ERR_CLI_[A-Z0-9_]+$/);
      assert.ok(!(code in errorHints), `${code} is also a code of @shop/auth`);
    }
    // The library's codes keep their own hints when the CLI reports them.
    assert.equal(hintOf('AUTH_ERR_FILE_UNREADABLE'), errorHints.AUTH_ERR_FILE_UNREADABLE);
  });
});
