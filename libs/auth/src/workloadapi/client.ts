import { existsSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import type { BundleWarning } from '../bundle/bundle-warning.ts';
import { JwtBundleSet, type JwtBundle } from '../bundle/jwt-bundle.ts';
import { parseSpiffeBundleJson } from '../bundle/spiffe-bundle.ts';
import { X509Bundle, X509BundleSet } from '../bundle/x509-bundle.ts';
import { AuthError } from '../errors.ts';
import { SpiffeId } from '../spiffeid/spiffe-id.ts';
import { TrustDomain } from '../spiffeid/trust-domain.ts';
import { X509Svid } from '../svid/x509-svid.ts';
import { resolveEndpoint, type WorkloadEndpoint } from './address.ts';
import { Backoff, type BackoffOptions } from './backoff.ts';

/** SECURITY_HEADER is the metadata key every Workload API call must carry with the value "true". */
export const SECURITY_HEADER = 'workload.spiffe.io';

/** WORKLOAD_PROTO_PATH is the absolute path of the Workload API .proto file shipped with this package. */
export const WORKLOAD_PROTO_PATH = fileURLToPath(new URL('./workload.proto', import.meta.url));

/** WorkloadApiMethod names an RPC of the SpiffeWorkloadAPI service. */
export type WorkloadApiMethod =
  'FetchX509SVID' | 'FetchX509Bundles' | 'FetchJWTSVID' | 'FetchJWTBundles' | 'ValidateJWTSVID';

/** RawX509Svid is an X509SVID message as decoded from the wire. */
export interface RawX509Svid {
  spiffe_id: string;
  x509_svid: Uint8Array;
  x509_svid_key: Uint8Array;
  bundle: Uint8Array;
  hint: string;
}

/** RawX509SvidResponse is an X509SVIDResponse message as decoded from the wire. */
export interface RawX509SvidResponse {
  svids: RawX509Svid[];
  crl: Uint8Array[];
  federated_bundles: Record<string, Uint8Array>;
}

/** RawX509BundlesResponse is an X509BundlesResponse message as decoded from the wire. */
export interface RawX509BundlesResponse {
  crl: Uint8Array[];
  bundles: Record<string, Uint8Array>;
}

/** RawJwtSvid is a JWTSVID message as decoded from the wire. */
export interface RawJwtSvid {
  spiffe_id: string;
  svid: string;
  hint: string;
}

/** RawJwtSvidResponse is a JWTSVIDResponse message as decoded from the wire. */
export interface RawJwtSvidResponse {
  svids: RawJwtSvid[];
}

/** RawJwtBundlesResponse is a JWTBundlesResponse message as decoded from the wire. */
export interface RawJwtBundlesResponse {
  bundles: Record<string, Uint8Array>;
}

/** RawStructValue is a google.protobuf.Value as proto-loader decodes it (with `oneofs: true`). */
export interface RawStructValue {
  kind?: string;
  nullValue?: unknown;
  numberValue?: number;
  stringValue?: string;
  boolValue?: boolean;
  structValue?: RawStruct | null;
  listValue?: { values?: RawStructValue[] } | null;
}

/** RawStruct is a google.protobuf.Struct as proto-loader decodes it. */
export interface RawStruct {
  fields?: Record<string, RawStructValue>;
}

/** RawValidateJwtSvidResponse is a ValidateJWTSVIDResponse message as decoded from the wire. */
export interface RawValidateJwtSvidResponse {
  spiffe_id: string;
  claims: RawStruct | null;
}

/** workloadApiDefinition loads the Workload API service definition (once) with the options the client and fake server share. */
export function workloadApiDefinition(): grpc.ServiceDefinition {
  definition ??= protoLoader.loadSync(WORKLOAD_PROTO_PATH, {
    keepCase: true,
    longs: String,
    defaults: true,
    oneofs: true,
  });
  return definition.SpiffeWorkloadAPI as grpc.ServiceDefinition;
}
let definition: protoLoader.PackageDefinition | undefined;

/** structToJson converts a google.protobuf.Struct to a plain JSON object. */
export function structToJson(struct: RawStruct | null | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(struct?.fields ?? {})) out[key] = valueToJson(value);
  return out;
}

