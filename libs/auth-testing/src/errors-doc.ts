// Checks that an errors page (docs/errors.md) and a table of error codes
// agree, for the doc tests of @shop/auth and of the spiffe-auth CLI (after
// fastify's test/internals/errors.test.js).
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';

/** ErrorDocRow is one table row of an errors page that documents a code: its anchor, its code and its line number. */
export interface ErrorDocRow {
  anchor: string;
  code: string;
  line: number;
}

/** ErrorsDoc is an errors page as read: its whole text and the rows that document a code. */
export interface ErrorsDoc {
  markdown: string;
  rows: ErrorDocRow[];
}

/** readErrorsDoc reads the errors page at `page` and returns it with every row that documents a code: `| <a id="x"></a>`CODE` | ...`. */
export async function readErrorsDoc(page: URL): Promise<ErrorsDoc> {
  const markdown = await readFile(page, 'utf8');
  const rows: ErrorDocRow[] = [];
  markdown.split('\n').forEach((text, i) => {
    const m = /^\|\s*<a id="([^"]+)"><\/a>\s*`([A-Z0-9_]+)`\s*\|/.exec(text);
    if (m) rows.push({ anchor: m[1] ?? '', code: m[2] ?? '', line: i + 1 });
  });
  return { markdown, rows };
}

/** assertEveryCodeDocumented asserts that each of `codes` has a row whose anchor is the code in lower case. */
export function assertEveryCodeDocumented(rows: readonly ErrorDocRow[], codes: readonly string[]): void {
  const byCode = new Map(rows.map((r) => [r.code, r]));
  const undocumented = codes.filter((code) => !byCode.has(code));
  assert.deepEqual(undocumented, [], `codes missing from docs/errors.md: ${undocumented.join(', ')}`);
  for (const code of codes) {
    assert.equal(byCode.get(code)?.anchor, code.toLowerCase(), `anchor of ${code}`);
  }
}

/** assertRowsKnown asserts that every code documented in a row is one `isKnown` accepts. */
export function assertRowsKnown(rows: readonly ErrorDocRow[], isKnown: (code: string) => boolean): void {
  const unknown = rows.filter((r) => !isKnown(r.code)).map((r) => `${r.code} (line ${r.line})`);
  assert.deepEqual(unknown, [], `docs/errors.md documents codes errors.ts does not have: ${unknown.join(', ')}`);
}

/** assertMentionsKnown asserts that every `AUTH_ERR_*` mentioned anywhere on the page, not only in rows, is one `isKnown` accepts. */
export function assertMentionsKnown(markdown: string, isKnown: (code: string) => boolean): void {
  const mentioned = new Set(markdown.match(/\bAUTH_ERR_[A-Z0-9_]+\b/g) ?? []);
  const stray = [...mentioned].filter((code) => !isKnown(code));
  assert.deepEqual(stray, [], `docs/errors.md mentions unknown codes: ${stray.join(', ')}`);
}

/** assertDocumentedOnce asserts that no code has two rows and that no two rows share an anchor. */
export function assertDocumentedOnce(rows: readonly ErrorDocRow[]): void {
  const seen = new Map<string, number>();
  for (const r of rows) seen.set(r.code, (seen.get(r.code) ?? 0) + 1);
  assert.deepEqual(
    [...seen].filter(([, n]) => n > 1).map(([code]) => code),
    [],
  );
  assert.equal(new Set(rows.map((r) => r.anchor)).size, rows.length);
}
