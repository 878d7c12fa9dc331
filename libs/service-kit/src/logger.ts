import { pino, type Logger as PinoLogger, type LoggerOptions } from 'pino';

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

/** createLogger is a pino logger with loggerOptions, for what a service logs outside its fastify app (e.g. while it waits for its identity). */
export function createLogger(service: string, level?: string): PinoLogger {
  return pino(loggerOptions(service, level));
}
