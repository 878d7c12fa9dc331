// Applies an entries file (spire/entries.json, spire/compose/entries.json) to
// a SPIRE server, idempotently: creates the entries that are missing, updates
// those that changed, leaves the rest (and anything not in the file) alone.
//
// Also the one-shot registration step of compose.yaml (SPIRE's images have no
// shell, so it runs in the shop's tools image, which carries spire-server):
//   node scripts/spire/register.ts --entries spire/compose/entries.json \
//     [--socket /tmp/spire-server/private/api.sock] [--bundle-out /path/bundle.pem]
import { rename, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { SpireServerCli, type Entry, type EntrySpec } from './server-cli.ts';

const ROOT = resolve(import.meta.dirname, '../..');

/** EntryVars fill the placeholders of the entries file. */
export interface EntryVars {
  TD: string;
  UID: string;
  SVID_TTL: string;
}

/** loadEntries reads an entries file and fills in its placeholders. */
export async function loadEntries(vars: EntryVars, file = join(ROOT, 'spire', 'entries.json')): Promise<EntrySpec[]> {
  const text = (await readFile(file, 'utf8')).replace(/\$\{(TD|UID|SVID_TTL)\}/g, (_m, k: keyof EntryVars) => vars[k]);
  const doc = JSON.parse(text) as {
    entries: (Omit<EntrySpec, 'x509_svid_ttl'> & { x509_svid_ttl?: string | number })[];
  };
  return doc.entries.map((e) => ({
    ...e,
    selectors: [...e.selectors].sort(),
    // In the file's order, not sorted: SPIRE puts the first DNS name into the
    // SVID's subject CN, which PostgreSQL's cert login maps to a role.
    dns_names: [...(e.dns_names ?? [])],
    federates_with: [...(e.federates_with ?? [])].sort(),
    x509_svid_ttl: e.x509_svid_ttl === undefined ? undefined : Number(e.x509_svid_ttl),
  }));
}

/** ApplyReport says what apply did, per SPIFFE ID. */
export interface ApplyReport {
  created: string[];
  updated: string[];
  unchanged: string[];
}

function same(a: EntrySpec, b: Entry): boolean {
  const eq = (x: string[] | undefined, y: string[] | undefined): boolean =>
    JSON.stringify(x ?? []) === JSON.stringify(y ?? []);
  return (
    eq(a.selectors, b.selectors) &&
    eq(a.dns_names, b.dns_names) &&
    eq(a.federates_with, b.federates_with) &&
    (a.x509_svid_ttl === undefined || a.x509_svid_ttl === b.x509_svid_ttl)
  );
}

/** EntryStore is what applyEntries needs of a SPIRE server. */
export type EntryStore = Pick<SpireServerCli, 'entries' | 'createEntry' | 'updateEntry'>;

/** applyEntries brings the server's entries in line with `wanted`. */
export async function applyEntries(spire: EntryStore, wanted: EntrySpec[]): Promise<ApplyReport> {
  const existing = await spire.entries();
  const report: ApplyReport = { created: [], updated: [], unchanged: [] };
  for (const w of wanted) {
    const have = existing.find((e) => e.spiffe_id === w.spiffe_id && e.parent_id === w.parent_id);
    if (!have) {
      await spire.createEntry(w);
      report.created.push(w.spiffe_id);
    } else if (!same(w, have)) {
      await spire.updateEntry(have.id, w);
      report.updated.push(w.spiffe_id);
    } else {
      report.unchanged.push(w.spiffe_id);
    }
  }
  return report;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      entries: { type: 'string' },
      socket: { type: 'string', default: '/tmp/spire-server/private/api.sock' },
      'server-bin': { type: 'string', default: 'spire-server' },
      'bundle-out': { type: 'string' },
      'trust-domain': { type: 'string', default: process.env.TRUST_DOMAIN ?? 'example.org' },
      'svid-ttl': { type: 'string', default: process.env.SVID_TTL ?? '300' },
    },
  });
  if (!values.entries) throw new Error('--entries <file> is required, e.g. spire/compose/entries.json');
  const server = new SpireServerCli(values['server-bin'], values.socket);
  if (values['bundle-out']) {
    // Written beside and renamed, so an agent never reads half a bundle.
    const out = values['bundle-out'];
    await writeFile(`${out}.tmp`, await server.bundlePem());
    await rename(`${out}.tmp`, out);
    console.log(`register: wrote the server's bundle to ${out}`);
  }
  const wanted = await loadEntries(
    { TD: values['trust-domain'], UID: String(process.getuid?.() ?? 0), SVID_TTL: values['svid-ttl'] },
    resolve(values.entries),
  );
  const report = await applyEntries(server, wanted);
  console.log(
    `register: created ${report.created.length}, updated ${report.updated.length}, unchanged ${report.unchanged.length}` +
      (report.created.length ? ` (created ${report.created.join(', ')})` : ''),
  );
}

if (import.meta.main) {
  try {
    await main();
  } catch (err) {
    console.error(`register: ${(err as Error).message}`);
    process.exit(1);
  }
}
