// The proof that the local cluster works and leaves no trace, run by hand
// (as root) rather than in `npm test`, since it owns the whole machine for a
// few minutes. Each round:
//   1. snapshot the host; up (time to a Ready node and to CoreDNS Ready);
//   2. up again: finds the running cluster (idempotent);
//   3. a Deployment + Service "echo" and a client pod: the client resolves
//      echo's Service name (full and short), fetches it through the Service
//      and straight from the pod's IP, and gets NXDOMAIN for a Service that
//      does not exist (the negative beside the positive);
//   4. RSS of each component;
//   5. down, down again; the host snapshot must equal the one before.
//
//   node scripts/k8s/smoke.ts [--rounds 2]
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { COMPONENTS, startCluster, stopCluster, type Cluster } from './cluster.ts';
import { diffHost, snapshotHost } from './host-state.ts';
import { CLUSTER_IMAGES } from './images.ts';
import { paths } from './layout.ts';

function log(msg: string): void {
  process.stderr.write(`k8s-smoke: ${msg}\n`);
}

async function rssMiB(): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const c of COMPONENTS) {
    const { pid } = JSON.parse(await readFile(join(paths.pids, `${c}.json`), 'utf8')) as { pid: number };
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    out[c] = Math.round(Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024);
  }
  return out;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function podNetworkCheck(cluster: Cluster): Promise<string> {
  const ns = 'k8s-smoke';
  const img = CLUSTER_IMAGES.netcheck;
  const manifests = {
    apiVersion: 'v1',
    kind: 'List',
    items: [
      { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } },
      {
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: { name: 'echo', namespace: ns },
        spec: {
          replicas: 1,
          selector: { matchLabels: { app: 'echo' } },
          template: {
            metadata: { labels: { app: 'echo' } },
            spec: {
              containers: [
                {
                  name: 'echo',
                  image: img,
                  imagePullPolicy: 'Never',
                  args: ['serve', ':8080'],
                  ports: [{ containerPort: 8080 }],
                  readinessProbe: { httpGet: { path: '/', port: 8080 }, periodSeconds: 1 },
                  securityContext: { runAsNonRoot: true, runAsUser: 65532, readOnlyRootFilesystem: true },
                },
              ],
            },
          },
        },
      },
      {
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name: 'echo', namespace: ns },
        spec: { selector: { app: 'echo' }, ports: [{ port: 80, targetPort: 8080 }] },
      },
    ],
  };
  await cluster.kubectl(['apply', '-f', '-'], { input: JSON.stringify(manifests) });
  await cluster.kubectl(['-n', ns, 'rollout', 'status', 'deploy/echo', '--timeout=120s'], { timeoutMs: 130_000 });
  const podIp = await cluster.kubectl([
    '-n',
    ns,
    'get',
    'pod',
    '-l',
    'app=echo',
    '-o',
    'jsonpath={.items[0].status.podIP}',
  ]);
  const client = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'client', namespace: ns },
    spec: {
      restartPolicy: 'Never',
      containers: [
        {
          name: 'client',
          image: img,
          imagePullPolicy: 'Never',
          args: [
            `get=http://echo.${ns}.svc.cluster.local/`,
            'get=http://echo/',
            `get=http://${podIp}:8080/`,
            `nxdomain=no-such-service.${ns}.svc.cluster.local`,
          ],
          securityContext: { runAsNonRoot: true, runAsUser: 65532, readOnlyRootFilesystem: true },
        },
      ],
    },
  };
  await cluster.kubectl(['apply', '-f', '-'], { input: JSON.stringify(client) });
  let phase = '';
  for (let i = 0; i < 120 && phase !== 'Succeeded' && phase !== 'Failed'; i++) {
    await sleep(1000);
    phase = await cluster.kubectl(['-n', ns, 'get', 'pod', 'client', '-o', 'jsonpath={.status.phase}']);
  }
  const logs = await cluster.kubectl(['-n', ns, 'logs', 'client']);
  if (phase !== 'Succeeded') throw new Error(`client pod ${phase || 'did not finish'}:\n${logs}`);
  await cluster.kubectl(['delete', 'namespace', ns, '--wait=false']);
  return logs.trim();
}

let rounds = 2;
try {
  const { values } = parseArgs({ options: { rounds: { type: 'string', default: '2' } } });
  rounds = Number(values.rounds);
  if (!Number.isInteger(rounds) || rounds < 1)
    throw new Error(`--rounds must be a positive integer, got ${values.rounds}`);
} catch (err) {
  log(`${(err as Error).message}; usage: smoke.ts [--rounds N]`);
  process.exit(2);
}
let failed = false;
for (let round = 1; round <= rounds; round++) {
  const before = await snapshotHost();
  const t0 = Date.now();
  let cluster: Cluster | undefined;
  try {
    cluster = await startCluster();
    const upSeconds = ((Date.now() - t0) / 1000).toFixed(1);
    const nodeReady = (await readFile(join(paths.cluster, 'node-ready-seconds'), 'utf8')).trim();
    const again = await startCluster();
    if (again.startedHere) throw new Error('a second up started another cluster instead of finding the running one');
    const nodes = await cluster.kubectl(['get', 'nodes', '-o', 'wide']);
    const net = await podNetworkCheck(cluster);
    const rss = await rssMiB();
    const total = Object.values(rss).reduce((a, b) => a + b, 0);
    console.log(`## round ${round}`);
    console.log(`up: ${upSeconds} s in all; control plane start to node Ready: ${nodeReady} s`);
    console.log(nodes.trim());
    console.log(net);
    console.log(`RSS MiB: ${JSON.stringify(rss)} (total ${total})`);
  } catch (err) {
    failed = true;
    log(`round ${round} failed: ${(err as Error).message}`);
  } finally {
    await stopCluster();
    await stopCluster(); // twice: down is idempotent
  }
  const diff = diffHost(before, await snapshotHost());
  if (diff.length) {
    failed = true;
    console.log(`round ${round}: host differs after down:\n  ${diff.join('\n  ')}`);
  } else
    console.log(
      `round ${round}: host after down equals host before (sysctls, chains, mounts, links, netns, paths, cgroups)`,
    );
}
process.exit(failed ? 1 : 0);
