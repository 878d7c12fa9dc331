// Raw HTTP/1.x over a real socket, for requests no HTTP client would send
// (no Host, two Hosts, no version, oversized headers) and for reading exactly
// what the server wrote back.
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';

/** RawTarget is where rawHttp connects: plain TCP, or TLS with `tls` options (e.g. a client certificate). */
export interface RawTarget {
  port: number;
  host?: string;
  tls?: ConnectionOptions;
}

/** RawAnswer is the first response read from the connection. */
export interface RawAnswer {
  /** status is 0 when the server closed without answering. */
  status: number;
  headers: Record<string, string>;
  body: string;
  /** closed is true when the server closed the connection after (or instead of) answering. */
  closed: boolean;
}

/** RawOptions shape one exchange. */
export interface RawOptions {
  /** end half-closes our side after writing, as a client that has nothing more to send. Default: false. */
  end?: boolean;
  /** timeoutMs gives up waiting for an answer or for the close. Default: 3000. */
  timeoutMs?: number;
}

interface Parsed {
  status: number;
  headers: Record<string, string>;
  body: string;
  complete: boolean;
}

function parse(buf: Buffer): Parsed | undefined {
  const end = buf.indexOf('\r\n\r\n');
  if (end < 0) return undefined;
  const [statusLine = '', ...lines] = buf.subarray(0, end).toString('latin1').split('\r\n');
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine)?.[1] ?? 0);
  const headers: Record<string, string> = {};
  for (const l of lines) {
    const i = l.indexOf(':');
    headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
  }
  const rest = buf.subarray(end + 4);
  const length = headers['content-length'] === undefined ? undefined : Number(headers['content-length']);
  if (length !== undefined) {
    return { status, headers, body: rest.subarray(0, length).toString('utf8'), complete: rest.length >= length };
  }
  return { status, headers, body: rest.toString('utf8'), complete: false };
}

/**
 * rawHttp writes `data` as is to a fresh connection and resolves with the
 * first response once it is complete and, if the server said `connection:
 * close` or sent no length, once the server closed (or the timeout passed).
 * The connection is always destroyed before it resolves.
 */
export function rawHttp(target: RawTarget, data: string | Buffer, options: RawOptions = {}): Promise<RawAnswer> {
  const host = target.host ?? '127.0.0.1';
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    let closed = false;
    let settled = false;
    const socket: Socket = target.tls
      ? tlsConnect({ host, port: target.port, rejectUnauthorized: false, ...target.tls }, send)
      : netConnect({ host, port: target.port }, send);
    const timer = setTimeout(finish, options.timeoutMs ?? 3000);
    function send(): void {
      if (options.end === true) socket.end(data);
      else socket.write(data);
    }
    function finish(): void {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      const p = parse(buf);
      resolve({ status: p?.status ?? 0, headers: p?.headers ?? {}, body: p?.body ?? '', closed });
    }
    socket.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      const p = parse(buf);
      if (p?.complete && p.headers.connection?.toLowerCase() !== 'close') finish();
    });
    socket.on('end', () => {
      closed = true;
      finish();
    });
    socket.on('close', () => {
      closed = true;
      finish();
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      // A reset after the answer is the server closing hard; before any byte it is a failure to connect.
      if (buf.length > 0 || err.code === 'ECONNRESET') {
        closed = true;
        finish();
      } else if (!settled) {
        settled = true;
        clearTimeout(timer);
        reject(err);
      }
    });
  });
}

/** JsonBody is a parsed JSON object body; error bodies have `code` and `message`. */
export type JsonBody = Record<string, unknown> & { code?: string; message?: string };

/** jsonOf parses a raw answer's body as a JSON object, saying what came instead when it is not one. */
export function jsonOf(answer: RawAnswer): JsonBody {
  let parsed: unknown;
  try {
    parsed = JSON.parse(answer.body);
  } catch {
    parsed = undefined;
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new Error(`expected a JSON object body, got status ${answer.status} and ${JSON.stringify(answer.body)}`);
  }
  return parsed as JsonBody;
}

/** request builds a request head: `request('GET', '/x', ['Host: a'])` → "GET /x HTTP/1.1\r\nHost: a\r\n\r\n". */
export function request(method: string, path: string, headers: string[], version = 'HTTP/1.1'): string {
  return [`${method} ${path} ${version}`, ...headers, '', ''].join('\r\n');
}
