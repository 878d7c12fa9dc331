import { TrustDomain } from '@shop/auth/x509';
import { CliError } from '../errors.ts';
import { caFiles, createDevCa } from './ca-dir.ts';
import { parseCommandArgs, printJson, required, table, type CliIo, type Command, type ExitCode } from './command.ts';
import { describeExpiry, parseDuration } from './duration.ts';
import { ensureDir, refuseExisting, writeFilesAtomic } from './files.ts';

const NAME = 'ca create';

const HELP = `Usage: spiffe-auth ca create --trust-domain <name> --out-dir <dir> [options]

Create a development root CA (ECDSA P-256) for a trust domain.
Writes <dir>/ca.crt.pem, <dir>/ca.key.pem (mode 0600) and <dir>/ca.json.

Options:
  --trust-domain <name>  trust domain the CA issues for (required), e.g. example.org
  --out-dir <dir>        directory to write to, created if missing (required)
  --ttl <duration>       how long the CA is valid; Default: 8760h
  --path-len <n>         CA certificates allowed below it, 0-8; 1 lets it sign SPIRE's CA as SPIRE's
                         UpstreamAuthority (docs/migration.md); Default: 0 (it signs leaves only)
  --force                replace an existing CA in <dir>; Default: false
  --json                 print the result as JSON; Default: false
  -h, --help             show this help
`;

/** caCreate is the `ca create` command: a development root CA for a trust domain. */
export const caCreate: Command = {
  name: NAME,
  help: HELP,
  async run(args: string[], io: CliIo): Promise<ExitCode> {
    const parsed = parseCommandArgs(NAME, args, {
      'trust-domain': { type: 'string' },
      'out-dir': { type: 'string' },
      ttl: { type: 'string', default: '8760h' },
      'path-len': { type: 'string', default: '0' },
      force: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
    });
    if (parsed.help) {
      io.out(HELP);
      return 0;
    }
    const { values } = parsed;
    const trustDomain = TrustDomain.parse(required(NAME, 'trust-domain', values['trust-domain']));
    const outDir = required(NAME, 'out-dir', values['out-dir']);
    const ttlSeconds = parseDuration('--ttl', values.ttl);
    const pathLen = Number(values['path-len']);
    if (!/^\d$/.test(values['path-len']) || pathLen > 8) {
      throw new CliError(
        'AUTH_ERR_CLI_USAGE',
        `spiffe-auth ${NAME}: --path-len must be an integer from 0 to 8, got ${JSON.stringify(values['path-len'])}`,
      );
    }
    const force = values.force;
    const paths = caFiles(outDir);
    // Refuse before generating anything, so nothing is written at all.
    if (!force) await refuseExisting([paths.cert, paths.key, paths.meta]);
    const created = await createDevCa(outDir, trustDomain, ttlSeconds, pathLen);
    await ensureDir(outDir);
    await writeFilesAtomic(created.files, force);
    const notAfter = created.cert.notAfter;
    if (values.json) {
      printJson(io, {
        trustDomain: trustDomain.name,
        certFile: paths.cert,
        keyFile: paths.key,
        metaFile: paths.meta,
        subject: created.cert.x509.subject,
        serial: created.cert.x509.serialNumber,
        notAfter: notAfter.toISOString(),
      });
    } else {
      io.out(
        `Created development root CA for trust domain ${trustDomain.name}, expires ${notAfter.toISOString()} (${describeExpiry((notAfter.getTime() - Date.now()) / 1000)})\n`,
      );
      io.out(
        table([
          ['wrote', paths.cert, 'CA certificate (share it: it is the trust bundle)'],
          ['wrote', paths.key, 'CA private key, mode 0600 (keep it secret)'],
          ['wrote', paths.meta, 'trust domain of the CA'],
        ]),
      );
    }
    return 0;
  },
};
