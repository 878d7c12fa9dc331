// The start-up order every service follows: ops port first (not ready), then
// the identity (the reason exposed while it is missing), then store and
// listeners, then ready.
import type { IdentitySource } from '@shop/auth';
import { Env, MAX_IDENTITY_WAIT_SECONDS } from './config.ts';
import { IdentityWaitError } from './errors.ts';
import type { Logger } from './metrics.ts';
import { identityNotReadyReason, type ReadinessCheck } from './ops-server.ts';

/** IDENTITY_WAIT_ENV is the variable that bounds the wait for the first identity, in seconds; 0 waits as long as it takes. */
export const IDENTITY_WAIT_ENV = 'IDENTITY_WAIT_SECONDS';

/** identityWaitSeconds reads IDENTITY_WAIT_SECONDS: a whole number of seconds, 0 (the default) for no deadline. */
export function identityWaitSeconds(env: NodeJS.ProcessEnv = process.env): number {
  return new Env(env).int(IDENTITY_WAIT_ENV, 0, { min: 0, max: MAX_IDENTITY_WAIT_SECONDS });
}

/** WaitForIdentityOptions configure waitForIdentity. */
export interface WaitForIdentityOptions {
  /** waitSeconds is the deadline; 0 waits as long as it takes. Default: IDENTITY_WAIT_SECONDS of `env`, else 0. */
  waitSeconds?: number;
  /** env is where IDENTITY_WAIT_SECONDS is read when `waitSeconds` is not given. Default: process.env. */
  env?: NodeJS.ProcessEnv;
  /** log gets a warning each time the reason for waiting changes. Default: none. */
  log?: Pick<Logger, 'warn'>;
}

/**
 * waitForIdentity resolves once `source` has its first identity, for a
 * source made with `createIdentitySource({ wait: false })`, which keeps
 * trying in the meantime. Each new reason it cannot (the source's last
 * error) is logged. After the deadline it rejects with IdentityWaitError
 * (SVC_ERR_IDENTITY_TIMEOUT) naming the last reason; a source that gives up
 * by itself (a final Workload API error, or closed) rejects with its error.
 * A bad IDENTITY_WAIT_SECONDS throws a ConfigError at once.
 */
export async function waitForIdentity(source: IdentitySource, o: WaitForIdentityOptions = {}): Promise<void> {
  const waitSeconds = o.waitSeconds ?? identityWaitSeconds(o.env);
  if (source.isReady) return;
  let logged: string | undefined;
  const report = (): void => {
    const reason = identityNotReadyReason(source);
    if (reason === undefined || reason === logged) return;
    logged = reason;
    o.log?.warn(
      { reason, waitSeconds },
      waitSeconds === 0
        ? 'waiting for the identity (no deadline); not ready until it arrives'
        : `waiting for the identity (up to ${String(waitSeconds)} s); not ready until it arrives`,
    );
  };
  const onLoadError = (): void => {
    report();
  };
  report();
  source.on('loadError', onLoadError);
  let timer: NodeJS.Timeout | undefined;
  try {
    const deadline =
      waitSeconds === 0
        ? new Promise<never>(() => undefined)
        : new Promise<never>((_resolve, reject) => {
            timer = setTimeout(() => {
              const reason = identityNotReadyReason(source);
              // Ready right at the deadline: ready() settles the race.
              if (reason === undefined) return;
              reject(
                new IdentityWaitError(
                  `no identity within ${String(waitSeconds)} s (${IDENTITY_WAIT_ENV}=${String(waitSeconds)}): ${reason}`,
                  reason,
                  { cause: source.lastError },
                ),
              );
            }, waitSeconds * 1000);
          });
    await Promise.race([source.ready(), deadline]);
  } finally {
    clearTimeout(timer);
    source.off('loadError', onLoadError);
  }
}

/**
 * StartupGate is the readiness check of the start-up itself: it fails until
 * `open()`, which a service calls once every listener is up, so that
 * /health/ready, served from the very start, never says ready before the
 * API answers.
 */
export class StartupGate {
  #open = false;

  /** check is the ReadinessCheck to register (e.g. as `started`). */
  readonly check: ReadinessCheck = () =>
    this.#open ? true : { ok: false, reason: 'start-up under way: the API listeners are not up yet' };

  /** open marks the start-up done. */
  open(): void {
    this.#open = true;
  }
}
