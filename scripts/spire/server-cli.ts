// Talks to a running SPIRE server through its own CLI on the server's admin
// socket: bundles and registration entries. Used on the host (spire.ts) and in
// compose's one-shot registration container.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** EntrySpec is one registration entry, as spire/entries.json writes it. */
export interface EntrySpec {
  spiffe_id: string;
  parent_id: string;
  selectors: string[];
  x509_svid_ttl?: number;
  dns_names?: string[];
  federates_with?: string[];
}

/** Entry is an entry as the server reports it. */
export interface Entry extends EntrySpec {
  id: string;
}

/** SpireServerCli runs spire-server commands against one server's admin socket. */
export class SpireServerCli {
  readonly serverBin: string;
  readonly serverSocket: string;

  constructor(serverBin: string, serverSocket: string) {
    this.serverBin = serverBin;
    this.serverSocket = serverSocket;
  }

  /** cli runs a spire-server command against this server's API socket. */
  async cli(args: string[]): Promise<string> {
    const { stdout } = await run(this.serverBin, [...args, '-socketPath', this.serverSocket], {
      maxBuffer: 16 << 20,
    });
    return stdout;
  }

  /** bundlePem is the server's X.509 bundle as PEM. */
  bundlePem(): Promise<string> {
    return this.cli(['bundle', 'show', '-format', 'pem']);
  }

  /** entries lists the registration entries (join-token node aliases excluded). */
  async entries(): Promise<Entry[]> {
    const out = await this.cli(['entry', 'show', '-output', 'json']);
    const doc = JSON.parse(out || '{}') as { entries?: RawEntry[] };
    return (doc.entries ?? []).map(fromRaw).filter((e) => !e.parent_id.includes('/spire/agent/join_token/'));
  }

  /** createEntry registers one entry. */
  async createEntry(e: EntrySpec): Promise<void> {
    await this.cli(['entry', 'create', ...entryFlags(e)]);
  }

  /** updateEntry changes an existing entry to `e`. */
  async updateEntry(id: string, e: EntrySpec): Promise<void> {
    await this.cli(['entry', 'update', '-entryID', id, ...entryFlags(e)]);
  }

  /** deleteEntry removes an entry. */
  async deleteEntry(id: string): Promise<void> {
    await this.cli(['entry', 'delete', '-entryID', id]);
  }
}

interface RawId {
  trust_domain: string;
  path: string;
}
interface RawEntry {
  id: string;
  spiffe_id: RawId;
  parent_id: RawId;
  selectors: { type: string; value: string }[];
  x509_svid_ttl?: number;
  dns_names?: string[] | null;
  federates_with?: string[] | null;
}

function idOf(r: RawId): string {
  return `spiffe://${r.trust_domain}${r.path}`;
}

function fromRaw(r: RawEntry): Entry {
  return {
    id: r.id,
    spiffe_id: idOf(r.spiffe_id),
    parent_id: idOf(r.parent_id),
    selectors: r.selectors.map((s) => `${s.type}:${s.value}`).sort(),
    x509_svid_ttl: r.x509_svid_ttl,
    // As SPIRE keeps them: the first is the SVID's subject CN, so order matters.
    dns_names: [...(r.dns_names ?? [])],
    federates_with: [...(r.federates_with ?? [])].sort(),
  };
}

function entryFlags(e: EntrySpec): string[] {
  const flags = ['-spiffeID', e.spiffe_id, '-parentID', e.parent_id];
  for (const s of e.selectors) flags.push('-selector', s);
  if (e.x509_svid_ttl !== undefined) flags.push('-x509SVIDTTL', String(e.x509_svid_ttl));
  for (const d of e.dns_names ?? []) flags.push('-dns', d);
  for (const f of e.federates_with ?? []) flags.push('-federatesWith', f);
  return flags;
}
