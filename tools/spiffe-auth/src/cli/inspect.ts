import { createPrivateKey, createPublicKey } from 'node:crypto';
import { AuthError, type ParsedCertificate, pemBlocksOfType } from '@shop/auth/x509';
import { isExpectedError } from '../errors.ts';
import { describeCertificate, loadCertificateFile, svidStatus, type CertificateReport } from './cert-report.ts';
import { parseCommandArgs, prefixed, printJson, table, type CliIo, type Command, type ExitCode } from './command.ts';
import { describeExpiry } from './duration.ts';
import { readInputFile } from './files.ts';

const NAME = 'inspect';

const HELP = `Usage: spiffe-auth inspect <file> [options]

Show each certificate of a chain in <file> (PEM or DER; "-" for stdin) — SPIFFE
ID, URI and DNS SANs, subject, issuer, serial, validity, CA flag, key usage —
and whether the leaf is a valid X.509-SVID now, with the reason when it is
not. Exits 0 when the file could be read, whatever it holds; 2 when it could not.

Options:
  --key <file>  also check that this PKCS#8 private key belongs to the leaf (exit 2 if not); Default: none
  --json        print the result as JSON; Default: false
  -h, --help    show this help
`;

async function checkKey(path: string, leaf: ParsedCertificate): Promise<void> {
  const pem = (await readInputFile(path, 'private key')).toString('utf8');
  let spki: Buffer;
  try {
    const [der] = pemBlocksOfType(pem, 'PRIVATE KEY', 'private key file (PKCS#8)');
    spki = createPublicKey(createPrivateKey({ key: der ?? Buffer.alloc(0), format: 'der', type: 'pkcs8' })).export({
      format: 'der',
      type: 'spki',
    });
  } catch (err) {
    if (isExpectedError(err)) throw prefixed(path, err);
    throw new AuthError('AUTH_ERR_KEY_INVALID', `${path}: private key is not a valid PKCS#8 key`, { cause: err });
  }
  if (!spki.equals(leaf.x509.publicKey.export({ format: 'der', type: 'spki' }))) {
    throw new AuthError('AUTH_ERR_KEY_MISMATCH', `${path} is not the private key of the leaf certificate`);
  }
}

function role(c: CertificateReport, count: number): string {
  if (c.position === 0) return count === 1 && c.isCA ? 'CA' : 'leaf';
  return c.selfSigned ? 'root CA' : 'intermediate CA';
}

function list(values: readonly string[] | null): string {
  if (values === null) return '(extension absent)';
  return values.length === 0 ? '(none)' : values.join(', ');
}

/** inspect is the `inspect` command: what a certificate chain holds, and whether its leaf is a valid X.509-SVID. */
export const inspect: Command = {
  name: NAME,
  help: HELP,
  async run(args: string[], io: CliIo): Promise<ExitCode> {
    const parsed = parseCommandArgs(
      NAME,
      args,
      { key: { type: 'string' }, json: { type: 'boolean', default: false } },
      { min: 1, max: 1, what: 'certificate file' },
    );
    if (parsed.help) {
      io.out(HELP);
      return 0;
    }
    const file = parsed.positionals[0] ?? '';
    const now = new Date();
    const chain = await loadCertificateFile(file);
    const keyFile = parsed.values.key;
    if (keyFile !== undefined) await checkKey(keyFile, chain[0] as ParsedCertificate);
    const certificates = chain.map((c, i) => describeCertificate(c, i, now));
    const svid = svidStatus(chain, now);

    if (parsed.values.json) {
      printJson(io, {
        file,
        certificates,
        svid,
        ...(keyFile === undefined ? {} : { key: { file: keyFile, matchesLeaf: true } }),
      });
      return 0;
    }
    io.out(`${file}: ${certificates.length} certificate${certificates.length === 1 ? '' : 's'}\n`);
    for (const c of certificates) {
      io.out(`\n#${c.position} ${role(c, certificates.length)}\n`);
      io.out(
        table([
          ['  SPIFFE ID', c.spiffeId ?? '(none)'],
          ['  URI SANs', list(c.uriSans)],
          ['  DNS SANs', list(c.dnsSans)],
          ['  subject', c.subject === '' ? '(empty)' : c.subject],
          ['  issuer', c.issuer === '' ? '(empty)' : c.issuer],
          ['  serial', c.serial],
          ['  not before', c.notBefore],
          [
            '  not after',
            `${c.notAfter} (${c.secondsToExpiry >= 0 ? 'expires' : 'expired'} ${describeExpiry(c.secondsToExpiry)})`,
          ],
          ['  CA', c.isCA ? `true${c.pathLen === null ? '' : ` (pathLen ${c.pathLen})`}` : 'false'],
          ['  key usage', list(c.keyUsage)],
          ['  ext key usage', list(c.extKeyUsage)],
          ['  SHA-256', c.fingerprintSha256],
        ]),
      );
    }
    io.out('\n');
    io.out(
      svid.valid
        ? `X.509-SVID: valid, ${svid.spiffeId ?? ''}\n`
        : `X.509-SVID: not valid (${svid.code ?? ''}): ${svid.reason ?? ''}\n`,
    );
    if (keyFile !== undefined) io.out(`private key ${keyFile}: matches the leaf\n`);
    return 0;
  },
};
