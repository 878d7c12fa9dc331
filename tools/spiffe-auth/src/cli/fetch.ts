import { join } from 'node:path';
import { AuthError } from '@shop/auth/x509';
import { SOCKET_ENV, WorkloadApiClient, type X509Context } from '@shop/auth/workloadapi';
import { parseCommandArgs, printJson, table, type CliIo, type Command, type ExitCode } from './command.ts';
import { describeExpiry, parseDuration } from './duration.ts';
import { KEY_FILE_MODE, PUBLIC_FILE_MODE, ensureDir, writeFilesAtomic, type OutputFile } from './files.ts';

const NAME = 'fetch';

const HELP = `Usage: spiffe-auth fetch [options]

Fetch the current X.509-SVIDs and trust bundles from the SPIFFE Workload API
(the SPIRE agent) once, and print each SVID's ID, hint, expiry and chain
length, and the trust domain of each bundle (own and federated).

Options:
  --socket <address>   Workload API address, unix:///path or tcp://IP:port; Default: $${SOCKET_ENV}
  --timeout <duration> how long to wait for the answer; Default: 10s
  --write <dir>        also write the default (first) SVID to <dir>: svid.pem (chain), svid.key.pem
                       (mode 0600) and bundle.pem (its own trust domain's CAs), replacing them atomically;
                       Default: none
  --json               print the result as JSON; Default: false
  -h, --help           show this help
`;

/** WRITTEN_FILES are the file names `fetch --write` uses, as spiffe-helper does. */
export const WRITTEN_FILES = { svid: 'svid.pem', key: 'svid.key.pem', bundle: 'bundle.pem' } as const;

function filesFor(dir: string, context: X509Context): OutputFile[] {
  const svid = context.svids[0];
  if (!svid) throw new AuthError('AUTH_ERR_WORKLOAD_RESPONSE_INVALID', 'the Workload API sent no X.509-SVID');
  const bundle = context.bundles.getX509BundleForTrustDomain(svid.id.trustDomain);
  // Bundle first and key before certificate: a watcher reacting to svid.pem
  // then already finds the matching key and the CAs that sign it.
  return [
    { path: join(dir, WRITTEN_FILES.bundle), data: bundle.toPem(), mode: PUBLIC_FILE_MODE },
    { path: join(dir, WRITTEN_FILES.key), data: svid.privateKeyPem(), mode: KEY_FILE_MODE },
    { path: join(dir, WRITTEN_FILES.svid), data: svid.certChainPem(), mode: PUBLIC_FILE_MODE },
  ];
}

/** fetchCommand is the `fetch` command: the current X.509-SVIDs and bundles from the Workload API. */
export const fetchCommand: Command = {
  name: NAME,
  help: HELP,
  async run(args: string[], io: CliIo): Promise<ExitCode> {
    const parsed = parseCommandArgs(NAME, args, {
      socket: { type: 'string' },
      timeout: { type: 'string', default: '10s' },
      write: { type: 'string' },
      json: { type: 'boolean', default: false },
    });
    if (parsed.help) {
      io.out(HELP);
      return 0;
    }
    const { values } = parsed;
    const timeoutMs = parseDuration('--timeout', values.timeout) * 1000;
    const client = new WorkloadApiClient({ address: values.socket, timeoutMs });
    let context: X509Context;
    try {
      context = await client.fetchX509Context();
    } finally {
      await client.close();
    }

    let written: OutputFile[] | undefined;
    if (values.write !== undefined) {
      written = filesFor(values.write, context);
      await ensureDir(values.write);
      await writeFilesAtomic(written, true);
    }

    const now = new Date();
    const own = new Set(context.svids.map((s) => s.id.trustDomain.name));
    const svids = context.svids.map((s, i) => ({
      spiffeId: s.id.toString(),
      hint: s.hint,
      default: i === 0,
      notBefore: s.notBefore.toISOString(),
      notAfter: s.expiresAt.toISOString(),
      secondsToExpiry: s.secondsToExpiry(now),
      chainLength: s.certificates.length,
    }));
    const bundles = context.bundles.bundles().map((b) => ({
      trustDomain: b.trustDomain.name,
      federated: !own.has(b.trustDomain.name),
      authorities: b.authorities.length,
    }));

    if (values.json) {
      printJson(io, {
        address: client.address,
        svids,
        bundles,
        ...(written === undefined ? {} : { written: written.map((f) => f.path) }),
      });
      return 0;
    }
    io.out(`Workload API ${client.address}: ${svids.length} X.509-SVID${svids.length === 1 ? '' : 's'}\n`);
    io.out(
      table(
        svids.map((s) => [
          `  ${s.default ? '*' : ' '} ${s.spiffeId}`,
          `hint ${s.hint === '' ? '(none)' : JSON.stringify(s.hint)}`,
          `expires ${s.notAfter} (${describeExpiry(s.secondsToExpiry)})`,
          `chain ${s.chainLength} certificate${s.chainLength === 1 ? '' : 's'}`,
        ]),
      ),
    );
    io.out(`Bundles: ${bundles.length}\n`);
    io.out(
      table(
        bundles.map((b) => [
          `  ${b.trustDomain}`,
          b.federated ? 'federated' : 'own',
          `${b.authorities} authorit${b.authorities === 1 ? 'y' : 'ies'}`,
        ]),
      ),
    );
    if (written) {
      io.out(`Wrote the default SVID (*) to ${values.write ?? ''}:\n`);
      io.out(table(written.map((f) => ['  wrote', f.path, f.mode === KEY_FILE_MODE ? 'mode 0600' : ''])));
    }
    return 0;
  },
};
