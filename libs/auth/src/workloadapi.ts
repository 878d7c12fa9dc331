// @shop/auth/workloadapi: the SPIFFE Workload API client, its endpoint
// address rules, and the X.509 and JWT sources built on it.
export {
  parseEndpointAddress,
  endpointFromEnv,
  resolveEndpoint,
  targetFromAddress,
  SOCKET_ENV,
  type WorkloadEndpoint,
} from './workloadapi/address.ts';
export type { BackoffOptions } from './workloadapi/backoff.ts';
export {
  WorkloadApiClient,
  type WorkloadApiClientOptions,
  type Watcher,
  type X509Context,
  type JwtSvidParams,
  type JwtSvidResult,
  type ValidatedJwtSvid,
} from './workloadapi/client.ts';
export { WorkloadX509Source, type WorkloadX509SourceOptions } from './workloadapi/x509-source.ts';
export { WorkloadJwtSource, type WorkloadJwtSourceOptions } from './workloadapi/jwt-source.ts';
