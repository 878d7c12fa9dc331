import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import * as grpc from '@grpc/grpc-js';
import { type JwtBundle, marshalSpiffeBundleJson, X509Bundle, X509Svid } from '@shop/auth';
// The wire format (proto definition, raw messages) is the client's internals,
// not public API; test support, a workspace-only package, reaches into them.
import {
  SECURITY_HEADER,
  grpcStatusName,
  structFromJson,
  workloadApiDefinition,
  type RawJwtBundlesResponse,
  type RawJwtSvid,
  type RawStruct,
  type RawX509BundlesResponse,
  type RawX509Svid,
  type RawX509SvidResponse,
  type WorkloadApiMethod,
} from '../../auth/src/workloadapi/client.ts';

/** UNIX_SOCKET_PATH_MAX_BYTES is the longest Unix socket path this platform binds (sun_path less its NUL). */
export const UNIX_SOCKET_PATH_MAX_BYTES = process.platform === 'linux' ? 107 : 103;

/** FakeCall records one call the fake received: method, request metadata, and how it ended (or "OK" while open). */
export interface FakeCall {
  method: WorkloadApiMethod;
  metadata: Record<string, string>;
  /** status is "OK" or the gRPC status name the call ended with, e.g. "PERMISSION_DENIED". */
  status: string;
  /** at is when the call arrived (Date.now()). */
  at: number;
}

/** FakeX509SvidEntry is an SVID to serve (with an optional hint), or raw message fields for broken cases. */
export type FakeX509SvidEntry = { svid: X509Svid; hint?: string; bundle?: X509Bundle } | Partial<RawX509Svid>;

/** FakeX509Context is what FetchX509SVID streams: SVIDs, their trust domain's bundle and federated bundles. */
export interface FakeX509Context {
  svids: FakeX509SvidEntry[];
  /** bundle is put in every SVID's `bundle` field (unless the entry brings its own). */
  bundle: X509Bundle;
  federatedBundles?: X509Bundle[];
}

/** FakeJwtSvid is a JWT-SVID FetchJWTSVID answers with. */
export interface FakeJwtSvid {
  spiffeId: string;
  token: string;
  hint?: string;
}

/** FakeValidation is what ValidateJWTSVID answers with. */
export interface FakeValidation {
  spiffeId: string;
  claims: Record<string, unknown>;
}

interface FakeError {
  code: grpc.status;
  message: string;
}

interface OpenStream {
  method: WorkloadApiMethod;
  call: grpc.ServerWritableStream<unknown, unknown>;
  record: FakeCall;
  /** muted streams stay open and are sent nothing, for good (see setSilent). */
  muted: boolean;
}

type StreamMethod = 'FetchX509SVID' | 'FetchX509Bundles' | 'FetchJWTBundles';

function tdKey(bundle: { trustDomain: { name: string } }): string {
  return `spiffe://${bundle.trustDomain.name}`;
}

function metadataRecord(md: grpc.Metadata): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(md.getMap())) {
    out[key] = typeof value === 'string' ? value : value.toString('base64');
  }
  return out;
}

/** rawX509Svid encodes an SVID as the X509SVID message the Workload API sends. */
export function rawX509Svid(svid: X509Svid, bundle: X509Bundle, hint = svid.hint): RawX509Svid {
  return {
    spiffe_id: svid.id.toString(),
    x509_svid: Buffer.concat(svid.chainDer()),
    x509_svid_key: svid.privateKey.export({ format: 'der', type: 'pkcs8' }),
    bundle: bundle.toDer(),
    hint,
  };
}

/**
 * FakeWorkloadApi is a real gRPC server that speaks the SPIFFE Workload API on
 * a Unix socket in a fresh temporary directory, for tests. It records every
 * call, serves what the test sets, fails calls on demand, and can be stopped
 * and restarted on the same socket. Like SPIRE, it answers InvalidArgument to
 * calls without the `workload.spiffe.io: true` header.
 */
export class FakeWorkloadApi {
  /** socketPath is the absolute path of the Unix socket. */
  readonly socketPath: string;
  /** address is the Workload API address of the fake, `unix:///…`. */
  readonly address: string;
  /** calls lists every call received, in order. */
  readonly calls: FakeCall[] = [];
  readonly #dir: string;
  #server: grpc.Server | undefined;
  readonly #streams = new Set<OpenStream>();
  readonly #errors = new Map<WorkloadApiMethod, FakeError>();
  readonly #hanging = new Set<WorkloadApiMethod>();
  readonly #silent = new Set<StreamMethod>();
  readonly #current = new Map<StreamMethod, unknown>();
  #jwtSvids: RawJwtSvid[] = [];
  #validation: ((token: string, audience: string) => FakeValidation) | undefined;

