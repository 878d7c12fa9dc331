import { CliError } from '../errors.ts';

const UNIT_SECONDS = { s: 1, m: 60, h: 3600, d: 86_400 } as const;
// Far beyond any sensible certificate lifetime, and well inside what a Date can hold.
const MAX_SECONDS = 36_500 * 86_400;
const DURATION_RE = /^(?:\d+[smhd])+$/;

/**
 * parseDuration reads a duration such as "90s", "15m", "72h", "30d" or "1h30m"
 * given for `flag` and returns it in seconds; `allowZero` admits "0s".
 */
export function parseDuration(flag: string, value: string, options: { allowZero?: boolean } = {}): number {
  const invalid = (problem: string): CliError =>
    new CliError('AUTH_ERR_CLI_DURATION_INVALID', `${flag} ${JSON.stringify(value)} ${problem}`);
  if (!DURATION_RE.test(value)) {
    throw invalid('must be a whole number followed by s, m, h or d, e.g. 90s, 15m, 72h or 30d');
  }
  let seconds = 0;
  for (const m of value.matchAll(/(\d+)([smhd])/g)) {
    seconds += Number(m[1]) * UNIT_SECONDS[m[2] as keyof typeof UNIT_SECONDS];
  }
  if (!Number.isSafeInteger(seconds) || seconds > MAX_SECONDS) throw invalid('must be at most 36500d');
  if (seconds === 0 && options.allowZero !== true) throw invalid('must be longer than zero');
  return seconds;
}

/** formatDuration renders seconds as its two largest units, e.g. "29d 23h" or "59m 10s"; negative values as their magnitude. */
export function formatDuration(seconds: number): string {
  let rest = Math.abs(Math.trunc(seconds));
  const parts: string[] = [];
  for (const [unit, size] of [
    ['d', 86_400],
    ['h', 3600],
    ['m', 60],
    ['s', 1],
  ] as const) {
    const n = Math.floor(rest / size);
    rest -= n * size;
    if (n > 0 || (unit === 's' && parts.length === 0)) parts.push(`${n}${unit}`);
    if (parts.length === 2) break;
  }
  return parts.join(' ');
}

/** describeExpiry says when a certificate expires relative to now, e.g. "in 29d 23h" or "3h 2m ago". */
export function describeExpiry(secondsToExpiry: number): string {
  return secondsToExpiry >= 0 ? `in ${formatDuration(secondsToExpiry)}` : `${formatDuration(secondsToExpiry)} ago`;
}
