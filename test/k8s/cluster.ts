// The cluster test/k8s.test.ts runs on: the single-node cluster of
// scripts/k8s, with the tools scripts/k8s/get-k8s.ts caches.
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { KubeTools } from './kube.ts';

/** ClusterLease is the cluster for the length of the suite. */
export interface ClusterLease {
  tools: KubeTools;
  /** release stops the cluster if the suite started it; a cluster that was already running is left running. */
  release(): Promise<void>;
}

const cache = (): string => join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'spiffe-shop');

/** useCluster reuses the running cluster. */
export function useCluster(): Promise<ClusterLease> {
  const tools: KubeTools = {
    kubectl: join(cache(), 'kubernetes', 'v1.34.4', 'bin', 'kubectl'),
    helm: join(cache(), 'helm', 'v3.19.5', 'helm'),
    kubeconfig: '/var/lib/spiffe-shop-k8s/cluster/admin.kubeconfig',
  };
  for (const [what, path] of Object.entries(tools) as [string, string][]) {
    if (!existsSync(path)) return Promise.reject(new Error(`${what} ${path} is missing: run npm run k8s:up first`));
  }
  return Promise.resolve({ tools, release: () => Promise.resolve() });
}
