// Scenario 3: unary gRPC calls over one channel, insecure, mTLS by grpc-js
// alone, and mTLS through @shop/auth (createGrpcMtls + grpcChannelCredentials).
import * as grpc from '@grpc/grpc-js';
import { FileIdentitySource, authorizeId } from '@shop/auth';
import { grpcChannelCredentials } from '@shop/auth/grpc';
import { echoService } from '@shop/auth-testing';
import { runClosedLoop } from '../load/closed-loop.ts';
import { grpcAttempt } from '../load/grpc-load.ts';
import type { GrpcSecurity, GrpcServerConfig, GrpcServerStats } from '../servers/grpc-server.ts';
import { ChildServer } from '../support/child-server.ts';
import type { Cleanup } from '../support/cleanup.ts';
import { serverScript, type BenchContext, type Scenario, type ScenarioOutcome } from '../support/context.ts';
import { processCpuMeter, selfCpuMeter } from '../support/cpu-meter.ts';
import { compare, variantFigures } from '../support/figures.ts';
import { CLIENT_ID, SERVER_ID, checkSpiffeUri } from '../support/pki.ts';
import { progress } from '../support/progress.ts';
import { alternate } from '../support/rounds.ts';

const VARIANTS: { id: GrpcSecurity; label: string }[] = [
  { id: 'insecure', label: 'insecure (plaintext HTTP/2)' },
  { id: 'mtls-grpcjs', label: 'mTLS, grpc-js’s own credentials (pooled CA)' },
  { id: 'mtls-auth', label: 'mTLS, @shop/auth (createGrpcMtls, channel credentials)' },
];

/** grpcUnary is scenario 3: unary gRPC calls, insecure and over mTLS. */
export const grpcUnary: Scenario = {
  id: 'grpc',
  title: 'gRPC unary: insecure vs mTLS through @shop/auth',
  async run(ctx: BenchContext, cleanup: Cleanup): Promise<ScenarioOutcome> {
    const { pki, profile: p } = ctx;
    const clientSource = await FileIdentitySource.create(pki.clientFiles);
    cleanup.add('client file source', () => clientSource.close());
    const servers = new Map<GrpcSecurity, ChildServer>();
    for (const v of VARIANTS) {
      const config: GrpcServerConfig = { security: v.id, files: pki.serverFiles, allow: CLIENT_ID };
      servers.set(
        v.id,
        await ChildServer.start(cleanup, `gRPC server ${v.id}`, serverScript('grpc-server.ts'), config),
      );
    }
    const credentials: Record<GrpcSecurity, grpc.ChannelCredentials> = {
      insecure: grpc.credentials.createInsecure(),
      'mtls-grpcjs': grpc.credentials.createSsl(
        Buffer.from(pki.caPem),
        Buffer.from(pki.client.keyPem),
        Buffer.from(pki.client.certPem),
        { checkServerIdentity: checkSpiffeUri(SERVER_ID) },
      ),
      'mtls-auth': grpcChannelCredentials(clientSource, authorizeId(SERVER_ID)),
    };
    const runners = VARIANTS.map((v) => {
      const server = servers.get(v.id);
      if (!server) throw new Error(`no server for ${v.id}`);
      // An IP literal is no valid SNI name (Node warns, DEP0123); any name does, the servers ignore it.
      const options = v.id === 'insecure' ? {} : { 'grpc.ssl_target_name_override': 'localhost' };
      const client = new grpc.Client(`127.0.0.1:${server.port}`, credentials[v.id], options);
      cleanup.add(`gRPC client ${v.id}`, () => {
        client.close();
      });
      const attempt = grpcAttempt(client, echoService.whoAmI, {});
      return {
        id: v.id,
        run: (w: { warmupMs: number; durationMs: number }) =>
          runClosedLoop(attempt, {
            ...w,
            concurrency: p.concurrency,
            meters: [processCpuMeter('server', server.pid), selfCpuMeter('client')],
          }),
      };
    });
    progress('grpc: unary calls over one channel');
    const runs = await alternate('grpc', runners, p.rounds, { warmupMs: p.warmupMs, durationMs: p.durationMs });
    const variants = VARIANTS.map((v) => variantFigures(v.id, v.label, runs.get(v.id) ?? []));
    const s = await servers.get('mtls-auth')?.ask<GrpcServerStats>({ type: 'stats' });
    return {
      settings: { concurrency: p.concurrency, rounds: p.rounds, warmupMs: p.warmupMs, durationMs: p.durationMs },
      groups: [
        {
          id: 'unary',
          title: `unary calls, ${p.concurrency} in flight on one channel`,
          unit: 'calls/s',
          variants,
          comparisons: [
            compare(variants, 'mtls-auth', 'insecure', 'mTLS through @shop/auth vs insecure', true),
            compare(variants, 'mtls-grpcjs', 'insecure', 'grpc-js’s own mTLS vs insecure'),
            compare(variants, 'mtls-auth', 'mtls-grpcjs', '@shop/auth vs grpc-js’s own mTLS', true),
          ],
        },
      ],
      checks: [
        {
          name: 'mtls-auth: every call was authorized as the verified client (no UNAUTHENTICATED/PERMISSION_DENIED)',
          ok: s !== undefined && s.denied === 0 && s.allowed > 0,
          detail: s ? `${s.allowed} allowed, ${s.denied} denied` : 'no stats',
        },
      ],
      notes: [
        'One grpc-js channel per variant (one HTTP/2 connection), the method answers a constant JSON message.',
        '@shop/auth’s server terminates TLS in a Node tls.Server and injects the connections into grpc-js; its interceptor authorizes every call. grpc-js’s own TLS server is the reference: it checks client certificates against one pooled CA list only.',
      ],
    };
  },
};
