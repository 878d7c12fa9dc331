// SPIRE on the test cluster from deploy/spire (the local variant), and its
// removal, leaving the node as it was: the server's volume directory and the
// agents' socket directory are removed if the suite created them.
import { existsSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { waitFor, type Kube } from './kube.ts';

const ROOT = join(import.meta.dirname, '../..');
/** SPIRE_DIR is deploy/spire. */
export const SPIRE_DIR = join(ROOT, 'deploy/spire');
/** SERVER_DATA_DIR is the node directory of the server's local PersistentVolume (deploy/spire/local). */
export const SERVER_DATA_DIR = '/var/lib/spiffe-shop-volumes/spire-server';
/** AGENT_SOCKET_DIR is where the agent DaemonSet puts its Workload API socket on the node. */
export const AGENT_SOCKET_DIR = '/run/spire/agent-sockets';

/** Spire is SPIRE installed by the suite. */
export interface Spire {
  /** bundlePem is the trust bundle the server published (ConfigMap spire/spire-bundle). */
  bundlePem(): Promise<string>;
  /** entriesFor lists the registration entries whose selectors name a pod's UID. */
  entriesFor(podUid: string): Promise<string>;
  /** remove deletes everything install created, on the cluster and on the node. */
  remove(): Promise<void>;
}

/** installSpire applies the CRD and deploy/spire/local, and waits for the server, the bundle and the agent. */
export async function installSpire(kube: Kube): Promise<Spire> {
  // What existed before, so remove() takes away only what this created.
  const created = [SERVER_DATA_DIR, '/var/lib/spiffe-shop-volumes', AGENT_SOCKET_DIR, '/run/spire'].filter(
    (d) => !existsSync(d),
  );
  const remove = async (): Promise<void> => {
    const errors: unknown[] = [];
    const step = async (args: string[]): Promise<void> => {
      await kube.kubectl(args).catch((err: unknown) => errors.push(err));
    };
    await step(['delete', '-k', join(SPIRE_DIR, 'local'), '--ignore-not-found', '--wait=true', '--timeout=120s']);
    // The volume is Retain: it outlives its claim (deleted with the namespace).
    await step(['delete', 'pv', 'spire-server-data', '--ignore-not-found', '--wait=true', '--timeout=60s']);
    await step(['delete', '-f', join(SPIRE_DIR, 'crds'), '--ignore-not-found']);
    for (const d of created) await rm(d, { recursive: true, force: true });
    if (errors.length > 0) throw new AggregateError(errors, 'removing SPIRE failed');
  };
  try {
    await mkdir(SERVER_DATA_DIR, { recursive: true });
    await kube.kubectl(['apply', '-f', join(SPIRE_DIR, 'crds')]);
    await kube.kubectl([
      'wait',
      '--for=condition=Established',
      'crd/clusterspiffeids.spire.spiffe.io',
      '--timeout=60s',
    ]);
    await kube.kubectl(['apply', '-k', join(SPIRE_DIR, 'local')]);
    await kube.rollout('spire', 'statefulset/spire-server');
    await waitFor('the server to publish its bundle to ConfigMap spire-bundle', async () => {
      const pem = await bundle(kube);
      return pem.includes('BEGIN CERTIFICATE') ? pem : undefined;
    });
    await kube.rollout('spire', 'daemonset/spire-agent');
  } catch (err) {
    const state = await kube.describe('spire').catch(() => '');
    await remove().catch(() => undefined);
    throw new Error(`SPIRE did not come up: ${(err as Error).message}\n${state}`, { cause: err });
  }
  return {
    bundlePem: () => bundle(kube),
    entriesFor: (podUid) =>
      kube.kubectl([
        '-n',
        'spire',
        'exec',
        'spire-server-0',
        '-c',
        'spire-server',
        '--',
        '/opt/spire/bin/spire-server',
        'entry',
        'show',
        '-socketPath',
        '/run/spire/server-sockets/api.sock',
        '-selector',
        `k8s:pod-uid:${podUid}`,
      ]),
    remove,
  };
}

async function bundle(kube: Kube): Promise<string> {
  return kube.kubectl(['-n', 'spire', 'get', 'configmap', 'spire-bundle', '-o', 'jsonpath={.data.bundle\\.crt}']);
}
