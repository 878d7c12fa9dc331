// The few rewrites that let one SQL text serve both engines (database.ts says why each exists).

/**
 * mapOutsideLiterals applies `fn` to the parts of `sql` outside string
 * literals ('…', with '' escapes), so a `$1` or a type name inside a quoted
 * value is never touched.
 */
function mapOutsideLiterals(sql: string, fn: (code: string) => string): string {
  return sql
    .split(/('(?:[^']|'')*')/)
    .map((part, i) => (i % 2 === 1 ? part : fn(part)))
    .join('');
}

/** toSqlitePlaceholders rewrites `$1, $2, …` to SQLite's numbered `?1, ?2, …` (same numbers, so a value may be used twice). */
export function toSqlitePlaceholders(sql: string): string {
  return mapOutsideLiterals(sql, (code) => code.replace(/\$(\d+)/g, '?$1'));
}

/**
 * toPostgresDdl rewrites a migration for PostgreSQL: `STRICT` after a table
 * definition is dropped (PostgreSQL always checks types); `INTEGER` becomes
 * `BIGINT` (SQLite's INTEGER holds 64 bits, and times are stored in ms since
 * the epoch); and every new table gets a `rowid` identity column, the
 * counterpart of SQLite's implicit rowid, so `ORDER BY rowid` (insertion
 * order) means the same on both.
 */
export function toPostgresDdl(sql: string): string {
  return mapOutsideLiterals(sql, (code) =>
    code
      .replace(/\)\s*STRICT\b/g, ')')
      .replace(/\bINTEGER\b/g, 'BIGINT')
      .replace(
        /\bCREATE TABLE\s+(IF NOT EXISTS\s+)?[\w.]+\s*\(/gi,
        (m) => `${m}\n  rowid BIGINT GENERATED ALWAYS AS IDENTITY,`,
      ),
  );
}
