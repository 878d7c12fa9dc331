import { WorkloadX509Source } from '../workloadapi/x509-source.ts';
import { FileIdentitySource } from './file-source.ts';
import { identityConfigFromEnv, type IdentityConfig } from './identity-config.ts';
import { TrustBridgeSource } from './trust-bridge-source.ts';
import type { IdentitySource, IdentitySourceOptions } from './identity-source.ts';

/** CreateIdentitySourceOptions override what the environment says; unset fields come from `config`. */
export interface CreateIdentitySourceOptions extends IdentitySourceOptions {
  /** config is the identity configuration, as a service read it at start-up. Default: `identityConfigFromEnv(env)`. */
  config?: IdentityConfig;
  /** env to read when no `config` is given. Default: process.env. */
  env?: NodeJS.ProcessEnv;
  /**
   * wait: resolve only once the first material is loaded (rejecting after
   * `workloadTimeoutMs`, or at once on unusable files). With false, resolve
   * at once with a source that keeps trying (the Workload API with backoff,
   * the files every `reloadIntervalMs`) without a deadline: `isReady`,
   * `lastError` and `ready()` tell when it has an identity and what is in
   * the way until then, so a service can report "not ready, because …".
   * Default: true.
   */
  wait?: boolean;
  /** workloadTimeoutMs is how long to wait for the first SVID from the Workload API. Default: 30000 with `wait`, none without. */
  workloadTimeoutMs?: number;
  /** reloadIntervalMs for the file source. Default: 1000. */
  reloadIntervalMs?: number;
  /** trustDomain the CA file speaks for (file source). Default: `TRUST_DOMAIN`, else our certificate's. */
  trustDomain?: string;
  /** federatedBundleFiles for the file source, trust domain → file. Default: none. */
  federatedBundleFiles?: Record<string, string>;
  /** log receives the one line that says which source was picked and why. Default: none. */
  log?: (message: string) => void;
  /** trustBridgeFile adds its PEM CAs to our own trust domain's bundle, in either mode (a migration's bridge). Default: `TRUST_BRIDGE_CA_FILE`, else none. */
  trustBridgeFile?: string;
}

/**
 * createIdentitySource picks where this process gets its identity, by its
 * identity configuration (`config`, else `identityConfigFromEnv(env)`), and
 * waits for the first material:
 * - `SPIFFE_ENDPOINT_SOCKET` set → the SPIRE agent's Workload API (it wins when files are set too);
 * - else `TLS_CERT_FILE`, `TLS_KEY_FILE` and `TLS_CA_FILE` all set → static files, hot-reloaded;
 * - anything else → AUTH_ERR_CONFIG_INVALID naming what is missing.
 * With `TRUST_BRIDGE_CA_FILE` set, either is wrapped in a TrustBridgeSource that
 * also trusts that file's CAs for our own trust domain (docs/migration.md).
 * The returned source's `describe()` (also passed to `log`) says which was picked.
 * With `wait: false` it returns before the first material (see `wait`).
 */
export async function createIdentitySource(options: CreateIdentitySourceOptions = {}): Promise<IdentitySource> {
  const config = options.config ?? identityConfigFromEnv(options.env);
  const source = await createPlainSource(options, config);
  const bridgeFile = options.trustBridgeFile ?? config.trustBridgeFile;
  if (!bridgeFile) return source;
  try {
    const bridged = await TrustBridgeSource.create({
      inner: source,
      caFile: bridgeFile,
      reloadIntervalMs: options.reloadIntervalMs,
      expiryWarningSeconds: options.expiryWarningSeconds,
      waitForInner: options.wait !== false,
    });
    options.log?.(`trust bridged: ${bridged.describe()}, because TRUST_BRIDGE_CA_FILE is set`);
    return bridged;
  } catch (err) {
    await source.close();
    throw err;
  }
}

async function createPlainSource(
  options: CreateIdentitySourceOptions,
  config: IdentityConfig,
): Promise<IdentitySource> {
  const wait = options.wait !== false;
  if (config.kind === 'spiffe') {
    const workload = {
      address: config.workload.address,
      timeoutMs: options.workloadTimeoutMs ?? (wait ? undefined : Number.POSITIVE_INFINITY),
      expiryWarningSeconds: options.expiryWarningSeconds,
    };
    const source = wait ? await WorkloadX509Source.create(workload) : WorkloadX509Source.open(workload);
    const ignored = config.ignoredFileVars.length > 0 ? ` (${config.ignoredFileVars.join(', ')} ignored)` : '';
    options.log?.(`identity from SPIFFE: ${source.describe()}, because SPIFFE_ENDPOINT_SOCKET is set${ignored}`);
    return source;
  }
  const fileOptions = {
    ...config.files,
    trustDomain: options.trustDomain ?? config.trustDomain,
    federatedBundleFiles: options.federatedBundleFiles,
    reloadIntervalMs: options.reloadIntervalMs,
    expiryWarningSeconds: options.expiryWarningSeconds,
  };
  const source = wait ? await FileIdentitySource.create(fileOptions) : FileIdentitySource.open(fileOptions);
  options.log?.(`identity from static files: ${source.describe()}, because SPIFFE_ENDPOINT_SOCKET is not set`);
  return source;
}
