import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import Fastify, { type FastifyError, type FastifyInstance } from 'fastify';
import { ServiceError } from '@shop/service-kit';
import type { ShopConsole } from './console.ts';
import { CONSOLE_ERRORS, consoleError, type ConsoleErrorCode } from './errors.ts';
import { spansOfExport } from './trace-store.ts';

/** PUBLIC_DIR holds the page: plain HTML, CSS and one script, no build step. */
export const PUBLIC_DIR = join(import.meta.dirname, '..', 'public');

/** OTLP_BODY_LIMIT is the largest OTLP export accepted (the SDK's batches stay well below it). */
export const OTLP_BODY_LIMIT = 16 * 1024 * 1024;

const PAGE_FILES = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/console.js': { file: 'console.js', type: 'text/javascript; charset=utf-8' },
  '/console.css': { file: 'console.css', type: 'text/css; charset=utf-8' },
} as const;

function hintOf(code: string): string | undefined {
  return code in CONSOLE_ERRORS ? CONSOLE_ERRORS[code as ConsoleErrorCode].hint : undefined;
}

/**
 * buildConsoleApp builds the console's HTTP server (not listening): the page
 * (`/`, `/console.js`, `/console.css`), its model (`GET /api/model`), the
 * toggles (`POST /api/toggles/:name`) and the OTLP/HTTP JSON receiver
 * (`POST /v1/traces`).
 */
export function buildConsoleApp(c: ShopConsole): FastifyInstance {
  const app = Fastify({ logger: false });
  // Read once: three small files, served as they are (no static-file plugin needed for them).
  for (const [path, { file, type }] of Object.entries(PAGE_FILES)) {
    const body = readFileSync(join(PUBLIC_DIR, file));
    app.get(path, (_req, reply) => reply.type(type).header('cache-control', 'no-store').send(body));
  }
  app.get('/api/model', () => c.model());

  // OTLP/HTTP: JSON only; protobuf gets a 415 that says which variable to set.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser(
    'application/json',
    { parseAs: 'string', bodyLimit: OTLP_BODY_LIMIT },
    (_req, body, done) => {
      try {
        done(null, body === '' ? {} : (JSON.parse(body as string) as unknown));
      } catch (err) {
        (err as FastifyError).statusCode = 400;
        done(err as FastifyError, undefined);
      }
    },
  );
  app.addContentTypeParser('*', { bodyLimit: OTLP_BODY_LIMIT }, (_req, _payload, done) => {
    done(null, undefined);
  });
  app.post('/v1/traces', (req) => {
    const type = req.headers['content-type'] ?? '';
    if (!type.startsWith('application/json')) {
      throw consoleError(
        'CONSOLE_OTLP_UNSUPPORTED',
        `content-type ${JSON.stringify(type.slice(0, 64))} is not supported: OTLP/HTTP JSON (application/json) only`,
      );
    }
    const spans = spansOfExport(req.body);
    if (spans === undefined)
      throw consoleError(
        'CONSOLE_OTLP_INVALID',
        'the body must be an ExportTraceServiceRequest with a resourceSpans array',
      );
    c.traces.add(spans);
    // ExportTraceServiceResponse: everything accepted.
    return {};
  });

  app.post<{ Params: { name: string } }>('/api/toggles/:name', async (req) => {
    const body = req.body ?? {};
    if (typeof body !== 'object' || Array.isArray(body))
      throw consoleError('CONSOLE_INVALID_REQUEST', 'the body must be a JSON object (the toggle’s inputs)');
    const message = await c.runToggle(req.params.name, body as Record<string, unknown>);
    return { ok: true, message };
  });

  app.setNotFoundHandler((req, reply) =>
    reply.code(404).send({
      code: 'NOT_FOUND',
      message: `no route ${req.method} ${req.url.slice(0, 64)}`,
      hint: hintOf('NOT_FOUND'),
    }),
  );
  app.setErrorHandler((err: FastifyError | ServiceError, _req, reply) => {
    if (err instanceof ServiceError)
      return reply.code(err.statusCode).send({ code: err.code, message: err.message, hint: hintOf(err.code) });
    const status = typeof err.statusCode === 'number' && err.statusCode < 500 ? err.statusCode : 500;
    const code = status === 413 ? 'CONSOLE_OTLP_INVALID' : 'CONSOLE_INVALID_REQUEST';
    if (status >= 500)
      return reply.code(500).send({ code: 'INTERNAL', message: 'internal error', hint: hintOf('INTERNAL') });
    return reply.code(status === 413 ? 413 : 400).send({ code, message: err.message, hint: hintOf(code) });
  });
  return app;
}
