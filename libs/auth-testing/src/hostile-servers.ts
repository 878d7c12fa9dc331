// Servers that present whatever certificate a test case brings and check no
// client certificate, so our clients' own verification is what is tested.
import { once } from 'node:events';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { echoService, type WhoAmIReply } from './echo-service.ts';

/** ServerCertificate is the PEM certificate (chain) and private key a test server presents. */
export interface ServerCertificate {
  certPem: string;
  keyPem: string;
}

/** startHostileHttpsServer listens on 127.0.0.1 over TLS with `cert` and answers every request with `{"ok":true}`. */
export async function startHostileHttpsServer(
  cert: ServerCertificate,
): Promise<{ url: string; close: () => Promise<void> }> {
  const server = createHttpsServer({ cert: cert.certPem, key: cert.keyPem }, (_req, res) => {
    res.setHeader('content-type', 'application/json');
    res.end('{"ok":true}');
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    url: `https://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => {
          resolve();
        });
      }),
  };
}

/** startHostileGrpcServer serves the echo service on 127.0.0.1 over TLS with `cert`, answering every call with `{ caller }`. */
export async function startHostileGrpcServer(
  cert: ServerCertificate,
  caller: string,
): Promise<{ server: grpc.Server; port: number }> {
  const server = new grpc.Server();
  server.addService(echoService, {
    whoAmI: (_call: unknown, cb: grpc.sendUnaryData<WhoAmIReply>) => {
      cb(null, { caller });
    },
  });
  const creds = grpc.ServerCredentials.createSsl(
    null,
    [{ private_key: Buffer.from(cert.keyPem), cert_chain: Buffer.from(cert.certPem) }],
    false,
  );
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync('127.0.0.1:0', creds, (err, p) => {
      if (err) reject(err);
      else resolve(p);
    });
  });
  return { server, port };
}
