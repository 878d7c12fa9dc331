/**
 * BundleWarning names one key entry of a SPIFFE bundle that was ignored, in
 * whole or in part, as the SPIFFE specifications tell a consumer to do (an
 * unknown `kty` or `use`, an `x509-svid` entry without a certificate, a
 * `jwt-svid` entry without `kid`, …). The rest of the bundle stays in force.
 */
export interface BundleWarning {
  /** trustDomain is the trust domain whose bundle held the entry. */
  trustDomain: string;
  /** index is the entry's position in the bundle's `keys` array. */
  index: number;
  /** use is the entry's `use`, when it is a string. */
  use?: string;
  /** kid is the entry's `kid`, when it is a string. */
  kid?: string;
  /** skipped is true when the whole entry was ignored, false when the entry is used and only a part of it was ignored. */
  skipped: boolean;
  /** reason says what is wrong with the entry and which clause of which specification applies. */
  reason: string;
  /** message is one sentence for logs: the bundle, the entry, the reason, and what was done. */
  message: string;
  /** where names the input the bundle came from (a file, a Workload API field), when known. */
  where?: string;
}

/** BundleWarningEvent is what a source's `bundleWarning` event carries: the warnings of one new bundle. */
export interface BundleWarningEvent {
  /** warnings lists each ignored entry (or part of one); never empty. */
  warnings: readonly BundleWarning[];
}

/** describeEntry names a key entry for messages, e.g. `keys[2] (use "jwt-svid", kid "k1")`. */
export function describeEntry(index: number, use?: string, kid?: string): string {
  const parts: string[] = [];
  if (use !== undefined) parts.push(`use ${JSON.stringify(use)}`);
  if (kid !== undefined) parts.push(`kid ${JSON.stringify(kid)}`);
  return parts.length === 0 ? `keys[${String(index)}]` : `keys[${String(index)}] (${parts.join(', ')})`;
}

/** warningSignature is a stable text of a warning list, so a source can report a bundle's warnings once and not on every identical update. */
export function warningSignature(warnings: readonly BundleWarning[]): string {
  return warnings.map((w) => `${w.where ?? ''}|${w.message}`).join('\n');
}
