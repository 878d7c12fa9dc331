import type { FastifyInstance } from 'fastify';
import { buildConsoleApp } from './app.ts';
import type { ConsoleConfig } from './config.ts';
import { ShopConsole, type ConsoleOptions } from './console.ts';

/** RunningConsole is a listening console. */
export interface RunningConsole {
  /** url is the page's address, e.g. http://127.0.0.1:3000. */
  url: string;
  console: ShopConsole;
  app: FastifyInstance;
  /** close stops polling and the server. */
  close(): Promise<void>;
}

/** startConsole starts polling and listens on config.host:config.port (0 picks a free port). */
export async function startConsole(
  config: Readonly<ConsoleConfig>,
  options: ConsoleOptions = {},
): Promise<RunningConsole> {
  const c = new ShopConsole(config, options);
  const app = buildConsoleApp(c);
  await app.listen({ host: config.host, port: config.port });
  c.start();
  const address = app.server.address();
  const port = typeof address === 'object' && address !== null ? address.port : config.port;
  const url = `http://${config.host}:${port}`;
  c.receiverUrl = url;
  return {
    url,
    console: c,
    app,
    close: async () => {
      await c.stop();
      await app.close();
    },
  };
}
