// The local cluster from the command line (as root):
//   node scripts/k8s/cli.ts up              # start (or find running); prints the kubeconfig path
//   node scripts/k8s/cli.ts down [--purge]  # stop and restore the host; --purge also drops imported images
//   node scripts/k8s/cli.ts status          # running or not, and the kubeconfig path
//   node scripts/k8s/cli.ts images [NAME…] # (re)import Docker images into the running cluster
import { parseArgs } from 'node:util';
import { clusterRunning, startCluster, stopCluster } from './cluster.ts';
import { availableShopImages, CLUSTER_IMAGES, importImages } from './images.ts';
import { paths } from './layout.ts';

const USAGE = 'usage: cli.ts up | down [--purge] | status | images [NAME...]';

function fail(msg: string, code = 1): never {
  process.stderr.write(`k8s: ${msg}\n`);
  process.exit(code);
}

let parsed: ReturnType<
  typeof parseArgs<{ options: { purge: { type: 'boolean'; default: false } }; allowPositionals: true }>
>;
try {
  parsed = parseArgs({ options: { purge: { type: 'boolean', default: false } }, allowPositionals: true });
} catch (err) {
  fail(`${(err as Error).message}\n${USAGE}`, 2);
}
const [command, ...rest] = parsed.positionals;

try {
  switch (command) {
    case 'up': {
      const cluster = await startCluster();
      console.log(cluster.kubeconfig);
      process.stderr.write(
        `k8s: try: KUBECONFIG=${cluster.kubeconfig} ${cluster.tools.kubectl} get nodes\n` +
          `k8s: take it down with: npm run k8s:down\n`,
      );
      break;
    }
    case 'down':
      await stopCluster({ purge: parsed.values.purge });
      break;
    case 'status': {
      const up = await clusterRunning();
      console.log(up ? `running; KUBECONFIG=${paths.kubeconfig}` : 'not running');
      process.exitCode = up ? 0 : 3;
      break;
    }
    case 'images': {
      if (!(await clusterRunning())) fail('the cluster is not running: npm run k8s:up first');
      const names = rest.length ? rest : [...Object.values(CLUSTER_IMAGES), ...(await availableShopImages())];
      const done = await importImages(names, { force: rest.length > 0 });
      console.log(done.join('\n'));
      break;
    }
    default:
      fail(USAGE, 2);
  }
} catch (err) {
  fail((err as Error).message);
}
