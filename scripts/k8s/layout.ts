// Where the local cluster keeps its state. Fixed, outside the repository,
// so that `down` (and a later `up` after a crash) always finds what an
// earlier `up` made:
//   /var/lib/spiffe-shop-k8s/cluster/   this run: PKI, etcd data, kubelet root,
//                                        configs, kubeconfigs, pid files,
//                                        the host snapshot (removed by down)
//   /var/lib/spiffe-shop-k8s/logs/      each component's log of the last run
//   /var/lib/spiffe-shop-k8s/containerd/ containerd's root: imported images,
//                                        kept across runs (down --purge removes it)
//   /run/spiffe-shop-k8s/               containerd's socket and state (removed by down)
import { join } from 'node:path';

/** STATE_DIR is the cluster's state directory (SPIFFE_SHOP_K8S_STATE_DIR overrides it). */
export const STATE_DIR = process.env.SPIFFE_SHOP_K8S_STATE_DIR ?? '/var/lib/spiffe-shop-k8s';
/** RUN_DIR holds sockets and runtime state; short, for the 108-byte socket path limit. */
export const RUN_DIR = process.env.SPIFFE_SHOP_K8S_RUN_DIR ?? '/run/spiffe-shop-k8s';
/** CLUSTER_DIR is this run's state, removed by down. */
export const CLUSTER_DIR = join(STATE_DIR, 'cluster');

/** paths are the files and directories of the cluster. */
export const paths = {
  state: STATE_DIR,
  run: RUN_DIR,
  cluster: CLUSTER_DIR,
  logs: join(STATE_DIR, 'logs'),
  pids: join(CLUSTER_DIR, 'pids'),
  pki: join(CLUSTER_DIR, 'pki'),
  etcdData: join(CLUSTER_DIR, 'etcd'),
  kubeletRoot: join(CLUSTER_DIR, 'kubelet'),
  config: join(CLUSTER_DIR, 'config'),
  cniConf: join(CLUSTER_DIR, 'cni', 'net.d'),
  cniData: join(CLUSTER_DIR, 'cni', 'ipam'),
  /** kubeconfig is the admin kubeconfig, for kubectl and helm on the host. */
  kubeconfig: join(CLUSTER_DIR, 'admin.kubeconfig'),
  snapshot: join(CLUSTER_DIR, 'host-before.json'),
  containerdRoot: join(STATE_DIR, 'containerd'),
  imagesRecord: join(STATE_DIR, 'containerd', 'spiffe-shop-imported.json'),
  containerdState: join(RUN_DIR, 'containerd'),
  containerdSock: join(RUN_DIR, 'containerd.sock'),
  containerdConfig: join(CLUSTER_DIR, 'config', 'containerd.toml'),
} as const;

/** NETWORK is the cluster's addressing: pods on one node, Services, DNS. */
export const NETWORK = {
  clusterCidr: '10.244.0.0/16',
  podCidr: '10.244.0.0/24',
  serviceCidr: '10.96.0.0/16',
  apiServiceIp: '10.96.0.1',
  dnsServiceIp: '10.96.0.10',
  clusterDomain: 'cluster.local',
  bridge: 'cni0',
  apiserverPort: 6443,
} as const;

/** NODE_NAME is the name the kubelet registers. */
export const NODE_NAME = 'spiffe-shop-node';