function valueToJson(value: RawStructValue): unknown {
  switch (value.kind) {
    case 'numberValue':
      return value.numberValue;
    case 'stringValue':
      return value.stringValue;
    case 'boolValue':
      return value.boolValue;
    case 'structValue':
      return structToJson(value.structValue);
    case 'listValue':
      return (value.listValue?.values ?? []).map(valueToJson);
    default:
      return null;
  }
}

/** structFromJson converts a plain JSON object to a google.protobuf.Struct (for servers and fakes). */
export function structFromJson(json: Record<string, unknown>): RawStruct {
  const fields: Record<string, RawStructValue> = {};
  for (const [key, value] of Object.entries(json)) fields[key] = valueFromJson(value);
  return { fields };
}

function valueFromJson(value: unknown): RawStructValue {
  if (value === null || value === undefined) return { nullValue: 0 };
  if (typeof value === 'number') return { numberValue: value };
  if (typeof value === 'string') return { stringValue: value };
  if (typeof value === 'boolean') return { boolValue: value };
  if (Array.isArray(value)) return { listValue: { values: value.map(valueFromJson) } };
  if (typeof value === 'object') return { structValue: structFromJson(value as Record<string, unknown>) };
  if (typeof value === 'bigint') return { numberValue: Number(value) };
  // Functions and symbols have no JSON form; JSON.stringify drops them too.
  return { nullValue: 0 };
}

/** X509Context is the X.509 state of a workload: its SVIDs (the first is the default) and the bundles it trusts. */
export interface X509Context {
  /** svids holds every identity of the workload; svids[0] is the default one. */
  svids: X509Svid[];
  /** bundles holds the SVIDs' own trust-domain bundles and the federated bundles. */
  bundles: X509BundleSet;
}

/** Watcher receives every usable update of a watched stream and every problem; its callbacks must not throw. */
export interface Watcher<T> {
  /** onUpdate receives the complete new state; it replaces the previous one. */
  onUpdate(value: T): void;
  /** onError receives dropped updates and connection problems; the watch goes on unless the error is final. */
  onError(err: AuthError): void;
  /**
   * onWarnings receives, just before `onUpdate`, the bundle key entries the
   * update's SPIFFE bundle JSON held that were ignored as the standards
   * require (see parseSpiffeBundleJson); never called with an empty list.
   */
  onWarnings?(warnings: readonly BundleWarning[]): void;
  /**
   * onStreamState is told when a stream is opened (true) and when it ended
   * (false, before the error that ended it), so a caller can tell a stream
   * that is open but silent from a reconnect waiting out its backoff.
   */
  onStreamState?(open: boolean): void;
}

/** JwtSvidResult is one JWT-SVID as the Workload API minted it, not yet parsed. */
export interface JwtSvidResult {
  id: SpiffeId;
  token: string;
  hint: string;
}

/** JwtSvidParams ask for JWT-SVIDs. */
export interface JwtSvidParams {
  /** audience holds at least one audience the tokens are for. */
  audience: string[];
  /** spiffeId asks for the token of this identity only. Default: all identities. */
  spiffeId?: string;
}

/** ValidatedJwtSvid is the outcome of ValidateJWTSVID. */
export interface ValidatedJwtSvid {
  id: SpiffeId;
  claims: Record<string, unknown>;
}

/** WorkloadApiClientOptions configure a WorkloadApiClient. */
export interface WorkloadApiClientOptions {
  /** address of the Workload API, `unix:///path` or `tcp://IP:port`. Default: `SPIFFE_ENDPOINT_SOCKET`. */
  address?: string;
  /** env is where `SPIFFE_ENDPOINT_SOCKET` is read. Default: process.env. */
  env?: NodeJS.ProcessEnv;
  /** timeoutMs is the deadline of unary calls and one-shot fetches. Default: 10000. */
  timeoutMs?: number;
  /** backoff configures reconnecting watches (and the channel's own reconnects). Default: 200 ms doubling to 30 s. */
  backoff?: BackoffOptions;
}

// Waiting cannot fix these: the request is malformed, or the agent does not
// have the method at all. Everything else (agent restarting, no registration
// entry yet, stream ended) is retried.
const FINAL_CODES = new Set<number>([grpc.status.INVALID_ARGUMENT, grpc.status.UNIMPLEMENTED]);

const STATUS_NAMES = new Map<number, string>(
  Object.entries(grpc.status)
    .filter((e): e is [string, number] => typeof e[1] === 'number')
    .map(([name, code]) => [code, name]),
);

