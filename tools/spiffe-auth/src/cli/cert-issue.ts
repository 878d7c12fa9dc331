import { TrustDomain } from '@shop/auth/x509';
import { CliError } from '../errors.ts';
import { DEFAULT_TRUST_DOMAIN, loadCa } from './ca-dir.ts';
import {
  listValue,
  parseCommandArgs,
  printJson,
  required,
  table,
  type CliIo,
  type Command,
  type ExitCode,
} from './command.ts';
import { describeExpiry, parseDuration } from './duration.ts';
import { ensureDir, refuseExisting, writeFilesAtomic } from './files.ts';
import {
  checkDnsName,
  defaultDnsNames,
  issueServiceCert,
  MAX_SERVICE_NAME_BYTES,
  serviceDnsWarning,
  serviceFiles,
  serviceSpiffeId,
} from './service-cert.ts';

const NAME = 'cert issue';

const HELP = `Usage: spiffe-auth cert issue --ca-dir <dir> --service <name> --out-dir <dir> [options]

Issue an X.509-SVID for spiffe://<trust-domain>/<service>, signed by the CA in
--ca-dir, with DNS SANs <service> (when it is a DNS name) and localhost (plus
any --dns).
Writes <out-dir>/<service>.crt.pem and <out-dir>/<service>.key.pem (mode 0600).

Options:
  --ca-dir <dir>         directory made by "spiffe-auth ca create" (required)
  --service <name>       service name, one SPIFFE ID path segment of at most ${MAX_SERVICE_NAME_BYTES} bytes (required), e.g. payment
  --out-dir <dir>        directory to write to, created if missing (required)
  --trust-domain <name>  trust domain of the ID; Default: the CA's (ca.json), else ${DEFAULT_TRUST_DOMAIN}
  --dns <name>           extra DNS SAN, a host name (no IP address, no wildcard); repeat it or separate with commas; Default: none
  --ttl <duration>       how long the certificate is valid (never beyond the CA); Default: 720h
  --force                replace existing files for this service; Default: false
  --json                 print the result as JSON; Default: false
  -h, --help             show this help
`;

/** certIssue is the `cert issue` command: an X.509-SVID for one service, signed by a development CA. */
export const certIssue: Command = {
  name: NAME,
  help: HELP,
  async run(args: string[], io: CliIo): Promise<ExitCode> {
    const parsed = parseCommandArgs(NAME, args, {
      'ca-dir': { type: 'string' },
      service: { type: 'string' },
      'out-dir': { type: 'string' },
      'trust-domain': { type: 'string' },
      dns: { type: 'string', multiple: true },
      ttl: { type: 'string', default: '720h' },
      force: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
    });
    if (parsed.help) {
      io.out(HELP);
      return 0;
    }
    const { values } = parsed;
    const caDir = required(NAME, 'ca-dir', values['ca-dir']);
    const service = required(NAME, 'service', values.service);
    const outDir = required(NAME, 'out-dir', values['out-dir']);
    const tdFlag = values['trust-domain'];
    const flagTrustDomain = tdFlag === undefined ? undefined : TrustDomain.parse(tdFlag);
    const extraDns = listValue(values.dns).map((n) => checkDnsName(NAME, n));
    const ttlSeconds = parseDuration('--ttl', values.ttl);
    // Validate the service against the default trust domain now, so a bad
    // name is reported before the CA is even read.
    serviceSpiffeId(flagTrustDomain ?? TrustDomain.parse(DEFAULT_TRUST_DOMAIN), service);

    const loaded = await loadCa(caDir);
    if (flagTrustDomain && loaded.trustDomain && !flagTrustDomain.equals(loaded.trustDomain)) {
      throw new CliError(
        'AUTH_ERR_CLI_CA_INVALID',
        `the CA in ${JSON.stringify(caDir)} was created for trust domain ${loaded.trustDomain.name}, not ${flagTrustDomain.name}; ` +
          'a trust domain needs its own CA',
      );
    }
    const trustDomain = flagTrustDomain ?? loaded.trustDomain ?? TrustDomain.parse(DEFAULT_TRUST_DOMAIN);
    const id = serviceSpiffeId(trustDomain, service);
    const paths = serviceFiles(outDir, service);
    if (!values.force) await refuseExisting([paths.cert, paths.key]);
    const dnsNames = [...new Set([...defaultDnsNames(service), ...extraDns])];
    const issued = await issueServiceCert(loaded.ca, loaded.cert.notAfter, id, dnsNames, ttlSeconds, paths);
    await ensureDir(outDir);
    await writeFilesAtomic(issued.files, values.force);

    const dnsWarning = serviceDnsWarning(service);
    if (dnsWarning !== undefined)
      io.err(`warning: ${dnsWarning}; add a DNS SAN with --dns if clients check host names\n`);
    if (issued.clamped) {
      io.err(`warning: the CA expires before --ttl ${values.ttl}; the certificate expires with it\n`);
    }
    if (values.json) {
      printJson(io, {
        spiffeId: id.toString(),
        dnsNames,
        certFile: paths.cert,
        keyFile: paths.key,
        notAfter: issued.notAfter.toISOString(),
        clampedToCa: issued.clamped,
      });
    } else {
      io.out(
        `Issued X.509-SVID ${id.toString()} (DNS ${dnsNames.join(', ')}), expires ${issued.notAfter.toISOString()} ` +
          `(${describeExpiry((issued.notAfter.getTime() - Date.now()) / 1000)})\n`,
      );
      io.out(
        table([
          ['wrote', paths.cert, 'certificate chain'],
          ['wrote', paths.key, 'private key, mode 0600'],
        ]),
      );
    }
    return 0;
  },
};
