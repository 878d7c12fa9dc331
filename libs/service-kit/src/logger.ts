import type { LoggerOptions } from 'pino';

/**
 * loggerOptions are the pino options every service uses: JSON lines, the
 * service name on every line, and secrets redacted wherever they appear.
 */
export function loggerOptions(service: string, level = process.env.LOG_LEVEL ?? 'info'): LoggerOptions {
  return {
    level,
    base: { service },
    redact: {
      paths: [
        'req.headers.authorization',
        'req.headers.cookie',
        'req.headers["idempotency-key"]',
        '*.card_number',
        '*.privateKey',
        '*.key',
      ],
      censor: '[redacted]',
    },
  };
}
