#!/usr/bin/env node
// The console on its own (e.g. `docker compose up`): it reads the services
// named by CONSOLE_SERVICES and receives their spans. Toggles that need the
// orchestrator (stop a SPIRE agent, let a certificate expire) come with
// `npm start`, which runs the console in its own process instead.
import { createLogger, onSignals } from '@shop/service-kit';
import { loadConsoleConfig } from './config.ts';
import { startConsole } from './start-console.ts';

let config;
try {
  config = loadConsoleConfig();
} catch (err) {
  process.stderr.write(
    `console: failed to start: ${(err as { code?: string }).code ?? ''}: ${(err as Error).message}\n`,
  );
  process.exit(1);
}
const log = createLogger('console');
const running = await startConsole(config);
log.info(
  { url: running.url, services: Object.fromEntries(config.services.map((s) => [s.name, s.opsUrl])) },
  'console started',
);
onSignals([{ name: 'close console', run: () => running.close() }], log);