  private constructor(dir: string) {
    this.#dir = dir;
    this.socketPath = join(dir, 'agent.sock');
    this.address = `unix://${this.socketPath}`;
  }

  /** start creates a temporary directory and serves the Workload API on `agent.sock` in it. */
  static async start(options: { listen?: boolean } = {}): Promise<FakeWorkloadApi> {
    const dir = await mkdtemp(join(tmpdir(), 'fake-workload-api-'));
    const fake = new FakeWorkloadApi(dir);
    // Unix socket paths are limited to 104–108 bytes; say so rather than let the bind fail obscurely.
    if (Buffer.byteLength(fake.socketPath) > UNIX_SOCKET_PATH_MAX_BYTES) {
      await rm(dir, { recursive: true, force: true });
      throw new Error(
        `fake Workload API: the socket path ${fake.socketPath} is over the ${String(UNIX_SOCKET_PATH_MAX_BYTES)}-byte limit of Unix socket paths; set TMPDIR to a short folder such as /tmp`,
      );
    }
    if (options.listen !== false) await fake.restart();
    return fake;
  }

  /** isRunning is true while the server listens. */
  get isRunning(): boolean {
    return this.#server !== undefined;
  }

  /** setX509Context makes FetchX509SVID send this context now on every open stream, and first on every new one. */
  setX509Context(context: FakeX509Context): void {
    const federated: Record<string, Buffer> = {};
    for (const b of context.federatedBundles ?? []) federated[tdKey(b)] = b.toDer();
    this.pushX509Response({
      svids: context.svids.map((entry) =>
        'svid' in entry && entry.svid instanceof X509Svid
          ? rawX509Svid(entry.svid, entry.bundle ?? context.bundle, entry.hint ?? entry.svid.hint)
          : {
              spiffe_id: '',
              x509_svid: Buffer.alloc(0),
              x509_svid_key: Buffer.alloc(0),
              bundle: context.bundle.toDer(),
              hint: '',
              ...(entry as Partial<RawX509Svid>),
            },
      ),
      federated_bundles: federated,
    });
  }

  /** pushX509Response sends a raw (possibly broken) FetchX509SVID message, and keeps it for new streams. */
  pushX509Response(response: Partial<RawX509SvidResponse>): void {
    this.#publish('FetchX509SVID', { svids: [], crl: [], federated_bundles: {}, ...response });
  }

  /** setX509Bundles makes FetchX509Bundles send these bundles. */
  setX509Bundles(bundles: X509Bundle[]): void {
    const map: Record<string, Buffer> = {};
    for (const b of bundles) map[tdKey(b)] = b.toDer();
    this.pushX509BundlesResponse({ bundles: map });
  }

  /** pushX509BundlesResponse sends a raw FetchX509Bundles message, and keeps it for new streams. */
  pushX509BundlesResponse(response: Partial<RawX509BundlesResponse>): void {
    this.#publish('FetchX509Bundles', { crl: [], bundles: {}, ...response });
  }

  /** setJwtBundles makes FetchJWTBundles send these bundles (a JwtBundle, or raw JWKS text per trust domain). */
  setJwtBundles(bundles: (JwtBundle | { trustDomain: string; jwks: string | Uint8Array })[]): void {
    const map: Record<string, Buffer> = {};
    for (const b of bundles) {
      if ('jwks' in b) {
        map[`spiffe://${b.trustDomain}`] = Buffer.from(b.jwks);
      } else {
        const json = marshalSpiffeBundleJson({ x509Bundle: new X509Bundle(b.trustDomain, []), jwtBundle: b });
        map[tdKey(b)] = Buffer.from(json);
      }
    }
    this.pushJwtBundlesResponse({ bundles: map });
  }

  /** pushJwtBundlesResponse sends a raw FetchJWTBundles message, and keeps it for new streams. */
  pushJwtBundlesResponse(response: Partial<RawJwtBundlesResponse>): void {
    this.#publish('FetchJWTBundles', { bundles: {}, ...response });
  }

