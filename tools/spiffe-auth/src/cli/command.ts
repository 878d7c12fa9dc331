import { parseArgs, type ParseArgsOptionsConfig } from 'node:util';
import { AuthError, isAuthError } from '@shop/auth/x509';
import { CliError, hintOf, type ReportedCode } from '../errors.ts';

/** CliIo is where a command writes: results to `out`, diagnostics to `err`. */
export interface CliIo {
  out(text: string): void;
  err(text: string): void;
}

/** processIo writes to the process's stdout and stderr. */
export const processIo: CliIo = {
  out: (text) => {
    process.stdout.write(text);
  },
  err: (text) => {
    process.stderr.write(text);
  },
};

/** ExitCode is what a command returns: 0 success, 1 a check failed (check-expiry), 2 an error. */
export type ExitCode = 0 | 1 | 2;

/** Command is one CLI command: its name as typed, help text and the code that runs it. */
export interface Command {
  /** name as typed, e.g. "cert issue". */
  name: string;
  /** help is the full text printed by --help. */
  help: string;
  /** run executes the command with the arguments after its name. */
  run(args: string[], io: CliIo): Promise<ExitCode>;
}

/** usageError makes an AUTH_ERR_CLI_USAGE error for `command`. */
export function usageError(command: string, message: string): CliError {
  return new CliError('AUTH_ERR_CLI_USAGE', `spiffe-auth ${command}: ${message}`);
}

/** prefixed puts `where` (a file name) in front of an expected error's message, keeping its code; other errors pass through. */
export function prefixed(where: string, err: unknown): unknown {
  if (err instanceof CliError) return new CliError(err.code, `${where}: ${err.message}`, { cause: err });
  return isAuthError(err) ? new AuthError(err.code, `${where}: ${err.message}`, { cause: err }) : err;
}

/** ParsedArgs are a command's option values and positionals, or `help` when --help was given. */
export type ParsedArgs<T extends ParseArgsOptionsConfig> =
  | { help: true }
  | {
      help: false;
      values: ReturnType<typeof parseArgs<{ options: T; allowPositionals: true; strict: true }>>['values'];
      positionals: string[];
    };

/**
 * parseCommandArgs parses `args` with node:util parseArgs (strict), adds
 * `--help`, and turns every parse problem into AUTH_ERR_CLI_USAGE naming the
 * command. `positionals` bounds the count of positional arguments.
 */
export function parseCommandArgs<T extends ParseArgsOptionsConfig>(
  command: string,
  args: string[],
  options: T,
  positionals: { min: number; max: number; what?: string } = { min: 0, max: 0 },
): ParsedArgs<T> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      options: { ...options, help: { type: 'boolean', short: 'h' } },
      allowPositionals: true,
      strict: true,
    });
  } catch (cause) {
    // parseArgs explains itself well, but over several lines; the first one names the problem.
    const first = ((cause as Error).message.split('\n')[0] ?? '').replace(/\.$/, '');
    throw new CliError('AUTH_ERR_CLI_USAGE', `spiffe-auth ${command}: ${first}`, { cause });
  }
  if ((parsed.values as { help?: boolean }).help === true) return { help: true };
  const n = parsed.positionals.length;
  const what = positionals.what ?? 'argument';
  if (n < positionals.min) throw usageError(command, `missing ${what}`);
  if (n > positionals.max) {
    const extra = parsed.positionals.slice(positionals.max).map((p) => JSON.stringify(p));
    throw usageError(command, `unexpected argument ${extra.join(' ')}`);
  }
  return {
    help: false,
    values: parsed.values,
    positionals: parsed.positionals,
  };
}

/** required returns a string option's value or fails with AUTH_ERR_CLI_USAGE naming it. */
export function required(command: string, flag: string, value: string | undefined): string {
  if (value === undefined || value === '') throw usageError(command, `--${flag} is required`);
  return value;
}

/** listValue splits comma-separated and repeated option values into one trimmed, de-duplicated list. */
export function listValue(values: string | string[] | undefined): string[] {
  const all = (Array.isArray(values) ? values : values === undefined ? [] : [values]).flatMap((v) => v.split(','));
  return [...new Set(all.map((v) => v.trim()).filter((v) => v !== ''))];
}

/** formatError renders an expected error for stderr: `error <CODE>: <message>` and the code's hint. */
export function formatError(code: ReportedCode, message: string): string {
  return `error ${code}: ${message}\nhint: ${hintOf(code)}\n`;
}

/** printJson writes `value` as indented JSON and a newline. */
export function printJson(io: CliIo, value: unknown): void {
  io.out(`${JSON.stringify(value, null, 2)}\n`);
}

/** table aligns rows of cells into columns separated by two spaces. */
export function table(rows: readonly (readonly string[])[]): string {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return rows
    .map((row) =>
      row
        .map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i] ?? 0)))
        .join('  ')
        .trimEnd(),
    )
    .map((line) => `${line}\n`)
    .join('');
}
