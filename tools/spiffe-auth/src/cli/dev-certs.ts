import {
  X509Bundle,
  X509BundleSet,
  type SpiffeId,
  TrustDomain,
  X509Svid,
  verifyX509Svid,
  parseCertificate,
  type ParsedCertificate,
} from '@shop/auth/x509';
import type { CertificateAuthority } from '../dev-ca.ts';
import { isExpectedError } from '../errors.ts';
import { CA_CERT_FILE, DEFAULT_TRUST_DOMAIN, caFiles, createDevCa, loadCa, type LoadedCa } from './ca-dir.ts';
import {
  listValue,
  parseCommandArgs,
  printJson,
  required,
  table,
  usageError,
  type CliIo,
  type Command,
  type ExitCode,
} from './command.ts';
import { lockDir } from './dir-lock.ts';
import { describeExpiry, parseDuration } from './duration.ts';
import { PUBLIC_FILE_MODE, ensureDir, fileExists, readInputFile, writeFilesAtomic } from './files.ts';
import { defaultDnsNames, issueServiceCert, serviceDnsWarning, serviceFiles, serviceSpiffeId } from './service-cert.ts';

const NAME = 'dev-certs';
const DEFAULT_SERVICES = 'order,payment,inventory';

const HELP = `Usage: spiffe-auth dev-certs --out-dir <dir> [options]

Make sure <dir> holds a development CA and a valid X.509-SVID per service, for
local runs without SPIRE. Idempotent: creates the CA if there is none, and
(re)issues a service's certificate only when it is missing, unparseable, does
not match its key, is for another ID or trust domain, does not chain to the CA,
or expires within --renew-within. Good files are left alone. A CA that is
broken, for another trust domain or expiring within --renew-within is replaced,
and then every certificate is reissued.

Options:
  --out-dir <dir>         directory for CA and certificates, created if missing (required)
  --trust-domain <name>   trust domain; Default: the CA's (ca.json), else ${DEFAULT_TRUST_DOMAIN}
  --services <list>       comma-separated service names; Default: ${DEFAULT_SERVICES}
  --ttl <duration>        validity of a newly issued certificate; Default: 720h
  --renew-within <dur>    reissue a certificate (or CA) expiring within this; Default: 24h
  --ca-ttl <duration>     validity of a newly created CA; Default: 8760h
  --json                  print the result as JSON; Default: false
  -h, --help              show this help
`;

type Action = 'created' | 'renewed' | 'kept';

interface FileReport {
  file: string;
  action: Action;
  reason?: string;
  spiffeId?: string;
  notAfter?: string;
}

type Verdict = { action: 'kept'; notAfter: Date } | { action: 'created' | 'renewed'; reason: string };

/** devCerts is the `dev-certs` command: an idempotent development CA and certificate per service. */
export const devCerts: Command = {
  name: NAME,
  help: HELP,
  async run(args: string[], io: CliIo): Promise<ExitCode> {
    const parsed = parseCommandArgs(NAME, args, {
      'out-dir': { type: 'string' },
      'trust-domain': { type: 'string' },
      services: { type: 'string', multiple: true },
      ttl: { type: 'string', default: '720h' },
      'renew-within': { type: 'string', default: '24h' },
      'ca-ttl': { type: 'string', default: '8760h' },
      json: { type: 'boolean', default: false },
    });
    if (parsed.help) {
      io.out(HELP);
      return 0;
    }
    const { values } = parsed;
    const outDir = required(NAME, 'out-dir', values['out-dir']);
    const tdFlag = values['trust-domain'];
    const flagTrustDomain = tdFlag === undefined ? undefined : TrustDomain.parse(tdFlag);
    const ttlSeconds = parseDuration('--ttl', values.ttl);
    const renewWithin = parseDuration('--renew-within', values['renew-within'], { allowZero: true });
    const caTtlSeconds = parseDuration('--ca-ttl', values['ca-ttl']);
    // Otherwise every run would find the fresh certificate "expiring" and reissue it.
    if (renewWithin >= ttlSeconds) {
      throw usageError(NAME, `--renew-within ${values['renew-within']} must be shorter than --ttl ${values.ttl}`);
    }
    if (renewWithin >= caTtlSeconds) {
      throw usageError(
        NAME,
        `--renew-within ${values['renew-within']} must be shorter than --ca-ttl ${values['ca-ttl']}`,
      );
    }
    const services = values.services === undefined ? listValue(DEFAULT_SERVICES) : listValue(values.services);
    if (services.length === 0) throw usageError(NAME, '--services must name at least one service');
    // Validate every name before touching the directory.
    for (const s of services) serviceSpiffeId(flagTrustDomain ?? TrustDomain.parse(DEFAULT_TRUST_DOMAIN), s);
    for (const s of services) {
      const warning = serviceDnsWarning(s);
      if (warning !== undefined) io.err(`warning: ${warning}\n`);
    }

    await ensureDir(outDir);
    const release = await lockDir(outDir);
    let reports: FileReport[];
    let trustDomain: TrustDomain;
    try {
      ({ reports, trustDomain } = await reconcile(outDir, flagTrustDomain, services, {
        ttlSeconds,
        renew: { seconds: renewWithin, text: values['renew-within'] },
        caTtlSeconds,
      }));
    } finally {
      await release();
    }

    const changed = reports.some((r) => r.action !== 'kept');
    if (values.json) {
      printJson(io, { outDir, trustDomain: trustDomain.name, changed, files: reports });
    } else {
      io.out(
        table(
          reports.map((r) => [
            r.action,
            r.file,
            [r.spiffeId, r.reason ?? (r.notAfter ? `expires ${r.notAfter}` : undefined)]
              .filter((x) => x !== undefined)
              .join(': '),
          ]),
        ),
      );
      io.out(changed ? `Updated ${outDir} for trust domain ${trustDomain.name}.\n` : `${outDir} is up to date.\n`);
    }
    return 0;
  },
};

