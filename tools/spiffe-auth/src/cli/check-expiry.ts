import { isExpectedError, type ReportedCode } from '../errors.ts';
import { loadCertificateFile, spiffeIdOf } from './cert-report.ts';
import { formatError, parseCommandArgs, printJson, table, type CliIo, type Command, type ExitCode } from './command.ts';
import { describeExpiry, parseDuration } from './duration.ts';

const NAME = 'check-expiry';

const HELP = `Usage: spiffe-auth check-expiry <file>... [options]

Check that the leaf (first) certificate of each file ("-" for stdin) is valid
for longer than --within. For cron and CI:
  exit 0  every leaf is valid for longer than --within
  exit 1  some leaf expires within --within, is expired or not yet valid (each is named)
  exit 2  bad input: a file is missing, unreadable or holds no certificate, or a bad flag

Options:
  --within <duration>  how long every leaf must stay valid; Default: 72h
  --json               print the result as JSON; Default: false
  -h, --help           show this help
`;

type Status = 'ok' | 'expiring' | 'expired' | 'not-yet-valid' | 'error';

interface FileResult {
  file: string;
  status: Status;
  spiffeId?: string | null;
  notBefore?: string;
  notAfter?: string;
  secondsToExpiry?: number;
  error?: { code: ReportedCode; message: string };
}

async function checkFile(file: string, withinSeconds: number, now: Date): Promise<FileResult> {
  let leaf;
  try {
    [leaf] = await loadCertificateFile(file);
  } catch (err) {
    if (!isExpectedError(err)) throw err;
    return { file, status: 'error', error: { code: err.code, message: err.message } };
  }
  if (!leaf) throw new Error('a loaded chain always has a leaf');
  const secondsToExpiry = Math.floor((leaf.notAfter.getTime() - now.getTime()) / 1000);
  let status: Status = 'ok';
  if (now < leaf.notBefore) status = 'not-yet-valid';
  else if (secondsToExpiry < 0) status = 'expired';
  else if (secondsToExpiry <= withinSeconds) status = 'expiring';
  return {
    file,
    status,
    spiffeId: spiffeIdOf(leaf)?.toString() ?? null,
    notBefore: leaf.notBefore.toISOString(),
    notAfter: leaf.notAfter.toISOString(),
    secondsToExpiry,
  };
}

function detail(r: FileResult, within: string): string {
  const id = r.spiffeId ?? '(no SPIFFE ID)';
  switch (r.status) {
    case 'ok':
      return `${id}  expires ${r.notAfter ?? ''} (${describeExpiry(r.secondsToExpiry ?? 0)})`;
    case 'expiring':
      return `${id}  expires ${r.notAfter ?? ''} (${describeExpiry(r.secondsToExpiry ?? 0)}), within ${within}`;
    case 'expired':
      return `${id}  expired ${r.notAfter ?? ''} (${describeExpiry(r.secondsToExpiry ?? 0)})`;
    case 'not-yet-valid':
      return `${id}  not valid before ${r.notBefore ?? ''}`;
    case 'error':
      return `${r.error?.code ?? ''}: ${r.error?.message ?? ''}`;
  }
}

/** checkExpiry is the `check-expiry` command: exit 0, 1 or 2 by how long certificates stay valid, for cron and CI. */
export const checkExpiry: Command = {
  name: NAME,
  help: HELP,
  async run(args: string[], io: CliIo): Promise<ExitCode> {
    const parsed = parseCommandArgs(
      NAME,
      args,
      { within: { type: 'string', default: '72h' }, json: { type: 'boolean', default: false } },
      { min: 1, max: Number.POSITIVE_INFINITY, what: 'certificate file' },
    );
    if (parsed.help) {
      io.out(HELP);
      return 0;
    }
    const withinSeconds = parseDuration('--within', parsed.values.within, { allowZero: true });
    const within = parsed.values.within;
    const now = new Date();
    const results: FileResult[] = [];
    for (const file of parsed.positionals) results.push(await checkFile(file, withinSeconds, now));

    const errors = results.filter((r) => r.status === 'error');
    const failing = results.filter((r) => r.status !== 'ok' && r.status !== 'error');
    const exitCode: ExitCode = errors.length > 0 ? 2 : failing.length > 0 ? 1 : 0;
    if (parsed.values.json) {
      printJson(io, { withinSeconds, ok: exitCode === 0, exitCode, results });
    } else {
      const good = results.filter((r) => r.status !== 'error');
      io.out(table(good.map((r) => [r.status.toUpperCase(), r.file, detail(r, within)])));
      if (failing.length > 0) {
        io.out(
          `${failing.length} of ${good.length} certificate${good.length === 1 ? '' : 's'} not valid for longer than ${within}: ` +
            `${failing.map((r) => r.file).join(', ')}\n`,
        );
      } else if (errors.length === 0) {
        const subject = good.length === 1 ? 'The certificate is' : `All ${good.length} certificates are`;
        io.out(`${subject} valid for longer than ${within}.\n`);
      }
    }
    for (const r of errors) {
      if (r.error) io.err(formatError(r.error.code, r.error.message));
    }
    return exitCode;
  },
};
