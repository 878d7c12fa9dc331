import { serviceErrors } from '@shop/service-kit';

/**
 * CONSOLE_ERRORS lists every code the console answers with, its HTTP status
 * and what to do; README.md#error-codes documents each one and
 * test/errors-doc.test.ts keeps the two in step.
 */
export const CONSOLE_ERRORS = {
  CONSOLE_INVALID_REQUEST: { http: 400, hint: 'Fix the named field.' },
  CONSOLE_OTLP_INVALID: {
    http: 400,
    hint: 'Send an OTLP/HTTP JSON ExportTraceServiceRequest: an object with a resourceSpans array.',
  },
  CONSOLE_OTLP_UNSUPPORTED: {
    http: 415,
    hint: 'The console takes OTLP/HTTP JSON only: set OTEL_EXPORTER_OTLP_PROTOCOL=http/json.',
  },
  CONSOLE_TOGGLE_UNKNOWN: { http: 404, hint: 'Use a toggle the page (GET /api/model, `toggles`) lists.' },
  CONSOLE_TOGGLE_UNAVAILABLE: {
    http: 409,
    hint: 'The toggle needs another mode (files or SPIFFE) or the orchestrator (npm start); its `available` field says why.',
  },
  CONSOLE_TOGGLE_FAILED: {
    http: 502,
    hint: 'The service or the orchestrator refused; the message says which and why.',
  },
  NOT_FOUND: { http: 404, hint: 'Check the method and path.' },
  INTERNAL: { http: 500, hint: 'A bug in the console: its log has the details.' },
} as const;

/** ConsoleErrorCode is a code of CONSOLE_ERRORS. */
export type ConsoleErrorCode = keyof typeof CONSOLE_ERRORS;

/** consoleError makes the ServiceError of a code of CONSOLE_ERRORS, with its HTTP status and hint. */
export const consoleError = serviceErrors(CONSOLE_ERRORS);
