import { isIPv4, isIPv6 } from 'node:net';
import { AuthError } from '../errors.ts';

/** SOCKET_ENV is the environment variable that holds the Workload API endpoint address (SPIFFE Workload Endpoint §4). */
export const SOCKET_ENV = 'SPIFFE_ENDPOINT_SOCKET';

const EXPECTED = 'expected unix:///absolute/path/to/socket or tcp://<IP address>:<port>';

// RFC 3986 appendix B: splits any URI reference into scheme, authority, path,
// query and fragment without normalising it (WHATWG URL would resolve "..").
const URI_RE = /^(?:([^:/?#]+):)?(?:\/\/([^/?#]*))?([^?#]*)(?:\?([^#]*))?(?:#(.*))?$/;

/** WorkloadEndpoint is a parsed Workload API address and the grpc-js target that dials it. */
export interface WorkloadEndpoint {
  /** address is the address as given, e.g. "unix:///run/spire/agent.sock". */
  address: string;
  /** target is the grpc-js target: "unix:/abs/path", "ipv4:1.2.3.4:8081" or "ipv6:[::1]:8081". */
  target: string;
  /** transport is "unix" or "tcp". */
  transport: 'unix' | 'tcp';
  /** socketPath is the absolute socket path, for unix addresses. */
  socketPath?: string;
}

function invalid(input: string, problem: string, where?: string, cause?: unknown): AuthError {
  const shown = input.length > 200 ? `${input.slice(0, 200)}…` : input;
  const source = where === undefined ? '' : ` (from ${where})`;
  return new AuthError(
    'AUTH_ERR_WORKLOAD_ENDPOINT_INVALID',
    `invalid Workload API address ${JSON.stringify(shown)}${source}: ${problem}; ${EXPECTED}`,
    cause === undefined ? undefined : { cause },
  );
}

function parseUnix(input: string, authority: string | undefined, path: string, where?: string): WorkloadEndpoint {
  if (authority !== undefined && authority !== '') {
    if (authority.includes('@')) throw invalid(input, 'a unix address must not include user info', where);
    throw invalid(input, `a unix address must not include a host ("${authority}"); use three slashes`, where);
  }
  if (path === '' || path === '/') throw invalid(input, 'a unix address must include the socket path', where);
  if (!path.startsWith('/')) throw invalid(input, `a unix socket path must be absolute ("${path}")`, where);
  if (path.endsWith('/')) throw invalid(input, 'a unix socket path must name a socket, not a directory', where);
  let socketPath: string;
  try {
    socketPath = decodeURIComponent(path);
  } catch (cause) {
    throw invalid(input, 'the socket path has a malformed percent-escape', where, cause);
  }
  if (socketPath.includes('\0')) throw invalid(input, 'the socket path must not contain NUL', where);
  return { address: input, target: `unix:${socketPath}`, transport: 'unix', socketPath };
}

function parseTcp(input: string, authority: string | undefined, path: string, where?: string): WorkloadEndpoint {
  if (authority === undefined || authority === '') {
    throw invalid(input, 'a tcp address must include an IP address and a port', where);
  }
  if (authority.includes('@')) throw invalid(input, 'a tcp address must not include user info', where);
  if (path !== '') throw invalid(input, `a tcp address must not include a path ("${path}")`, where);
  let host: string;
  let port: string | undefined;
  if (authority.startsWith('[')) {
    const close = authority.indexOf(']');
    if (close === -1) throw invalid(input, 'the IPv6 address is missing its closing "]"', where);
    host = authority.slice(1, close);
    const rest = authority.slice(close + 1);
    if (rest !== '' && !rest.startsWith(':')) throw invalid(input, 'unexpected text after the IPv6 address', where);
    port = rest === '' ? undefined : rest.slice(1);
    if (!isIPv6(host)) throw invalid(input, `"${host}" is not an IPv6 address`, where);
  } else {
    const colon = authority.lastIndexOf(':');
    host = colon === -1 ? authority : authority.slice(0, colon);
    port = colon === -1 ? undefined : authority.slice(colon + 1);
    if (!isIPv4(host)) {
      throw invalid(
        input,
        isIPv6(authority)
          ? 'an IPv6 address must be written in brackets, e.g. tcp://[::1]:8081'
          : `the host must be an IP address, not a name ("${host}")`,
        where,
      );
    }
  }
  if (port === undefined || port === '') throw invalid(input, 'a tcp address must include a port', where);
  if (!/^[0-9]{1,5}$/.test(port) || Number(port) < 1 || Number(port) > 65535) {
    throw invalid(input, `the port must be a number from 1 to 65535 ("${port}")`, where);
  }
  const portNumber = Number(port);
  const target = isIPv6(host) ? `ipv6:[${host}]:${portNumber}` : `ipv4:${host}:${portNumber}`;
  return { address: input, target, transport: 'tcp' };
}

/**
 * parseEndpointAddress checks a Workload API address as the SPIFFE Workload
 * Endpoint standard §4 defines it and returns the grpc-js target for it:
 * `unix:///absolute/path` (no host, query, fragment or user info) or
 * `tcp://<IP literal>:<port>` (no host name, path, query or fragment).
 * `where` names where the address came from, for the error message.
 */
export function parseEndpointAddress(address: string, where?: string): WorkloadEndpoint {
  if (address === '') throw invalid(address, 'the address is empty', where);
  for (let i = 0; i < address.length; i++) {
    const c = address.charCodeAt(i);
    if (c <= 0x20 || c === 0x7f) {
      throw invalid(address, 'the address must not contain spaces or control characters', where);
    }
  }
  const m = URI_RE.exec(address);
  const scheme = m?.[1];
  const authority = m?.[2];
  const path = m?.[3] ?? '';
  if (scheme === undefined) throw invalid(address, 'the scheme is missing', where);
  if (m?.[4] !== undefined) throw invalid(address, 'the address must not include a query', where);
  if (m?.[5] !== undefined) throw invalid(address, 'the address must not include a fragment', where);
  // RFC 3986 §3.1: schemes are case-insensitive.
  switch (scheme.toLowerCase()) {
    case 'unix':
      return parseUnix(address, authority, path, where);
    case 'tcp':
      return parseTcp(address, authority, path, where);
    default:
      throw invalid(address, `the scheme must be "unix" or "tcp", not "${scheme}"`, where);
  }
}

/** targetFromAddress returns the grpc-js target string for a Workload API address, or throws AUTH_ERR_WORKLOAD_ENDPOINT_INVALID. */
export function targetFromAddress(address: string): string {
  return parseEndpointAddress(address).target;
}

/**
 * endpointFromEnv parses `SPIFFE_ENDPOINT_SOCKET` from `env` (surrounding
 * blanks dropped); undefined when it is unset or blank. The one place the
 * library reads that variable; an invalid value's error names it.
 */
export function endpointFromEnv(env: NodeJS.ProcessEnv = process.env): WorkloadEndpoint | undefined {
  const value = env[SOCKET_ENV]?.trim();
  if (value === undefined || value === '') return undefined;
  return parseEndpointAddress(value, SOCKET_ENV);
}

/** resolveEndpoint picks the explicit `address`, else `SPIFFE_ENDPOINT_SOCKET`, or throws AUTH_ERR_WORKLOAD_ENDPOINT_MISSING. */
export function resolveEndpoint(address?: string, env: NodeJS.ProcessEnv = process.env): WorkloadEndpoint {
  if (address !== undefined) return parseEndpointAddress(address, 'the address option');
  const fromEnv = endpointFromEnv(env);
  if (fromEnv === undefined) {
    throw new AuthError(
      'AUTH_ERR_WORKLOAD_ENDPOINT_MISSING',
      `no Workload API address: pass the address option or set ${SOCKET_ENV} (e.g. unix:///run/spire/agent.sock)`,
    );
  }
  return fromEnv;
}
