// Docs and code agree on the error codes, as fastify's
// test/internals/errors.test.js checks for docs/Reference/Errors.md.
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import {
  assertDocumentedOnce,
  assertEveryCodeDocumented,
  assertMentionsKnown,
  assertRowsKnown,
  readErrorsDoc,
  type ErrorsDoc,
} from '@shop/auth-testing';
import { AuthError, errorHints, type AuthErrorCode } from '../src/errors.ts';

const ERRORS_MD = new URL('../../../docs/errors.md', import.meta.url);

describe('docs/errors.md and errorHints agree', () => {
  let doc: ErrorsDoc;
  before(async () => {
    // The page also has service-kit's section (its own test): only the auth rows here.
    const all = await readErrorsDoc(ERRORS_MD);
    doc = { ...all, rows: all.rows.filter((r) => r.code.startsWith('AUTH_ERR_')) };
  });

  test('the page has rows (positive control of the row parser)', () => {
    assert.ok(doc.rows.length > 0);
    assert.ok(doc.rows.some((r) => r.code === 'AUTH_ERR_TRUST_DOMAIN_INVALID'));
  });

  test('every code in errorHints has a row with anchor <a id="<lower-case code>">', () => {
    assertEveryCodeDocumented(doc.rows, Object.keys(errorHints));
  });

  test('every code documented exists in errorHints', () => {
    const isKnown = (code: string): boolean => code in errorHints;
    assertRowsKnown(doc.rows, isKnown);
    assertMentionsKnown(doc.markdown, isKnown);
  });

  test('each code is documented once, and anchors are unique', () => {
    assertDocumentedOnce(doc.rows);
  });

  test('every code has a non-empty hint that AuthError carries', () => {
    for (const code of Object.keys(errorHints) as AuthErrorCode[]) {
      assert.ok(errorHints[code].length > 10, `hint of ${code}`);
      assert.equal(new AuthError(code, 'm').hint, errorHints[code]);
      assert.match(code, /^AUTH_ERR_[A-Z0-9_]+$/);
    }
  });
});
