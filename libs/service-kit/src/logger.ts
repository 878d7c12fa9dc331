import { pino, type DestinationStream, type Logger as PinoLogger, type LoggerOptions } from 'pino';

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

/**
 * createLogger is the one logger of a service process: pino with
 * loggerOptions, writing JSON lines to stdout (or to `destination`, where a
 * test reads them). runService makes it, and the service's fastify apps and
 * gRPC server log through it.
 */
export function createLogger(service: string, level?: string, destination?: DestinationStream): PinoLogger {
  return destination ? pino(loggerOptions(service, level), destination) : pino(loggerOptions(service, level));
}
