/**
 * Errors of the spiffe-auth CLI itself (usage, durations, service names, CA
 * directories, output files), with stable codes like @shop/auth's: callers
 * and scripts match on `code`, each code has a `hint`, and docs/errors.md
 * lists them (a test keeps the two in step). The CLI also reports the
 * library's AuthErrors (a certificate that does not parse, a key that does
 * not match, the Workload API) under their own codes.
 */
import { errorHints, isAuthError, type AuthError, type AuthErrorCode } from '@shop/auth/x509';

/** cliErrorHints maps each error code of the CLI itself to what the user should do about it. */
export const cliErrorHints = {
  AUTH_ERR_CLI_USAGE: 'Run the command with --help to see its arguments and options.',
  AUTH_ERR_CLI_DURATION_INVALID:
    'Write a duration as a whole number and a unit s, m, h or d, e.g. "90s", "15m", "72h" or "30d" (units may be combined: "1h30m").',
  AUTH_ERR_CLI_SERVICE_INVALID:
    'Name the service with one SPIFFE ID path segment of at most 200 bytes of letters, digits, ".", "-" and "_" (not ".", ".." or "ca"), e.g. "payment".',
  AUTH_ERR_CLI_CA_INVALID:
    'Point --ca-dir at a directory made by "spiffe-auth ca create" (ca.crt.pem, ca.key.pem, ca.json) whose CA is still valid, or create a new CA.',
  AUTH_ERR_CLI_OUTPUT_EXISTS: 'Pass --force to replace the existing files, or choose another --out-dir.',
  AUTH_ERR_CLI_OUTPUT_UNWRITABLE: 'Check that the output directory can be created and written by this user.',
  AUTH_ERR_CLI_LOCKED:
    'Another spiffe-auth is writing to the same directory; wait for it, or delete the named lock file if no such process runs.',
} as const;

/** CliErrorCode is one of the stable codes of the CLI itself. */
export type CliErrorCode = keyof typeof cliErrorHints;

/** CliError is an error of the CLI itself: a stable code, a message naming the input, and a hint. */
export class CliError extends Error {
  /** code is stable across versions; match on it. */
  readonly code: CliErrorCode;
  /** hint says what to do about it. */
  readonly hint: string;

  constructor(code: CliErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'CliError';
    this.code = code;
    this.hint = cliErrorHints[code];
  }
}

/** ReportedCode is any code the CLI reports: one of its own or one of @shop/auth's. */
export type ReportedCode = CliErrorCode | AuthErrorCode;

/** ExpectedError is an error the CLI reports as `error <CODE>: <message>` with exit status 2. */
export type ExpectedError = CliError | AuthError;

/** isExpectedError tells whether `err` is a CliError or an AuthError, i.e. bad input rather than a bug. */
export function isExpectedError(err: unknown): err is ExpectedError {
  return err instanceof CliError || isAuthError(err);
}

/** hintOf returns the hint of `code`, whether the CLI's or the library's. */
export function hintOf(code: ReportedCode): string {
  return code in cliErrorHints ? cliErrorHints[code as CliErrorCode] : errorHints[code as AuthErrorCode];
}