interface Renew {
  seconds: number;
  text: string;
}

interface Lifetimes {
  ttlSeconds: number;
  /** renew is --renew-within, in seconds and as the user wrote it (for messages). */
  renew: Renew;
  caTtlSeconds: number;
}

async function reconcile(
  outDir: string,
  flagTrustDomain: TrustDomain | undefined,
  services: string[],
  lifetimes: Lifetimes,
): Promise<{ reports: FileReport[]; trustDomain: TrustDomain }> {
  const now = new Date();
  const reports: FileReport[] = [];
  const paths = caFiles(outDir);

  const { loaded, verdict } = await assessCa(outDir, flagTrustDomain, lifetimes.renew, now);
  const trustDomain = flagTrustDomain ?? loaded?.trustDomain ?? TrustDomain.parse(DEFAULT_TRUST_DOMAIN);
  let ca: CertificateAuthority;
  let caCert: ParsedCertificate;
  let caReplaced = false;
  if (loaded && verdict.action === 'kept') {
    ca = loaded.ca;
    caCert = loaded.cert;
    const metaMissing = loaded.trustDomain === undefined;
    for (const file of [paths.cert, paths.key])
      reports.push({ file, action: 'kept', notAfter: caCert.notAfter.toISOString() });
    if (metaMissing) {
      // Record the trust domain we now assume, so the next run finds it.
      const data = `${JSON.stringify({ trust_domain: trustDomain.name }, null, 2)}\n`;
      await writeFilesAtomic([{ path: paths.meta, data, mode: PUBLIC_FILE_MODE }], true);
      reports.push({ file: paths.meta, action: 'created', reason: `trust domain ${trustDomain.name} recorded` });
    } else {
      reports.push({ file: paths.meta, action: 'kept' });
    }
  } else {
    const reason = verdict.action === 'kept' ? 'CA was not loaded' : verdict.reason;
    const created = await createDevCa(outDir, trustDomain, lifetimes.caTtlSeconds);
    await writeFilesAtomic(created.files, true);
    ca = created.ca;
    caCert = created.cert;
    caReplaced = verdict.action === 'renewed';
    for (const f of created.files) {
      reports.push({ file: f.path, action: verdict.action === 'renewed' ? 'renewed' : 'created', reason });
    }
  }

  const bundles = new X509BundleSet([new X509Bundle(trustDomain, [caCert.der])]);
  for (const service of services) {
    const id = serviceSpiffeId(trustDomain, service);
    const files = serviceFiles(outDir, service);
    const v = caReplaced
      ? { action: 'renewed' as const, reason: 'the CA was replaced' }
      : await assessService(files, service, id, bundles, lifetimes.renew, now);
    if (v.action === 'kept') {
      reports.push({ file: files.cert, action: 'kept', spiffeId: id.toString(), notAfter: v.notAfter.toISOString() });
      reports.push({ file: files.key, action: 'kept' });
      continue;
    }
    const issued = await issueServiceCert(
      ca,
      caCert.notAfter,
      id,
      defaultDnsNames(service),
      lifetimes.ttlSeconds,
      files,
    );
    await writeFilesAtomic(issued.files, true);
    const notAfter = issued.notAfter.toISOString();
    reports.push({ file: files.cert, action: v.action, reason: v.reason, spiffeId: id.toString(), notAfter });
    reports.push({ file: files.key, action: v.action, reason: v.reason });
  }
  return { reports, trustDomain };
}

