// Applies spire/entries.json to a SPIRE server, idempotently: creates the
// entries that are missing, updates those that changed, leaves the rest (and
// anything not in the file) alone.
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Entry, EntrySpec, Spire } from './spire.ts';

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
    dns_names: [...(e.dns_names ?? [])].sort(),
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

/** applyEntries brings the server's entries in line with `wanted`. */
export async function applyEntries(spire: Spire, wanted: EntrySpec[]): Promise<ApplyReport> {
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