  /** setJwtSvids sets what FetchJWTSVID answers (filtered by the requested SPIFFE ID, as SPIRE does). */
  setJwtSvids(svids: FakeJwtSvid[]): void {
    this.#jwtSvids = svids.map((s) => ({ spiffe_id: s.spiffeId, svid: s.token, hint: s.hint ?? '' }));
  }

  /** setValidation sets what ValidateJWTSVID answers: a fixed result or a function of token and audience. */
  setValidation(result: FakeValidation | ((token: string, audience: string) => FakeValidation)): void {
    this.#validation = typeof result === 'function' ? result : () => result;
  }

  /** setError makes `method` fail with `code` from now on; open streams of it fail at once. */
  setError(method: WorkloadApiMethod, code: grpc.status, message = `fake ${grpcStatusName(code)}`): void {
    this.#errors.set(method, { code, message });
    for (const s of this.#streams) {
      if (s.method === method && !s.muted) this.#fail(s, { code, message });
    }
  }

  /** clearError makes `method` answer normally again. */
  clearError(method: WorkloadApiMethod): void {
    this.#errors.delete(method);
  }

  /** setHang makes the unary `method` never answer (to test deadlines), or answer again with `hang` false. */
  setHang(method: 'FetchJWTSVID' | 'ValidateJWTSVID', hang = true): void {
    if (hang) this.#hanging.add(method);
    else this.#hanging.delete(method);
  }

