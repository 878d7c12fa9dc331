import pkg from '../../package.json' with { type: 'json' };
import { CliError, isExpectedError } from '../errors.ts';
import { formatError, usageError, type CliIo, type Command } from './command.ts';

interface Entry {
  name: string;
  summary: string;
  // Commands load lazily: `inspect` need not pay for gRPC, nor `fetch` for the certificate builder.
  load(): Promise<Command>;
}

const COMMANDS: readonly Entry[] = [
  {
    name: 'ca create',
    summary: 'create a development root CA for a trust domain',
    load: async () => (await import('./ca-create.ts')).caCreate,
  },
  {
    name: 'cert issue',
    summary: 'issue an X.509-SVID for a service from a development CA',
    load: async () => (await import('./cert-issue.ts')).certIssue,
  },
  {
    name: 'dev-certs',
    summary: 'create or renew a development CA and a certificate per service (idempotent)',
    load: async () => (await import('./dev-certs.ts')).devCerts,
  },
  {
    name: 'inspect',
    summary: 'show a certificate chain and whether its leaf is a valid X.509-SVID',
    load: async () => (await import('./inspect.ts')).inspect,
  },
  {
    name: 'check-expiry',
    summary: 'exit 1 if a certificate expires within a duration (for cron and CI)',
    load: async () => (await import('./check-expiry.ts')).checkExpiry,
  },
  {
    name: 'fetch',
    summary: 'fetch the X.509-SVIDs and bundles from the SPIFFE Workload API',
    load: async () => (await import('./fetch.ts')).fetchCommand,
  },
];

const GROUPS = new Set(COMMANDS.filter((c) => c.name.includes(' ')).map((c) => c.name.split(' ')[0] ?? ''));

function topHelp(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return `Usage: spiffe-auth <command> [options]

Development PKI and SPIFFE tooling for @shop/auth: replaces the usual openssl recipes.

Commands:
${COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`).join('\n')}

Run "spiffe-auth <command> --help" for a command's options. Exit status: 0 success,
1 a check failed (check-expiry), 2 an error (bad input; the message says which), 3 a bug.
`;
}

function groupHelp(group: string): string {
  const members = COMMANDS.filter((c) => c.name.startsWith(`${group} `));
  return `Usage: spiffe-auth ${group} <subcommand> [options]\n\nSubcommands:\n${members
    .map((c) => `  ${c.name}  ${c.summary}`)
    .join('\n')}\n`;
}

function find(args: string[]): { entry: Entry; rest: string[] } | undefined {
  const [first, second] = args;
  const two = COMMANDS.find((c) => c.name === `${first ?? ''} ${second ?? ''}`);
  if (two) return { entry: two, rest: args.slice(2) };
  const one = COMMANDS.find((c) => c.name === first);
  return one ? { entry: one, rest: args.slice(1) } : undefined;
}

async function dispatch(args: string[], io: CliIo): Promise<number> {
  const [first, second] = args;
  if (first === undefined) {
    io.err(topHelp());
    return 2;
  }
  if (first === '--help' || first === '-h' || (first === 'help' && args.length === 1)) {
    io.out(topHelp());
    return 0;
  }
  if (first === '--version' || first === '-v') {
    io.out(`${pkg.version}\n`);
    return 0;
  }
  if (first === 'help') return dispatch([...args.slice(1), '--help'], io);
  const found = find(args);
  if (found) return found.entry.load().then((command) => command.run(found.rest, io));
  if (GROUPS.has(first)) {
    if (second === undefined) {
      io.err(groupHelp(first));
      return 2;
    }
    if (second === '--help' || second === '-h') {
      io.out(groupHelp(first));
      return 0;
    }
    throw usageError(first, `unknown subcommand ${JSON.stringify(second)}; run "spiffe-auth ${first} --help"`);
  }
  throw new CliError(
    'AUTH_ERR_CLI_USAGE',
    `spiffe-auth: unknown command ${JSON.stringify(first)}; run "spiffe-auth --help" for the list`,
  );
}

/**
 * runCli runs the command named by `args` and returns the exit status:
 * expected errors (CliError, AuthError) become `error <CODE>: <message>` and a hint on
 * stderr with status 2; anything else is a bug, shown with its stack, status 3.
 */
export async function runCli(args: string[], io: CliIo): Promise<number> {
  try {
    return await dispatch(args, io);
  } catch (err) {
    if (isExpectedError(err)) {
      io.err(formatError(err.code, err.message));
      return 2;
    }
    io.err(
      `error: unexpected failure, please report it: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
    );
    return 3;
  }
}
