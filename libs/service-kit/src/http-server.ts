import { maxHeaderSize, STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type {
  ConnectionError,
  FastifyError,
  FastifyInstance,
  FastifyListenOptions,
  FastifyReply,
  FastifyRequest,
  FastifyServerOptions,
} from 'fastify';
import { traceRequests } from '@shop/auth/telemetry';
import { cutInput, ServiceError } from './errors.ts';
import type { ServiceMetrics } from './metrics.ts';

/** HTTP_LIMITS are the server timeouts and size limits every service applies against slow or greedy clients. */
export const HTTP_LIMITS = {
  /** bodyLimit in bytes; order bodies are small JSON. */
  bodyLimit: 64 * 1024,
  /** connectionTimeout closes a socket idle this long (ms). */
  connectionTimeout: 30_000,
  /** keepAliveTimeout for idle keep-alive connections (ms). */
  keepAliveTimeout: 10_000,
  /** requestTimeout bounds receiving one whole request (ms). */
  requestTimeout: 15_000,
  /** headersTimeout bounds receiving the headers (ms); Node's slowloris guard. */
  headersTimeout: 10_000,
} as const;

/** UNMATCHED_ROUTE is the `route` label of a request that matched no route: never the URL, which the caller chooses. */
export const UNMATCHED_ROUTE = 'unmatched';

/**
 * HTTP_PROTOCOL_ERRORS are the codes, with their HTTP status, a service
 * answers for requests that are not well-formed HTTP/1.x, before any route
 * runs. Every service's README lists them.
 */
export const HTTP_PROTOCOL_ERRORS = {
  /** BAD_REQUEST: Node's HTTP parser could not parse the request line or headers. */
  BAD_REQUEST: 400,
  /** MISSING_HOST: an HTTP/1.1 request without a Host header. */
  MISSING_HOST: 400,
  /** DUPLICATE_HOST: more than one Host header. */
  DUPLICATE_HOST: 400,
  /** HTTP_VERSION_REQUIRED: a request line without an HTTP version (HTTP/0.9 style). */
  HTTP_VERSION_REQUIRED: 400,
  /** BAD_URL: the path is not valid percent-encoded UTF-8. */
  BAD_URL: 400,
  /** REQUEST_TIMEOUT: the request did not arrive whole within the headers or request timeout. */
  REQUEST_TIMEOUT: 408,
  /** PATH_PARAMETER_TOO_LONG: a path parameter is longer than the router takes (100 characters). */
  PATH_PARAMETER_TOO_LONG: 414,
  /** HEADERS_TOO_LARGE: the request line and headers are larger than Node's header size limit. */
  HEADERS_TOO_LARGE: 431,
  /** HTTP_VERSION_NOT_SUPPORTED: a version other than HTTP/1.0 or HTTP/1.1 in the request line. */
  HTTP_VERSION_NOT_SUPPORTED: 505,
} as const;

/** HttpProtocolErrorCode is a code of HTTP_PROTOCOL_ERRORS. */
export type HttpProtocolErrorCode = keyof typeof HTTP_PROTOCOL_ERRORS;

interface ProtocolAnswer {
  status: number;
  code: HttpProtocolErrorCode;
  message: string;
}

function answer(code: HttpProtocolErrorCode, message: string): ProtocolAnswer {
  return { status: HTTP_PROTOCOL_ERRORS[code], code, message };
}

function clientErrorAnswer(err: ConnectionError): ProtocolAnswer {
  switch (err.code) {
    case 'HPE_HEADER_OVERFLOW':
      return answer(
        'HEADERS_TOO_LARGE',
        `the request line and headers are larger than ${maxHeaderSize} bytes; send fewer or shorter headers`,
      );
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return answer(
        'REQUEST_TIMEOUT',
        'the request did not arrive whole in time (headers, then body); send it without pauses',
      );
    default: {
      const reason = (err as ConnectionError & { reason?: unknown }).reason;
      const detail = typeof reason === 'string' && reason !== '' ? `${err.code}: ${reason}` : err.code;
      return answer(
        'BAD_REQUEST',
        `the request is not valid HTTP/1.1 (${detail}); send a request line "METHOD /path HTTP/1.1" and well-formed headers`,
      );
    }
  }
}

// fastify's clientErrorHandler (bound to the instance): a request Node's
// parser refuses (malformed, headers too large, too slow) gets the same
// `{ code, message }` body as every other error, and the connection closes.
function answerClientError(this: FastifyInstance, err: ConnectionError, socket: Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  // As Node's own handler does: answer only if no response has started on
  // this connection, or the client would read a corrupt one.
  const inFlight = (socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage;
  if (!socket.writable || inFlight?.headersSent === true) {
    socket.destroy();
    return;
  }
  const { status, code, message } = clientErrorAnswer(err);
  this.log.debug({ err: { code: err.code, message: err.message }, answer: code }, 'malformed request refused');
  const body = JSON.stringify({ code, message });
  const head = [
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}`,
    'content-type: application/json; charset=utf-8',
    `content-length: ${Buffer.byteLength(body)}`,
    'connection: close',
  ].join('\r\n');
  // An http.Server's sockets are half-open: end() alone would keep ours
  // until the client closes its side, so destroy it once the answer is out.
  socket.end(`${head}\r\n\r\n${body}`, () => socket.destroy());
}

// fastify's frameworkErrors: the router's own refusals (a path that does not
// decode, a too long path parameter) come before any hook and would answer
// fastify's `{ error, code, message, statusCode }`.
function answerFrameworkError(err: FastifyError, _request: FastifyRequest, reply: FastifyReply): void {
  const a =
    err.code === 'FST_ERR_BAD_URL'
      ? answer(
          'BAD_URL',
          'the request path is not valid percent-encoded UTF-8; encode reserved characters as %XX and a "%" itself as %25',
        )
      : err.code === 'FST_ERR_MAX_PARAM_LENGTH'
        ? answer('PATH_PARAMETER_TOO_LONG', 'a path parameter is longer than 100 characters; send a valid ID')
        : undefined;
  if (a) {
    void reply.code(a.status).send({ code: a.code, message: a.message });
    return;
  }
  reply.log.error({ err }, 'router failed');
  void reply.code(500).send({ code: 'INTERNAL', message: 'internal error; see the service log' });
}

// What Node's parser lets through but a strict server refuses.
function protocolProblem(raw: IncomingMessage): ProtocolAnswer | undefined {
  if (raw.httpVersionMajor === 0) {
    return answer(
      'HTTP_VERSION_REQUIRED',
      'the request line has no HTTP version (HTTP/0.9 is not served); send "METHOD /path HTTP/1.1"',
    );
  }
  if (raw.httpVersionMajor !== 1) {
    return answer(
      'HTTP_VERSION_NOT_SUPPORTED',
      `HTTP/${raw.httpVersion} is not served here; send HTTP/1.1 (or HTTP/1.0)`,
    );
  }
  let hosts = 0;
  for (let i = 0; i < raw.rawHeaders.length; i += 2) if (raw.rawHeaders[i]?.toLowerCase() === 'host') hosts++;
  if (hosts > 1) {
    // Node keeps the first Host and drops the others; a proxy in front may
    // have routed by another one. Two readings of one request are what
    // request smuggling is made of, so refuse instead of picking one.
    return answer('DUPLICATE_HOST', `the request has ${hosts} Host headers; send exactly one`);
  }
  if (hosts === 0 && raw.httpVersionMinor >= 1) {
    return answer('MISSING_HOST', 'an HTTP/1.1 request must have a Host header; send "Host: <host>[:<port>]"');
  }
  return undefined;
}

/**
 * serviceFastifyOptions are fastify's options with the limits above (merge
 * `https` in for mTLS), strict schemas (no type coercion, no unknown fields),
 * and `{ code, message }` answers to requests the HTTP parser or the router
 * refuse (HTTP_PROTOCOL_ERRORS).
 */
export function serviceFastifyOptions(extra: FastifyServerOptions = {}): FastifyServerOptions {
  const { ajv, ...rest } = extra;
  const strictAjv = {
    ...ajv,
    customOptions: {
      // "2" is not a quantity, [1] is not 1 and 123 is not a customer ID:
      // the caller hears about the wrong type instead of being charged for
      // what fastify's default coercion made of it. Unknown fields are an
      // error too (a typo in "quantity" must not silently order one), not
      // something to strip. Query strings and path parameters arrive as
      // strings: declare them `type: 'string'` with a pattern.
      coerceTypes: false,
      removeAdditional: false,
      ...ajv?.customOptions,
    },
  } as FastifyServerOptions['ajv'];
  return {
    bodyLimit: HTTP_LIMITS.bodyLimit,
    connectionTimeout: HTTP_LIMITS.connectionTimeout,
    keepAliveTimeout: HTTP_LIMITS.keepAliveTimeout,
    requestTimeout: HTTP_LIMITS.requestTimeout,
    // While draining, a request that arrives on an open keep-alive connection
    // is served (this instance still has all it needs) with `Connection:
    // close`, so the client reconnects to whoever holds the port now: a
    // hand-over to a new instance (npm run migrate) fails no request. With
    // fastify's default the client would get a bare 503 instead.
    return503OnClosing: false,
    clientErrorHandler: answerClientError,
    frameworkErrors: answerFrameworkError,
    ...rest,
    ajv: strictAjv,
  };
}

/**
 * installHttpBasics adds what every service's HTTP API needs: strict HTTP/1.x
 * (a Host-less HTTP/1.1 request, two Host headers or a request line without a
 * version are refused with HTTP_PROTOCOL_ERRORS), `{ code, message }` error
 * bodies (ServiceError as is, fastify's own 4xx with their code, 500s without
 * internals), the headers timeout, a server span per request (@shop/auth's
 * traceRequests), and per-request metrics labelled with the
 * route pattern and the caller's SPIFFE ID. Call it before registering other
 * hooks (the auth plugin), so a malformed request is refused as such first.
 */
export function installHttpBasics(app: FastifyInstance, metrics: ServiceMetrics): void {
  // First of all hooks: a server span per request (a no-op with tracing off), a refusal's included.
  traceRequests(app);
  app.server.headersTimeout = HTTP_LIMITS.headersTimeout;
  // Node answers a Host-less HTTP/1.1 request itself, with an empty body; the
  // hook below answers it with a code instead.
  // (An http.Server property Node reads per request; @types/node only lists the constructor option.)
  (app.server as { requireHostHeader?: boolean }).requireHostHeader = false;
  app.addHook('onRequest', async (request, reply) => {
    const problem = protocolProblem(request.raw);
    if (!problem) return;
    await reply
      .code(problem.status)
      .header('connection', 'close')
      .send({ code: problem.code, message: problem.message });
  });
  app.setErrorHandler((err: FastifyError | ServiceError, request, reply) => {
    if (err instanceof ServiceError) {
      void reply
        .code(err.statusCode)
        .headers(err.headers)
        .send({ code: err.code, message: err.message, ...err.details });
      return;
    }
    if (err.validation) {
      void reply.code(400).send({ code: 'INVALID_REQUEST', message: `request ${err.message}` });
      return;
    }
    const status = err.statusCode ?? 500;
    if (status < 500) {
      void reply.code(status).send({ code: err.code, message: err.message });
      return;
    }
    request.log.error({ err }, 'request failed');
    void reply.code(500).send({ code: 'INTERNAL', message: 'internal error; see the service log' });
  });
  app.setNotFoundHandler((request, reply) => {
    void reply.code(404).send({ code: 'NOT_FOUND', message: `no route ${request.method} ${cutInput(request.url)}` });
  });
  app.addHook('onResponse', (request, reply, done) => {
    const route = request.routeOptions.url ?? UNMATCHED_ROUTE;
    const caller = request.peer?.id.toString() ?? 'none';
    metrics.requests.inc({ protocol: 'http', route, method: request.method, status: String(reply.statusCode), caller });
    metrics.requestSeconds.observe({ protocol: 'http', route }, reply.elapsedTime / 1000);
    done();
  });
}

/** ListenAddress is where a server listens. */
export interface ListenAddress {
  host: string;
  port: number;
  /** reusePort: SO_REUSEPORT, so a new instance can bind before this one drains. Default: false. */
  reusePort?: boolean;
}

/**
 * listen starts `app` on `where`. fastify hands its listen options to
 * net.Server.listen() unchanged, which takes reusePort (Node >= 22.12), but
 * fastify's types do not list it yet, hence the widening here.
 */
export async function listen(app: FastifyInstance, where: ListenAddress): Promise<void> {
  const options: FastifyListenOptions & { reusePort: boolean } = {
    host: where.host,
    port: where.port,
    reusePort: where.reusePort === true,
  };
  await app.listen(options);
}
