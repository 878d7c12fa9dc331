// kubectl and helm for test/k8s.test.ts: each call is a real process against
// the cluster of scripts/k8s, with its output kept for the failure message.
import { execFile } from 'node:child_process';

/** KubeTools are the binaries and the kubeconfig the suite talks to the cluster with. */
export interface KubeTools {
  kubectl: string;
  helm: string;
  kubeconfig: string;
}

/** CommandError is a failed kubectl or helm call, with what it printed. */
export class CommandError extends Error {
  readonly stdout: string;
  readonly stderr: string;
  readonly exitCode: number | undefined;
  constructor(cmd: string, exitCode: number | undefined, stdout: string, stderr: string) {
    super(`${cmd} exited with ${String(exitCode)}: ${stderr.trim() || stdout.trim()}`);
    this.stdout = stdout;
    this.stderr = stderr;
    this.exitCode = exitCode;
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Kube runs kubectl and helm with one kubeconfig. */
export class Kube {
  readonly tools: KubeTools;
  constructor(tools: KubeTools) {
    this.tools = tools;
  }

  #exec(bin: string, args: string[], input?: string, timeoutMs = 300_000): Promise<string> {
    const env = { ...process.env, KUBECONFIG: this.tools.kubeconfig, HELM_CACHE_HOME: '/tmp/shop-k8s-helm-cache' };
    const name = `${bin.split('/').pop() ?? bin} ${args.join(' ')}`;
    return new Promise<string>((resolve, reject) => {
      const child = execFile(bin, args, { env, maxBuffer: 64 << 20, timeout: timeoutMs }, (err, stdout, stderr) => {
        if (err) {
          const code = typeof err.code === 'number' ? err.code : undefined;
          reject(new CommandError(name, code, stdout, stderr || err.message));
        } else resolve(stdout);
      });
      child.stdin?.end(input ?? '');
    });
  }

  /** kubectl runs kubectl and returns its stdout; `input` goes to its stdin. */
  kubectl(args: string[], input?: string, timeoutMs?: number): Promise<string> {
    return this.#exec(this.tools.kubectl, args, input, timeoutMs);
  }

  /** helm runs helm and returns its stdout. */
  helm(args: string[], timeoutMs?: number): Promise<string> {
    return this.#exec(this.tools.helm, args, undefined, timeoutMs);
  }

  /** json runs kubectl with -o json and parses it. */
  async json<T = Record<string, unknown>>(args: string[]): Promise<T> {
    return JSON.parse(await this.kubectl([...args, '-o', 'json'])) as T;
  }

  /** apply applies manifests given as text. */
  async apply(manifest: string): Promise<void> {
    await this.kubectl(['apply', '-f', '-'], manifest);
  }

  /** pods lists the pods of a namespace that match a label selector. */
  async pods(namespace: string, selector: string): Promise<Pod[]> {
    const list = await this.json<{ items: Pod[] }>(['-n', namespace, 'get', 'pods', '-l', selector]);
    return list.items;
  }

  /** readyPods are the pods of `selector` that are Ready and not being deleted. */
  async readyPods(namespace: string, selector: string): Promise<Pod[]> {
    return (await this.pods(namespace, selector)).filter(
      (p) =>
        !p.metadata.deletionTimestamp &&
        (p.status.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True'),
    );
  }

  /** logs are the logs of every container of the pods of `selector`. */
  logs(namespace: string, selector: string, extra: string[] = []): Promise<string> {
    return this.kubectl(['-n', namespace, 'logs', '-l', selector, '--tail=-1', '--max-log-requests=10', ...extra]);
  }

  /** clusterIp is a Service's cluster IP. */
  async clusterIp(namespace: string, service: string): Promise<string> {
    return (await this.kubectl(['-n', namespace, 'get', 'svc', service, '-o', 'jsonpath={.spec.clusterIP}'])).trim();
  }

  /** rollout waits until a Deployment, DaemonSet or StatefulSet has rolled out. */
  async rollout(namespace: string, what: string, timeout = '180s'): Promise<void> {
    await this.kubectl(['-n', namespace, 'rollout', 'status', what, `--timeout=${timeout}`], undefined, 200_000);
  }

  /** describe is `kubectl get` and `describe` output of what the suite looked at, for a failure message. */
  async describe(namespace: string): Promise<string> {
    const parts = await Promise.allSettled([
      this.kubectl(['-n', namespace, 'get', 'all,secrets,pvc', '-o', 'wide']),
      this.kubectl(['-n', namespace, 'get', 'events', '--sort-by=.lastTimestamp']),
    ]);
    return parts.map((p) => (p.status === 'fulfilled' ? p.value : String(p.reason))).join('\n');
  }
}

/** Pod is the part of a pod the suite reads. */
export interface Pod {
  metadata: { name: string; uid: string; deletionTimestamp?: string; labels?: Record<string, string> };
  spec: { serviceAccountName?: string; nodeName?: string };
  status: {
    phase: string;
    podIP?: string;
    conditions?: { type: string; status: string }[];
    containerStatuses?: { name: string; restartCount: number; ready: boolean }[];
  };
}

/** waitFor polls `check` until it returns a value (not undefined), or fails naming `what` and the last reason. */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined>,
  timeoutMs = 120_000,
  everyMs = 1000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined) return v;
    } catch (err) {
      last = (err as Error).message;
    }
    if (Date.now() > deadline)
      throw new Error(`${what}: not within ${String(timeoutMs / 1000)} s${last ? `; last: ${last}` : ''}`);
    await sleep(everyMs);
  }
}
