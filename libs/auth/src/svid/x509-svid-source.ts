import type { X509Svid } from './x509-svid.ts';

/**
 * X509SvidSource gives our current X.509-SVID (go-spiffe's
 * `x509svid.Source`). TLS builders ask it on every new connection or
 * rotation, so any source (files, the Workload API, a test's memory) can
 * stand behind them.
 */
export interface X509SvidSource {
  /** getX509Svid returns the current SVID, or throws AUTH_ERR_SOURCE_NOT_READY before the first one. */
  getX509Svid(): X509Svid;
}