  /**
   * setSilent makes `method`'s streams hang, as a stuck agent does: every
   * stream open now, and every new one while silent, is accepted and kept
   * open but is sent nothing, no message and no error, for the rest of its
   * life. `setSilent(method, false)` serves new streams again; the streams
   * muted before stay silent, so only a client that dials again recovers.
   */
  setSilent(method: StreamMethod, silent = true): void {
    if (!silent) {
      this.#silent.delete(method);
      return;
    }
    this.#silent.add(method);
    for (const s of this.#streams) if (s.method === method) s.muted = true;
  }

  /** setX509Error makes FetchX509SVID fail with `code`, on open and new streams. */
  setX509Error(code: grpc.status, message?: string): void {
    this.setError('FetchX509SVID', code, message);
  }

  /** clearX509Error makes FetchX509SVID answer normally again. */
  clearX509Error(): void {
    this.clearError('FetchX509SVID');
  }

  /** endStreams ends every open stream with status OK, as an agent does when it shuts a stream. */
  endStreams(method?: WorkloadApiMethod): void {
    for (const s of [...this.#streams]) {
      if (method === undefined || s.method === method) {
        this.#streams.delete(s);
        s.call.end();
      }
    }
  }

  /** dropConnections closes every client connection at once (the server keeps listening). */
  dropConnections(): void {
    this.#server?.drain(`unix:${this.socketPath}`, 0);
    this.#streams.clear();
  }

  /** openStreams counts the streams currently open, of `method` or of all methods. */
  openStreams(method?: WorkloadApiMethod): number {
    return [...this.#streams].filter((s) => method === undefined || s.method === method).length;
  }

  /** callsOf lists the recorded calls of `method`. */
  callsOf(method: WorkloadApiMethod): FakeCall[] {
    return this.calls.filter((c) => c.method === method);
  }

  /** waitFor polls `predicate` until it holds, failing after `timeoutMs` with `what` in the message. */
  async waitFor(predicate: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!predicate()) {
      if (Date.now() > deadline)
        throw new Error(`fake Workload API: timed out after ${timeoutMs} ms waiting for ${what}`);
      await sleep(10);
    }
  }

  /** stop shuts the server down at once (clients see the connection drop); the socket path stays reserved. */
  async stop(): Promise<void> {
    const server = this.#server;
    if (server === undefined) return;
    this.#server = undefined;
    this.#streams.clear();
    server.forceShutdown();
    // forceShutdown closes listeners asynchronously; give the socket file time to go away.
    await sleep(10);
  }

  /** restart serves again on the same socket path (after stop(), or the first time with `listen: false`). */
  async restart(): Promise<void> {
    if (this.#server !== undefined) return;
    await rm(this.socketPath, { force: true });
    const server = new grpc.Server();
    server.addService(workloadApiDefinition(), this.#handlers());
    await new Promise<void>((resolve, reject) => {
      server.bindAsync(`unix:${this.socketPath}`, grpc.ServerCredentials.createInsecure(), (err) => {
        if (err) reject(err);
        else resolve();
      });
    });
    this.#server = server;
  }

  /** close stops the server and removes the temporary directory. */
  async close(): Promise<void> {
    await this.stop();
    await rm(this.#dir, { recursive: true, force: true });
  }

  #publish(method: StreamMethod, message: unknown): void {
    this.#current.set(method, message);
    for (const s of this.#streams) {
      if (s.method === method && !s.muted) s.call.write(message);
    }
  }

  #fail(stream: OpenStream, err: FakeError): void {
    this.#streams.delete(stream);
    stream.record.status = grpcStatusName(err.code);
    stream.call.emit('error', { code: err.code, details: err.message });
  }

  /** Records the call and returns the error it must fail with, if any. */
  #admit(method: WorkloadApiMethod, metadata: grpc.Metadata): { record: FakeCall; error?: FakeError } {
    const record: FakeCall = { method, metadata: metadataRecord(metadata), status: 'OK', at: Date.now() };
    this.calls.push(record);
    // SPIRE rejects requests without the security header this way.
    const header = metadata.get(SECURITY_HEADER);
    if (header.length !== 1 || header[0] !== 'true') {
      record.status = 'INVALID_ARGUMENT';
      return { record, error: { code: grpc.status.INVALID_ARGUMENT, message: 'security header missing from request' } };
    }
    const error = this.#errors.get(method);
    if (error !== undefined) record.status = grpcStatusName(error.code);
    return error === undefined ? { record } : { record, error };
  }

  #streamHandler(method: StreamMethod): grpc.handleServerStreamingCall<unknown, unknown> {
    return (call) => {
      const { record, error } = this.#admit(method, call.metadata);
      if (error !== undefined) {
        call.emit('error', { code: error.code, details: error.message });
        return;
      }
      const stream: OpenStream = { method, call, record, muted: this.#silent.has(method) };
      this.#streams.add(stream);
      call.on('cancelled', () => {
        // A stream the fake already failed or ended keeps the status it got.
        if (this.#streams.delete(stream)) record.status = 'CANCELLED';
      });
      const current = this.#current.get(method);
      if (current !== undefined && !stream.muted) call.write(current);
    };
  }

  #unaryHandler<Req, Res>(
    method: WorkloadApiMethod,
    answer: (req: Req) => Res | FakeError,
  ): grpc.handleUnaryCall<Req, Res> {
    return (call, callback) => {
      const { record, error } = this.#admit(method, call.metadata);
      if (error === undefined && this.#hanging.has(method)) return;
      const result = error ?? answer(call.request);
      if (typeof result === 'object' && result !== null && 'code' in result && 'message' in result) {
        record.status = grpcStatusName(result.code);
        callback({ code: result.code, details: result.message });
      } else {
        callback(null, result);
      }
    };
  }

  #handlers(): grpc.UntypedServiceImplementation {
    return {
      FetchX509SVID: this.#streamHandler('FetchX509SVID'),
      FetchX509Bundles: this.#streamHandler('FetchX509Bundles'),
      FetchJWTBundles: this.#streamHandler('FetchJWTBundles'),
      FetchJWTSVID: this.#unaryHandler('FetchJWTSVID', (req: { audience: string[]; spiffe_id: string }) => {
        if (req.audience.length === 0) {
          return { code: grpc.status.INVALID_ARGUMENT, message: 'audience must be specified' };
        }
        const svids = this.#jwtSvids.filter((s) => req.spiffe_id === '' || s.spiffe_id === req.spiffe_id);
        if (svids.length === 0) return { code: grpc.status.PERMISSION_DENIED, message: 'no identity issued' };
        return { svids };
      }),
      ValidateJWTSVID: this.#unaryHandler('ValidateJWTSVID', (req: { audience: string; svid: string }) => {
        if (req.audience === '') return { code: grpc.status.INVALID_ARGUMENT, message: 'audience must be specified' };
        if (req.svid === '') return { code: grpc.status.INVALID_ARGUMENT, message: 'svid must be specified' };
        if (this.#validation === undefined) {
          return { code: grpc.status.INVALID_ARGUMENT, message: 'fake: no validation result set' };
        }
        const v = this.#validation(req.svid, req.audience);
        const claims: RawStruct = structFromJson(v.claims);
        return { spiffe_id: v.spiffeId, claims };
      }),
    };
  }
}