/** grpcStatusName returns the name of a gRPC status code, e.g. "PERMISSION_DENIED". */
export function grpcStatusName(code: number): string {
  return STATUS_NAMES.get(code) ?? `status ${code}`;
}

/** Responses of the streaming methods, as decoded from the wire. */
interface StreamResponses {
  FetchX509SVID: RawX509SvidResponse;
  FetchX509Bundles: RawX509BundlesResponse;
  FetchJWTBundles: RawJwtBundlesResponse;
}

/** Responses of the unary methods, as decoded from the wire. */
interface UnaryResponses {
  FetchJWTSVID: RawJwtSvidResponse;
  ValidateJWTSVID: RawValidateJwtSvidResponse;
}

interface StreamOutcome {
  kind: 'stopped' | 'retry' | 'final';
  err?: AuthError;
}

function isEmpty(bytes: Uint8Array | null | undefined): boolean {
  return bytes === null || bytes === undefined || bytes.length === 0;
}

function problem(message: string, cause?: unknown): AuthError {
  return new AuthError('AUTH_ERR_WORKLOAD_RESPONSE_INVALID', message, cause === undefined ? undefined : { cause });
}

function reason(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function trustDomainOfKey(key: string, field: string): TrustDomain {
  try {
    return TrustDomain.parse(key);
  } catch (cause) {
    throw problem(`${field} has a key ${JSON.stringify(key)} that is not a trust domain`, cause);
  }
}

function x509BundleOf(td: TrustDomain, der: Uint8Array, field: string): X509Bundle {
  if (isEmpty(der)) throw problem(`${field} for trust domain "${td.name}" is empty`);
  try {
    return X509Bundle.fromDer(td, der);
  } catch (cause) {
    throw problem(`${field} for trust domain "${td.name}" does not parse: ${reason(cause)}`, cause);
  }
}

/**
 * parseX509SvidResponse turns a FetchX509SVID message into an X509Context, or
 * throws AUTH_ERR_WORKLOAD_RESPONSE_INVALID saying which field is unusable.
 */
export function parseX509SvidResponse(res: RawX509SvidResponse): X509Context {
  if (res.svids.length === 0) throw problem('the response holds no X.509-SVID');
  const own = new Map<string, X509Bundle>();
  const svids = res.svids.map((raw, i) => {
    const field = raw.spiffe_id === '' ? `svids[${i}]` : `svids[${i}] (${raw.spiffe_id})`;
    if (raw.spiffe_id === '') throw problem(`${field} has an empty spiffe_id`);
    if (isEmpty(raw.x509_svid)) throw problem(`${field} has an empty x509_svid (certificate chain)`);
    if (isEmpty(raw.x509_svid_key)) throw problem(`${field} has an empty x509_svid_key (private key)`);
    let svid: X509Svid;
    try {
      svid = X509Svid.fromDer(raw.x509_svid, raw.x509_svid_key, raw.hint);
    } catch (cause) {
      throw problem(`${field} is not a usable X.509-SVID: ${reason(cause)}`, cause);
    }
    if (!svid.id.equals(raw.spiffe_id)) {
      throw problem(`${field}: spiffe_id does not match the certificate's SPIFFE ID ${svid.id.toString()}`);
    }
    const td = svid.id.trustDomain;
    const bundle = x509BundleOf(td, raw.bundle, `${field} bundle`);
    if (!own.has(td.name)) own.set(td.name, bundle);
    return svid;
  });
  const bundles = new Map(own);
  for (const [key, der] of Object.entries(res.federated_bundles)) {
    const td = trustDomainOfKey(key, 'federated_bundles');
    // Our own trust domain's bundle comes with the SVID; a federated entry must not replace it.
    if (own.has(td.name)) continue;
    bundles.set(td.name, x509BundleOf(td, der, 'federated_bundles'));
  }
  return { svids, bundles: new X509BundleSet(bundles.values()) };
}

/** parseX509BundlesResponse turns a FetchX509Bundles message into a bundle set, or throws AUTH_ERR_WORKLOAD_RESPONSE_INVALID. */
export function parseX509BundlesResponse(res: RawX509BundlesResponse): X509BundleSet {
  const entries = Object.entries(res.bundles);
  if (entries.length === 0) throw problem('the response holds no X.509 bundle');
  return new X509BundleSet(entries.map(([key, der]) => x509BundleOf(trustDomainOfKey(key, 'bundles'), der, 'bundles')));
}

/** parseJwtBundlesResponse turns a FetchJWTBundles message into a JWT bundle set, or throws AUTH_ERR_WORKLOAD_RESPONSE_INVALID. */
export function parseJwtBundlesResponse(res: RawJwtBundlesResponse): JwtBundleSet {
  return readJwtBundlesResponse(res).value;
}

/** Parsed is a decoded stream message with the bundle entries it held that were ignored. */
export interface Parsed<T> {
  value: T;
  warnings: readonly BundleWarning[];
}

/**
 * readJwtBundlesResponse is parseJwtBundlesResponse with the warnings: each
 * bundle is read by parseSpiffeBundleJson, so a key entry the standards say
 * to ignore is left out and named, and the other keys stay in force. Only a
 * bundle that is not a JWK Set at all drops the message.
 */
export function readJwtBundlesResponse(res: RawJwtBundlesResponse): Parsed<JwtBundleSet> {
  const entries = Object.entries(res.bundles);
  if (entries.length === 0) throw problem('the response holds no JWT bundle');
  const warnings: BundleWarning[] = [];
  const bundles = entries.map(([key, json]): JwtBundle => {
    const td = trustDomainOfKey(key, 'bundles');
    try {
      const parsed = parseSpiffeBundleJson(td, json, { where: `FetchJWTBundles bundles[${JSON.stringify(key)}]` });
      warnings.push(...parsed.warnings);
      return parsed.jwtBundle;
    } catch (cause) {
      throw problem(`bundles for trust domain "${td.name}" is not a usable JWKS: ${reason(cause)}`, cause);
    }
  });
  return { value: new JwtBundleSet(bundles), warnings };
}

function withoutWarnings<R, T>(parse: (res: R) => T): (res: R) => Parsed<T> {
  return (res) => ({ value: parse(res), warnings: [] });
}

/**
 * WorkloadApiClient talks to the SPIFFE Workload API (the SPIRE agent) over
 * gRPC on a Unix socket or a local TCP port. Watches reconnect with a capped,
 * jittered backoff; one-shot calls have a deadline. Every failure is an
 * AuthError with an AUTH_ERR_WORKLOAD_* code and the gRPC error as `cause`.
 */
export class WorkloadApiClient {
  /** endpoint is the parsed address this client dials. */
  readonly endpoint: WorkloadEndpoint;
  readonly #client: grpc.Client;
  readonly #service: grpc.ServiceDefinition;
  readonly #timeoutMs: number;
  readonly #backoff: BackoffOptions;
  readonly #closer = new AbortController();
  readonly #watches = new Set<Promise<void>>();

  constructor(options: WorkloadApiClientOptions = {}) {
    this.endpoint = resolveEndpoint(options.address, options.env);
    this.#timeoutMs = options.timeoutMs ?? 10_000;
    if (!Number.isFinite(this.#timeoutMs) || this.#timeoutMs <= 0) {
      throw new AuthError(
        'AUTH_ERR_CONFIG_INVALID',
        `timeoutMs must be a positive number (got ${String(options.timeoutMs)})`,
      );
    }
    this.#backoff = { ...options.backoff };
    new Backoff(this.#backoff); // validates the options now rather than at the first failure
    this.#service = workloadApiDefinition();
    // The channel has its own reconnect backoff (1 s growing to 120 s by
    // default); a watch retrying sooner would only meet a channel that refuses
    // to dial, so both follow the same schedule.
    this.#client = new grpc.Client(this.endpoint.target, grpc.credentials.createInsecure(), {
      'grpc.initial_reconnect_backoff_ms': this.#backoff.initialMs ?? 200,
      'grpc.max_reconnect_backoff_ms': this.#backoff.maxMs ?? 30_000,
    });
  }

  /** address is the Workload API address as configured, e.g. "unix:///run/spire/agent.sock". */
  get address(): string {
    return this.endpoint.address;
  }

  /** isClosed is true once close() was called. */
  get isClosed(): boolean {
    return this.#closer.signal.aborted;
  }

  /**
   * watchX509Context streams FetchX509SVID and calls `watcher.onUpdate` with
   * each usable message, which replaces the whole previous state. Unusable
   * messages are dropped and reported through `onError`. The stream is
   * re-opened with backoff when it fails or ends, except on InvalidArgument
   * (reported, then the watch stops). The promise resolves when the watch
   * stops: `signal` aborted, client closed, or a final error; it rejects only
   * if a watcher callback throws, which ends the watch.
   */
  watchX509Context(watcher: Watcher<X509Context>, signal?: AbortSignal): Promise<void> {
    return this.#track(this.#watch('FetchX509SVID', withoutWarnings(parseX509SvidResponse), watcher, signal));
  }

  /** fetchX509Context returns the first FetchX509SVID message as an X509Context (no retry). */
  fetchX509Context(): Promise<X509Context> {
    return this.#fetchFirst('FetchX509SVID', withoutWarnings(parseX509SvidResponse));
  }

  /** watchX509Bundles streams FetchX509Bundles with the same rules as watchX509Context. */
  watchX509Bundles(watcher: Watcher<X509BundleSet>, signal?: AbortSignal): Promise<void> {
    return this.#track(this.#watch('FetchX509Bundles', withoutWarnings(parseX509BundlesResponse), watcher, signal));
  }

  /** fetchX509Bundles returns the first FetchX509Bundles message as a bundle set (no retry). */
  fetchX509Bundles(): Promise<X509BundleSet> {
    return this.#fetchFirst('FetchX509Bundles', withoutWarnings(parseX509BundlesResponse));
  }

  /** watchJwtBundles streams FetchJWTBundles with the same rules as watchX509Context. */
  watchJwtBundles(watcher: Watcher<JwtBundleSet>, signal?: AbortSignal): Promise<void> {
    return this.#track(this.#watch('FetchJWTBundles', readJwtBundlesResponse, watcher, signal));
  }

  /** fetchJwtBundles returns the first FetchJWTBundles message as a JWT bundle set (no retry). */
  fetchJwtBundles(): Promise<JwtBundleSet> {
    return this.#fetchFirst('FetchJWTBundles', readJwtBundlesResponse);
  }

  /** fetchJwtSvids asks the Workload API to mint JWT-SVIDs for `audience`; tokens are returned unparsed. */
  async fetchJwtSvids(params: JwtSvidParams): Promise<JwtSvidResult[]> {
    const audience = params.audience as unknown;
    if (!Array.isArray(audience) || audience.length === 0 || audience.some((a) => typeof a !== 'string' || a === '')) {
      throw new AuthError(
        'AUTH_ERR_WORKLOAD_INVALID_REQUEST',
        `FetchJWTSVID: audience must be a non-empty list of non-empty strings (got ${JSON.stringify(audience)})`,
      );
    }
    const spiffeId = params.spiffeId === undefined ? '' : SpiffeId.parse(params.spiffeId).toString();
    const res = await this.#unary('FetchJWTSVID', { audience, spiffe_id: spiffeId });
    if (res.svids.length === 0) throw problem('FetchJWTSVID: the response holds no JWT-SVID');
    return res.svids.map((raw, i) => {
      if (raw.svid === '') throw problem(`FetchJWTSVID: svids[${i}] has an empty token`);
      let id: SpiffeId;
      try {
        id = SpiffeId.parse(raw.spiffe_id);
      } catch (cause) {
        throw problem(`FetchJWTSVID: svids[${i}] has an invalid spiffe_id: ${reason(cause)}`, cause);
      }
      return { id, token: raw.svid, hint: raw.hint };
    });
  }

  /** validateJwtSvid asks the Workload API to validate `token` for `audience` and returns its SPIFFE ID and claims. */
  async validateJwtSvid(token: string, audience: string): Promise<ValidatedJwtSvid> {
    if (typeof token !== 'string' || token === '') {
      throw new AuthError('AUTH_ERR_WORKLOAD_INVALID_REQUEST', 'ValidateJWTSVID: the token is empty');
    }
    if (typeof audience !== 'string' || audience === '') {
      throw new AuthError('AUTH_ERR_WORKLOAD_INVALID_REQUEST', 'ValidateJWTSVID: the audience is empty');
    }
    const res = await this.#unary('ValidateJWTSVID', { audience, svid: token });
    let id: SpiffeId;
    try {
      id = SpiffeId.parse(res.spiffe_id);
    } catch (cause) {
      throw problem(`ValidateJWTSVID: the response has an invalid spiffe_id: ${reason(cause)}`, cause);
    }
    return { id, claims: structToJson(res.claims) };
  }

  /** close cancels every watch and call, waits for the watches to stop, and closes the channel. */
  async close(): Promise<void> {
    if (!this.#closer.signal.aborted) this.#closer.abort();
    await Promise.allSettled([...this.#watches]);
    this.#client.close();
  }

  #closedError(method: WorkloadApiMethod): AuthError {
    return new AuthError(
      'AUTH_ERR_WORKLOAD_CLOSED',
      `${method}: the Workload API client for ${this.address} is closed`,
    );
  }

  #metadata(): grpc.Metadata {
    const md = new grpc.Metadata();
    md.set(SECURITY_HEADER, 'true');
    return md;
  }

  #method(method: WorkloadApiMethod): grpc.MethodDefinition<object, unknown> {
    const def = this.#service[method];
    if (def === undefined) throw new Error(`workload.proto lacks ${method}`);
    return def as grpc.MethodDefinition<object, unknown>;
  }

  #track(watch: Promise<void>): Promise<void> {
    this.#watches.add(watch);
    const forget = (): void => {
      this.#watches.delete(watch);
    };
    // Both branches: a derived promise left to reject would be an unhandled rejection.
    watch.then(forget, forget);
    return watch;
  }

  /** statusError turns a gRPC status into the AuthError a user can act on. */
  #statusError(method: WorkloadApiMethod, status: { code: grpc.status; details: string }, cause: unknown): AuthError {
    const details = status.details === '' ? '' : ` (agent said: ${JSON.stringify(status.details)})`;
    const opts = { cause };
    switch (status.code) {
      case grpc.status.UNAVAILABLE: {
        const path = this.endpoint.socketPath;
        if (path !== undefined && !existsSync(path)) {
          return new AuthError(
            'AUTH_ERR_WORKLOAD_UNAVAILABLE',
            `${method}: the Workload API socket ${path} does not exist yet; is the SPIRE agent running and its socket mounted here?`,
            opts,
          );
        }
        return new AuthError(
          'AUTH_ERR_WORKLOAD_UNAVAILABLE',
          `${method}: the Workload API at ${this.address} is unavailable${details}`,
          opts,
        );
      }
      case grpc.status.PERMISSION_DENIED:
        return new AuthError(
          'AUTH_ERR_WORKLOAD_PERMISSION_DENIED',
          `${method}: the Workload API answered PermissionDenied: no registration entry matched this workload, so SPIRE has no identity for it${details}`,
          opts,
        );
      case grpc.status.INVALID_ARGUMENT:
        return new AuthError(
          'AUTH_ERR_WORKLOAD_INVALID_REQUEST',
          `${method}: the Workload API rejected the request as InvalidArgument${details}`,
          opts,
        );
      case grpc.status.DEADLINE_EXCEEDED:
        return new AuthError(
          'AUTH_ERR_WORKLOAD_TIMEOUT',
          `${method}: the Workload API at ${this.address} did not answer within ${this.#timeoutMs} ms`,
          opts,
        );
      case grpc.status.CANCELLED:
        if (this.isClosed) return this.#closedError(method);
        break;
    }
    return new AuthError(
      'AUTH_ERR_WORKLOAD_CALL_FAILED',
      `${method}: the Workload API at ${this.address} answered ${grpcStatusName(status.code)}${details}`,
      opts,
    );
  }

  async #watch<M extends keyof StreamResponses, T>(
    method: M,
    parse: (res: StreamResponses[M]) => Parsed<T>,
    watcher: Watcher<T>,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    if (this.isClosed) {
      watcher.onError(this.#closedError(method));
      return;
    }
    const stop = signal === undefined ? this.#closer.signal : AbortSignal.any([signal, this.#closer.signal]);
    const backoff = new Backoff(this.#backoff);
    while (!stop.aborted) {
      const outcome = await this.#stream(method, parse, watcher, stop, backoff);
      if (outcome.kind === 'stopped' || outcome.err === undefined) return;
      watcher.onError(outcome.err);
      if (outcome.kind === 'final') return;
      try {
        await sleep(backoff.next(), undefined, { signal: stop });
      } catch {
        return;
      }
    }
  }

  #stream<M extends keyof StreamResponses, T>(
    method: M,
    parse: (res: StreamResponses[M]) => Parsed<T>,
    watcher: Watcher<T>,
    stop: AbortSignal,
    backoff: Backoff,
  ): Promise<StreamOutcome> {
    const def = this.#method(method);
    return new Promise((resolve) => {
      watcher.onStreamState?.(true);
      const call = this.#client.makeServerStreamRequest(
        def.path,
        def.requestSerialize,
        def.responseDeserialize as (b: Buffer) => StreamResponses[M],
        {},
        this.#metadata(),
      );
      const onAbort = (): void => {
        call.cancel();
      };
      stop.addEventListener('abort', onAbort, { once: true });
      let callError: unknown;
      call.on('data', (res: StreamResponses[M]) => {
        let value: Parsed<T>;
        try {
          value = parse(res);
        } catch (cause) {
          watcher.onError(
            problem(`${method}: dropped an unusable update, the last good one stays in use: ${reason(cause)}`, cause),
          );
          return;
        }
        backoff.reset();
        if (value.warnings.length > 0) watcher.onWarnings?.(value.warnings);
        watcher.onUpdate(value.value);
      });
      // The 'status' listener below decides what happens next; the error is
      // kept as the cause (and a failed stream must not be an unhandled 'error').
      call.on('error', (err: unknown) => {
        callError = err;
      });
      call.on('status', (status: grpc.StatusObject) => {
        stop.removeEventListener('abort', onAbort);
        watcher.onStreamState?.(false);
        if (stop.aborted) {
          resolve({ kind: 'stopped' });
        } else if (status.code === grpc.status.OK) {
          resolve({
            kind: 'retry',
            err: new AuthError(
              'AUTH_ERR_WORKLOAD_UNAVAILABLE',
              `${method}: the Workload API at ${this.address} ended the stream; reconnecting`,
            ),
          });
        } else {
          const err = this.#statusError(method, status, callError ?? status);
          resolve({ kind: FINAL_CODES.has(status.code) ? 'final' : 'retry', err });
        }
      });
    });
  }

  #fetchFirst<M extends keyof StreamResponses, T>(
    method: M,
    parse: (res: StreamResponses[M]) => Parsed<T>,
  ): Promise<T> {
    if (this.isClosed) return Promise.reject(this.#closedError(method));
    const def = this.#method(method);
    return new Promise<T>((resolve, reject) => {
      let settled = false;
      const call = this.#client.makeServerStreamRequest(
        def.path,
        def.requestSerialize,
        def.responseDeserialize as (b: Buffer) => StreamResponses[M],
        {},
        this.#metadata(),
        { deadline: Date.now() + this.#timeoutMs },
      );
      const onAbort = (): void => {
        call.cancel();
      };
      this.#closer.signal.addEventListener('abort', onAbort, { once: true });
      let callError: unknown;
      call.on('data', (res: StreamResponses[M]) => {
        if (settled) return;
        settled = true;
        try {
          resolve(parse(res).value);
        } catch (cause) {
          reject(cause instanceof AuthError ? cause : problem(`${method}: ${reason(cause)}`, cause));
        }
        call.cancel();
      });
      call.on('error', (err: unknown) => {
        callError = err;
      });
      call.on('status', (status: grpc.StatusObject) => {
        this.#closer.signal.removeEventListener('abort', onAbort);
        if (settled) return;
        settled = true;
        reject(
          status.code === grpc.status.OK
            ? new AuthError(
                'AUTH_ERR_WORKLOAD_UNAVAILABLE',
                `${method}: the Workload API at ${this.address} ended the stream before sending anything`,
              )
            : this.#statusError(method, status, callError ?? status),
        );
      });
    });
  }

  #unary<M extends keyof UnaryResponses>(method: M, request: object): Promise<UnaryResponses[M]> {
    if (this.isClosed) return Promise.reject(this.#closedError(method));
    const def = this.#method(method);
    return new Promise<UnaryResponses[M]>((resolve, reject) => {
      const onAbort = (): void => {
        call.cancel();
      };
      const call = this.#client.makeUnaryRequest(
        def.path,
        def.requestSerialize,
        def.responseDeserialize as (b: Buffer) => UnaryResponses[M],
        request,
        this.#metadata(),
        { deadline: Date.now() + this.#timeoutMs },
        (err, res) => {
          this.#closer.signal.removeEventListener('abort', onAbort);
          if (err) reject(this.#statusError(method, err, err));
          else if (res === undefined) reject(problem(`${method}: the response is empty`));
          else resolve(res);
        },
      );
      this.#closer.signal.addEventListener('abort', onAbort, { once: true });
    });
  }
}