function missingReason(missing: string[]): string {
  return `${missing.join(' and ')} ${missing.length === 1 ? 'is' : 'are'} missing`;
}

async function assessCa(
  outDir: string,
  flagTrustDomain: TrustDomain | undefined,
  renew: Renew,
  now: Date,
): Promise<{ loaded: LoadedCa | undefined; verdict: Verdict }> {
  const paths = caFiles(outDir);
  const missing: string[] = [];
  for (const p of [paths.cert, paths.key]) if (!(await fileExists(p))) missing.push(p);
  if (missing.length === 2) return { loaded: undefined, verdict: { action: 'created', reason: 'no CA yet' } };
  if (missing.length === 1)
    return { loaded: undefined, verdict: { action: 'renewed', reason: missingReason(missing) } };
  let loaded: LoadedCa;
  try {
    loaded = await loadCa(outDir, now);
  } catch (err) {
    // A file we may not read is the user's to fix; anything else about a
    // development CA is repaired by making a new one.
    if (!isExpectedError(err) || err.code === 'AUTH_ERR_FILE_UNREADABLE') throw err;
    return { loaded: undefined, verdict: { action: 'renewed', reason: `${err.code}: ${err.message}` } };
  }
  if (flagTrustDomain && loaded.trustDomain && !loaded.trustDomain.equals(flagTrustDomain)) {
    return {
      loaded,
      verdict: {
        action: 'renewed',
        reason: `the CA is for trust domain ${loaded.trustDomain.name}, not ${flagTrustDomain.name}`,
      },
    };
  }
  const left = (loaded.cert.notAfter.getTime() - now.getTime()) / 1000;
  if (left <= renew.seconds) {
    return {
      loaded,
      verdict: {
        action: 'renewed',
        reason: `the CA expires ${describeExpiry(left)}, within --renew-within ${renew.text}`,
      },
    };
  }
  return { loaded, verdict: { action: 'kept', notAfter: loaded.cert.notAfter } };
}

async function assessService(
  files: { cert: string; key: string },
  service: string,
  id: SpiffeId,
  bundles: X509BundleSet,
  renew: Renew,
  now: Date,
): Promise<Verdict> {
  const missing: string[] = [];
  for (const p of [files.cert, files.key]) if (!(await fileExists(p))) missing.push(p);
  if (missing.length === 2) return { action: 'created', reason: 'no certificate yet' };
  if (missing.length === 1) return { action: 'renewed', reason: missingReason(missing) };
  const certPem = (await readInputFile(files.cert, 'certificate')).toString('utf8');
  const keyPem = (await readInputFile(files.key, 'private key')).toString('utf8');
  let svid: X509Svid;
  try {
    svid = X509Svid.fromPem(certPem, keyPem);
  } catch (err) {
    if (!isExpectedError(err)) throw err;
    return { action: 'renewed', reason: `${err.code}: ${err.message}` };
  }
  if (!svid.id.equals(id))
    return { action: 'renewed', reason: `it is for ${svid.id.toString()}, not ${id.toString()}` };
  try {
    // A service certificate serves and calls, so it must pass in both roles.
    for (const peerRole of ['server', 'client'] as const) verifyX509Svid(svid.chainDer(), bundles, { peerRole, now });
  } catch (err) {
    const detail = (err as Error).message.replace(/^peer \S+: /, '');
    return { action: 'renewed', reason: `it does not verify against ${CA_CERT_FILE}: ${detail}` };
  }
  const dnsSans = parseCertificate(svid.chainDer()[0] ?? Buffer.alloc(0)).dnsSans;
  const lacking = defaultDnsNames(service).filter((n) => !dnsSans.includes(n));
  if (lacking.length > 0) return { action: 'renewed', reason: `it lacks the DNS SAN ${lacking.join(', ')}` };
  const left = svid.secondsToExpiry(now);
  if (left <= renew.seconds) {
    return {
      action: 'renewed',
      reason: `it expires ${describeExpiry(left)}, within --renew-within ${renew.text}`,
    };
  }
  return { action: 'kept', notAfter: svid.expiresAt };
}
