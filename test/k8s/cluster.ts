// The cluster test/k8s.test.ts runs on: the single-node cluster of
// scripts/k8s (startCluster: the running one, or a new one that stop()
// takes down again), with the shop's and SPIRE's images built from this
// checkout (scripts/containers/local-images.ts) and imported into its
// containerd, so the suite always runs the code it is part of.
import { buildLocalImages, localImageNames, SHOP_TAG, SHOP_TARGETS } from '../../scripts/containers/local-images.ts';
import type { KubeTools } from './kube.ts';

/** ClusterLease is the cluster for the length of the suite. */
export interface ClusterLease {
  tools: KubeTools;
  /** release stops the cluster if the suite started it; a cluster that was already running is left running. */
  release(): Promise<void>;
}

// The part of scripts/k8s/cluster.ts the suite uses.
interface LocalCluster {
  kubeconfig: string;
  tools: { kubectl: string; helm: string };
  importImages: (names: string[], opts?: { force?: boolean }) => Promise<string[]>;
  stop: (opts?: { force?: boolean }) => Promise<void>;
}
interface ClusterModule {
  startCluster: (opts?: { shopImages?: boolean }) => Promise<LocalCluster>;
}

// A path in a variable: the module is loaded at run time, so this file also
// type-checks on a branch where scripts/k8s is not there yet.
const CLUSTER_MODULE = '../../scripts/k8s/cluster.ts';

/** useCluster builds the images, brings the cluster up (or reuses it) and imports the images into it. */
export async function useCluster(): Promise<ClusterLease> {
  const { ensureEngine, stopEngine } = await import('../../scripts/containers/docker-engine.ts');
  const engine = await ensureEngine();
  let cluster: LocalCluster | undefined;
  try {
    await buildLocalImages();
    const { startCluster } = (await import(CLUSTER_MODULE)) as ClusterModule;
    cluster = await startCluster({ shopImages: false });
    const local = await localImageNames();
    await cluster.importImages([
      ...SHOP_TARGETS.map((t) => `spiffe-shop/${t}:${SHOP_TAG}`),
      local.spireServer,
      local.spireAgent,
    ]);
  } catch (err) {
    await cluster?.stop().catch(() => undefined);
    throw err;
  } finally {
    await stopEngine(engine);
  }
  const started = cluster;
  return {
    tools: { kubectl: started.tools.kubectl, helm: started.tools.helm, kubeconfig: started.kubeconfig },
    release: () => started.stop(),
  };
}
