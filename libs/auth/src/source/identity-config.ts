import { AuthError, isAuthError } from '../errors.ts';
import { TrustDomain } from '../spiffeid/trust-domain.ts';
import { endpointFromEnv, SOCKET_ENV, type WorkloadEndpoint } from '../workloadapi/address.ts';

/** IDENTITY_FILE_VARS are the variables that together name a static identity: certificate, key and CA files. */
export const IDENTITY_FILE_VARS = ['TLS_CERT_FILE', 'TLS_KEY_FILE', 'TLS_CA_FILE'] as const;

/** IdentityFiles are the paths of a static identity. */
export interface IdentityFiles {
  /** certFile is the PEM certificate chain, leaf first (`TLS_CERT_FILE`). */
  readonly certFile: string;
  /** keyFile is the PEM PKCS#8 private key (`TLS_KEY_FILE`). */
  readonly keyFile: string;
  /** caFile holds the CA certificates or SPIFFE bundle of our trust domain (`TLS_CA_FILE`). */
  readonly caFile: string;
}

/**
 * IdentityConfig is where this process gets its identity, as the
 * environment says, read once and frozen: the Workload API (`workload`) or
 * static files (`files`), plus the settings both share.
 */
export type IdentityConfig = Readonly<
  (
    | {
        kind: 'spiffe';
        /** workload is the Workload API endpoint (`SPIFFE_ENDPOINT_SOCKET`). */
        workload: WorkloadEndpoint;
        /** ignoredFileVars lists the file variables that are set but unused, since the Workload API wins. */
        ignoredFileVars: readonly string[];
      }
    | {
        kind: 'files';
        files: IdentityFiles;
        /** trustDomain the CA file speaks for (`TRUST_DOMAIN`). Default: our certificate's. */
        trustDomain?: string;
      }
  ) & {
    /** trustBridgeFile adds its PEM CAs to our own trust domain's bundle (`TRUST_BRIDGE_CA_FILE`). Default: none. */
    trustBridgeFile?: string;
  }
>;

function setting(env: NodeJS.ProcessEnv, name: string): string | undefined {
  return env[name]?.trim() || undefined;
}

// Only the file source reads TRUST_DOMAIN, so only then is it checked.
function trustDomainFromEnv(env: NodeJS.ProcessEnv): string | undefined {
  const name = setting(env, 'TRUST_DOMAIN');
  if (name === undefined) return undefined;
  try {
    TrustDomain.parse(name);
  } catch (err) {
    if (!isAuthError(err)) throw err;
    throw new AuthError(err.code, `TRUST_DOMAIN: ${err.message}`, { cause: err });
  }
  return name;
}

/**
 * identityConfigFromEnv reads the identity settings from `env` once:
 * - `SPIFFE_ENDPOINT_SOCKET` set → the SPIRE agent's Workload API (it wins when files are set too);
 * - else `TLS_CERT_FILE`, `TLS_KEY_FILE` and `TLS_CA_FILE` all set → static files;
 * - `TRUST_DOMAIN` (files only) and `TRUST_BRIDGE_CA_FILE` optionally.
 * Anything unusable is AUTH_ERR_CONFIG_INVALID, or the address's or trust
 * domain's own error code, with a message naming the variable it came from.
 */
export function identityConfigFromEnv(env: NodeJS.ProcessEnv = process.env): IdentityConfig {
  const shared = { trustBridgeFile: setting(env, 'TRUST_BRIDGE_CA_FILE') };
  const setFiles = IDENTITY_FILE_VARS.filter((v) => setting(env, v) !== undefined);
  const workload = endpointFromEnv(env);
  if (workload) {
    return Object.freeze({ kind: 'spiffe', workload, ignoredFileVars: Object.freeze(setFiles), ...shared });
  }
  if (setFiles.length === IDENTITY_FILE_VARS.length) {
    // The paths as written: a file name may end in a space.
    const files = Object.freeze({
      certFile: env.TLS_CERT_FILE ?? '',
      keyFile: env.TLS_KEY_FILE ?? '',
      caFile: env.TLS_CA_FILE ?? '',
    });
    return Object.freeze({ kind: 'files', files, trustDomain: trustDomainFromEnv(env), ...shared });
  }
  if (setFiles.length > 0) {
    const missing = IDENTITY_FILE_VARS.filter((v) => !setFiles.includes(v));
    throw new AuthError(
      'AUTH_ERR_CONFIG_INVALID',
      `static identity needs ${IDENTITY_FILE_VARS.join(', ')}; ${missing.join(', ')} ${missing.length === 1 ? 'is' : 'are'} not set`,
    );
  }
  throw new AuthError(
    'AUTH_ERR_CONFIG_INVALID',
    `no identity configured: set ${SOCKET_ENV} (e.g. unix:///run/spire/agent.sock) or ${IDENTITY_FILE_VARS.join(', ')}`,
  );
}
