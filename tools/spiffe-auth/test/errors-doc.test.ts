// Docs and code agree on the CLI's own error codes, as libs/auth's
// errors-doc test does for the library (after fastify's
// test/internals/errors.test.js).
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { errorHints } from '@shop/auth';
import {
  assertDocumentedOnce,
  assertEveryCodeDocumented,
  assertMentionsKnown,
  assertRowsKnown,
  readErrorsDoc,
  type ErrorsDoc,
} from '@shop/auth-testing';
import { CliError, cliErrorHints, hintOf, type CliErrorCode } from '../src/errors.ts';

const ERRORS_MD = new URL('../docs/errors.md', import.meta.url);

describe('tools/spiffe-auth/docs/errors.md and cliErrorHints agree', () => {
  let doc: ErrorsDoc;
  before(async () => {
    doc = await readErrorsDoc(ERRORS_MD);
  });

  test('the page has rows (positive control of the row parser)', () => {
    assert.ok(doc.rows.length > 0);
    assert.ok(doc.rows.some((r) => r.code === 'AUTH_ERR_CLI_USAGE'));
  });

  test('every code in cliErrorHints has a row with anchor <a id="<lower-case code>">', () => {
    assertEveryCodeDocumented(doc.rows, Object.keys(cliErrorHints));
  });

  test('every code documented in a row exists in cliErrorHints; every code mentioned exists in the CLI or the library', () => {
    assertRowsKnown(doc.rows, (code) => code in cliErrorHints);
    assertMentionsKnown(doc.markdown, (code) => code in cliErrorHints || code in errorHints);
  });

  test('each code is documented once, and anchors are unique', () => {
    assertDocumentedOnce(doc.rows);
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
