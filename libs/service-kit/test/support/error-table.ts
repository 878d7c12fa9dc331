// Reads a service README's error table, for the doc test every service has
// (test/errors-doc.test.ts): code and documents must agree.
import { readFile } from 'node:fs/promises';

/** ErrorRow is one documented code: its HTTP status and gRPC status as the README writes them ("—" for none). */
export interface ErrorRow {
  http: string;
  grpc: string;
}

/** PASSTHROUGH_CODE is a code a service answers with but does not own: service-kit's, fastify's and the auth plugin's. */
export const PASSTHROUGH_CODE =
  /^(INVALID_REQUEST|NOT_FOUND|INTERNAL|DATABASE_UNAVAILABLE|FST_ERR_[A-Z_]+|AUTH_ERR_\*)$/;

/**
 * readErrorTable returns the rows of the `## Error codes` section of the
 * README at `readme`: `| \`CODE\` | HTTP | gRPC | … |`, the gRPC cell
 * unquoted (`NOT_FOUND`) or "—".
 */
export async function readErrorTable(readme: URL): Promise<Map<string, ErrorRow>> {
  const text = await readFile(readme, 'utf8');
  const start = text.indexOf('\n## Error codes');
  if (start < 0) throw new Error(`${readme.pathname} has no "## Error codes" section`);
  const section = text.slice(start + 1).split('\n## ')[0] ?? '';
  const rows = new Map<string, ErrorRow>();
  for (const m of section.matchAll(/^\| `([A-Z_*]+)` +\| ([^|]+?) +\| ([^|]+?) +\|/gm)) {
    rows.set(m[1]!, { http: m[2]!, grpc: m[3]!.replaceAll('`', '') });
  }
  return rows;
}
