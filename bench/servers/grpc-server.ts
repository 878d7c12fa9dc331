// Child process: one grpc-js server with the same trivial unary method,
// insecure, mTLS by grpc-js's own TLS, or mTLS through @shop/auth.
import { readFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { FileIdentitySource } from '@shop/auth';
import { createGrpcMtls, type GrpcMtls } from '@shop/auth/grpc';
import { echoService } from '@shop/auth-testing';
import { runChild } from '../support/child-main.ts';
import type { PemFiles } from '../support/pki.ts';

/** GrpcSecurity names the transports compared. */
export type GrpcSecurity = 'insecure' | 'mtls-grpcjs' | 'mtls-auth';

/** GrpcServerConfig configures the child. */
export interface GrpcServerConfig {
  security: GrpcSecurity;
  files: PemFiles;
  /** allow is the client ID the `mtls-auth` server accepts. */
  allow: string;
}

/** GrpcServerStats count @shop/auth's decisions. */
export interface GrpcServerStats {
  allowed: number;
  denied: number;
}

/** REPLY is the trivial method's answer in every variant. */
export const REPLY = { caller: 'bench' };

runChild(async (c: GrpcServerConfig) => {
  const stats: GrpcServerStats = { allowed: 0, denied: 0 };
  let mtls: GrpcMtls | undefined;
  let source: FileIdentitySource | undefined;
  if (c.security === 'mtls-auth') {
    source = await FileIdentitySource.create(c.files);
    mtls = createGrpcMtls({
      source,
      allow: [c.allow],
      onDecision: (d) => {
        if (d.decision === 'allow') stats.allowed++;
        else stats.denied++;
      },
    });
  }
  const server = new grpc.Server(mtls ? { interceptors: [mtls.interceptor] } : {});
  server.addService(echoService, {
    whoAmI: (_call: unknown, cb: grpc.sendUnaryData<typeof REPLY>) => {
      cb(null, REPLY);
    },
  });
  let port: number;
  if (mtls) {
    port = await mtls.listen(server, { host: '127.0.0.1', port: 0 });
  } else {
    const creds =
      c.security === 'insecure'
        ? grpc.ServerCredentials.createInsecure()
        : grpc.ServerCredentials.createSsl(
            readFileSync(c.files.caFile),
            [{ cert_chain: readFileSync(c.files.certFile), private_key: readFileSync(c.files.keyFile) }],
            true,
          );
    port = await new Promise<number>((resolve, reject) => {
      server.bindAsync('127.0.0.1:0', creds, (err, p) => {
        if (err) reject(err);
        else resolve(p);
      });
    });
  }
  return {
    port,
    handle: (m) => {
      if (m.type === 'stats') return Promise.resolve({ ...stats });
      return Promise.reject(new Error(`unknown request ${m.type}`));
    },
    stop: async () => {
      await mtls?.close(100);
      server.forceShutdown();
      await source?.close();
    },
  };
});
