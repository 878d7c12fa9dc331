// The shop on a real Kubernetes cluster (issue 12): SPIRE from deploy/spire,
// the shop from the Helm chart deploy/helm/spiffe-shop, the eight scenarios
// of `npm run test:k8s`. The cluster is the one of scripts/k8s: reused when
// it runs, else started here and stopped at the end. Everything the suite
// creates (releases, namespaces, SPIRE, node directories) is removed again,
// also when a test fails.
import assert from 'node:assert/strict';
import { connect } from 'node:tls';
import { mkdir, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Agent, request } from 'undici';
import { createTestTrustDomain, type TestTrustDomain } from '@shop/auth-testing';
import { useCluster, type ClusterLease } from './k8s/cluster.ts';
import { Kube, waitFor, type CommandError, type Pod } from './k8s/kube.ts';
import { placeOrder, startShoppers, summary, type Answer } from './k8s/shoppers.ts';
import { installSpire, type Spire } from './k8s/spire.ts';

const ROOT = join(import.meta.dirname, '..');
const CHART = join(ROOT, 'deploy/helm/spiffe-shop');
const LOCAL_VALUES = join(ROOT, 'deploy/helm/values-local.yaml');
/** NS holds the release in SPIFFE mode (tests 1-5, 8's positive control). */
const NS = 'shop';
/** FILES_NS holds the release in files mode (tests 6 and 7). */
const FILES_NS = 'shop-files';
/** DATA_ROOT holds the node directories of the files release's SQLite volumes. */
const DATA_ROOT = '/var/lib/spiffe-shop-volumes/shop-files';
const SERVICES = ['order', 'payment', 'inventory'] as const;
type Service = (typeof SERVICES)[number];
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const idOf = (ns: string, sa: string): string => `spiffe://example.org/ns/${ns}/sa/${sa}`;

describe('the shop on Kubernetes (npm run test:k8s)', () => {
  let lease: ClusterLease | undefined;
  let kube: Kube;
  let spire: Spire | undefined;
  let orderUrl = '';
  let firstOrderId = '';
  const namespaces = new Set<string>();
  const dataRootExisted = existsSync(DATA_ROOT);

  before(async () => {
    lease = await useCluster();
    kube = new Kube(lease.tools);
    spire = await installSpire(kube);
    await createNamespace(NS);
    await helmInstall('shop', NS, []);
    orderUrl = `http://${await kube.clusterIp(NS, 'order')}:8080`;
  });

  after(async () => {
    // Each step runs even when one before it failed; the first failure is reported.
    const errors: unknown[] = [];
    const step = async (f: () => Promise<unknown>): Promise<void> => {
      try {
        await f();
      } catch (err) {
        errors.push(err);
      }
    };
    if (lease) {
      for (const ns of namespaces) {
        await step(() => kube.kubectl(['delete', 'namespace', ns, '--ignore-not-found', '--timeout=120s']));
      }
      await step(() => kube.kubectl(['delete', 'pv', '-l', 'spiffe-shop-test=k8s', '--ignore-not-found']));
      if (!dataRootExisted) await step(() => rm(DATA_ROOT, { recursive: true, force: true }));
      if (spire) await step(() => (spire as Spire).remove());
      await step(() => (lease as ClusterLease).release());
    }
    if (errors.length > 0) throw errors[0] as Error;
  });

  async function createNamespace(ns: string): Promise<void> {
    namespaces.add(ns);
    await kube.kubectl(['create', 'namespace', ns]);
  }

  async function helmInstall(release: string, ns: string, args: string[]): Promise<void> {
    try {
      await kube.helm(
        ['install', release, CHART, '-n', ns, '-f', LOCAL_VALUES, ...args, '--wait', '--timeout', '4m'],
        300_000,
      );
    } catch (err) {
      throw new Error(`helm install ${release}: ${(err as Error).message}\n${await kube.describe(ns)}`, { cause: err });
    }
  }

  async function helmUpgrade(release: string, ns: string, set: string[]): Promise<void> {
    await kube.helm(
      [
        'upgrade',
        release,
        CHART,
        '-n',
        ns,
        '--reuse-values',
        ...set.flatMap((s) => ['--set', s]),
        '--wait',
        '--timeout',
        '4m',
      ],
      300_000,
    );
  }

  /** orderConfirmed places one order and requires it confirmed, retrying while the shop converges. */
  async function orderConfirmed(url: string): Promise<Record<string, unknown>> {
    return waitFor(
      `an order confirmed at ${url}`,
      async () => {
        const r = await placeOrder(url);
        if (r.status === 201 && r.body.status === 'confirmed') return r.body;
        throw new Error(`${String(r.status)} ${JSON.stringify(r.body)}`);
      },
      60_000,
    );
  }

  /** metrics reads one pod's /metrics from its ops port (pod IPs are routable from the node). */
  async function metrics(pod: Pod, opsPort: number): Promise<string> {
    const res = await request(`http://${pod.status.podIP ?? ''}:${String(opsPort)}/metrics`, { headersTimeout: 5000 });
    return res.body.text();
  }
  const OPS_PORT: Record<Service, number> = { order: 9080, payment: 9443, inventory: 9444 };
  const selector = (name: string, release: string): string =>
    `app.kubernetes.io/name=${name},app.kubernetes.io/instance=${release}`;

  /** identityOf is a service's shop_identity_info labels and trust roots, read from each ready pod. */
  async function identityOf(
    ns: string,
    release: string,
    service: Service,
  ): Promise<{ source: string; id: string; issuer: string; roots: number }[]> {
    const pods = await kube.readyPods(ns, selector(service, release));
    return Promise.all(
      pods.map(async (p) => {
        const text = await metrics(p, OPS_PORT[service]);
        const info = /shop_identity_info\{([^}]*)\} 1/.exec(text)?.[1] ?? '';
        const label = (k: string): string => new RegExp(`${k}="([^"]*)"`).exec(info)?.[1] ?? '';
        const roots = /shop_identity_trust_roots\{[^}]*trust_domain="example.org"[^}]*\} (\d+)/.exec(text)?.[1];
        return {
          source: label('source'),
          id: label('spiffe_id'),
          issuer: label('issuer'),
          roots: Number(roots ?? NaN),
        };
      }),
    );
  }

  /** runProbe runs test/k8s/probe.ts in a pod of the shop's image under `serviceAccount`, and returns what it printed. */
  async function runProbe(
    ns: string,
    name: string,
    serviceAccount: string,
    orderId: string,
  ): Promise<Record<string, unknown>> {
    await kube.apply(
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: {
          name,
          namespace: ns,
          labels: { 'spiffe-shop-test': 'probe', 'spiffe-shop/payment-client': 'true' },
        },
        spec: {
          serviceAccountName: serviceAccount,
          automountServiceAccountToken: false,
          restartPolicy: 'Never',
          securityContext: { runAsNonRoot: true, runAsUser: 1000, runAsGroup: 1000 },
          containers: [
            {
              name: 'probe',
              image: 'spiffe-shop/order:dev',
              imagePullPolicy: 'Never',
              command: ['node', '/app/k8s-probe/probe.ts'],
              env: [
                { name: 'SPIFFE_ENDPOINT_SOCKET', value: 'unix:///spiffe-workload-api/spire-agent.sock' },
                { name: 'PROBE_PAYMENT_URL', value: 'https://payment:8443' },
                { name: 'PROBE_PAYMENT_ID', value: idOf(ns, 'payment') },
                { name: 'PROBE_ORDER_ID', value: orderId },
              ],
              securityContext: {
                allowPrivilegeEscalation: false,
                readOnlyRootFilesystem: true,
                capabilities: { drop: ['ALL'] },
              },
              volumeMounts: [
                { name: 'probe', mountPath: '/app/k8s-probe', readOnly: true },
                { name: 'spiffe', mountPath: '/spiffe-workload-api', readOnly: true },
              ],
            },
          ],
          volumes: [
            { name: 'probe', configMap: { name: 'k8s-probe' } },
            { name: 'spiffe', hostPath: { path: '/run/spire/agent-sockets', type: 'Directory' } },
          ],
        },
      }),
    );
    const phase = await waitFor(
      `probe pod ${name} to finish`,
      async () => {
        const p = await kube.json<Pod>(['-n', ns, 'get', 'pod', name]);
        return p.status.phase === 'Succeeded' || p.status.phase === 'Failed' ? p.status.phase : undefined;
      },
      150_000,
      2000,
    );
    const out = await kube.kubectl(['-n', ns, 'logs', name]);
    const line = out.trim().split('\n').pop() ?? '';
    assert.equal(phase, 'Succeeded', `probe ${name}: ${out}`);
    return JSON.parse(line) as Record<string, unknown>;
  }

  /** expectNoFailure asserts that shoppers saw only successful orders. */
  function expectNoFailure(answers: readonly Answer[], what: string): void {
    assert.ok(answers.length > 20, `${what}: too few orders to say anything (${summary(answers)})`);
    assert.deepEqual(
      answers.filter((a) => a.kind !== 'ok'),
      [],
      `${what}: ${summary(answers)}`,
    );
  }

  test('1. an order end to end; payment’s audit line names spiffe://example.org/ns/shop/sa/order', async () => {
    const order = await orderConfirmed(orderUrl);
    firstOrderId = String(order.order_id);
    const logs = await kube.logs(NS, selector('payment', 'shop'));
    const allows = logs
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { msg?: string; authz?: { caller?: string; route?: string } })
      .filter((l) => l.msg === 'authz allow' && l.authz?.route === '/api/charge');
    assert.ok(allows.length > 0, `no "authz allow" line for /api/charge in payment's log:\n${logs.slice(-3000)}`);
    assert.ok(
      allows.every((l) => l.authz?.caller === idOf(NS, 'order')),
      JSON.stringify(allows.slice(0, 3)),
    );
    // Every service runs on its SVID from SPIRE, named by namespace and service account.
    for (const s of SERVICES) {
      const [id] = await identityOf(NS, 'shop', s);
      assert.ok(id, `${s}: a ready pod`);
      assert.equal(id.source, 'spiffe', `${s}: ${JSON.stringify(id)}`);
      assert.equal(id.id, idOf(NS, s));
      assert.match(id.issuer, /SPIRE CA/);
    }
  });

  test('2. a pod under another service account gets its own identity and payment refuses it (403 naming it); one under order’s is served', async () => {
    await kube.kubectl([
      '-n',
      NS,
      'create',
      'configmap',
      'k8s-probe',
      `--from-file=probe.ts=${join(ROOT, 'test/k8s/probe.ts')}`,
    ]);
    await kube.kubectl(['-n', NS, 'create', 'serviceaccount', 'intruder']);
    // Positive control first: the same image under order's service account.
    const asOrder = await runProbe(NS, 'probe-as-order', 'order', firstOrderId || 'none');
    assert.equal(asOrder.identity, idOf(NS, 'order'), JSON.stringify(asOrder));
    assert.ok(
      (asOrder.dnsNames as string[]).includes('DNS:order'),
      `the SVID names the service: ${JSON.stringify(asOrder)}`,
    );
    assert.equal(asOrder.paymentStatus, firstOrderId ? 200 : 404, JSON.stringify(asOrder));

    const intruder = await runProbe(NS, 'probe-as-intruder', 'intruder', firstOrderId || 'none');
    assert.equal(intruder.identity, idOf(NS, 'intruder'), JSON.stringify(intruder));
    assert.equal(intruder.paymentStatus, 403, JSON.stringify(intruder));
    const body = intruder.paymentBody as { caller?: string; code?: string };
    assert.equal(body.caller, idOf(NS, 'intruder'), JSON.stringify(body));
  });

  test('3. a rolling update of payment (helm upgrade changing one value) under traffic: 0 failed orders', async () => {
    const before = (await kube.readyPods(NS, selector('payment', 'shop'))).map((p) => p.metadata.uid);
    const shoppers = startShoppers(orderUrl);
    try {
      await sleep(3000);
      await helmUpgrade('shop', NS, ['services.payment.env.PAYMENT_LATENCY_MS=5']);
      await sleep(5000);
    } finally {
      await shoppers.stop();
    }
    const answers = shoppers.answers;
    const after = (await kube.readyPods(NS, selector('payment', 'shop'))).map((p) => p.metadata.uid);
    assert.equal(after.filter((u) => before.includes(u)).length, 0, 'payment’s pods were replaced');
    expectNoFailure(answers, 'rolling update of payment');
  });

  test('4. a payment pod deleted under traffic: 503 with Retry-After while none serves, none after; the new pod gets an SVID by itself', async () => {
    const [old] = await kube.readyPods(NS, selector('payment', 'shop'));
    assert.ok(old, 'a payment pod');
    const shoppers = startShoppers(orderUrl);
    let fresh: Pod;
    let readyAt: number;
    try {
      await sleep(3000);
      await kube.kubectl(['-n', NS, 'delete', 'pod', old.metadata.name, '--wait=false']);
      fresh = await waitFor(
        'a new payment pod ready',
        async () => {
          const pods = await kube.readyPods(NS, selector('payment', 'shop'));
          return pods.find((p) => p.metadata.uid !== old.metadata.uid);
        },
        120_000,
      );
      readyAt = Date.now();
      // kube-proxy adds the new endpoint, and order's breaker half-opens
      // (BREAKER_RESET_MS, 3 s) and closes on its first good call: give it
      // 12 s, then require only confirmed orders for 8 s more.
      await sleep(20_000);
    } finally {
      await shoppers.stop();
    }
    const answers = shoppers.answers;
    // Never silent: while no payment pod serves, an order is either refused
    // with 503 + Retry-After (breaker open) or answered 201 "failed" with
    // payment_unavailable (the first calls, before the breaker opens: order
    // knows nothing was charged). Never a dropped connection or another error.
    const explicit = (a: Answer): boolean =>
      a.kind === 'ok' || a.kind === 'unavailable' || (a.kind === 'failed' && a.detail === 'failed payment_unavailable');
    const bad = answers.filter((a) => !explicit(a));
    assert.deepEqual(bad, [], `orders that failed otherwise: ${summary(answers)}`);
    const unavailable = answers.filter((a) => a.kind === 'unavailable');
    assert.ok(
      unavailable.every((a) => a.retryAfter !== undefined && a.detail === 'UPSTREAM_UNAVAILABLE'),
      `every 503 carries Retry-After: ${JSON.stringify(unavailable.slice(0, 3))}`,
    );
    const late = answers.filter((a) => a.kind !== 'ok' && a.at > readyAt + 12_000);
    assert.deepEqual(late, [], `no 503 once the new pod serves: ${summary(answers)}`);
    assert.ok(answers.filter((a) => a.kind === 'ok' && a.at > readyAt + 12_000).length > 5, summary(answers));
    // Its SVID came from an entry the controller manager made for it: no manual registration.
    const entries = await spire?.entriesFor(fresh.metadata.uid);
    assert.match(entries ?? '', new RegExp(`SPIFFE ID\\s+: ${idOf(NS, 'payment').replaceAll('.', '\\.')}`));
    const [id] = await identityOf(NS, 'shop', 'payment');
    assert.equal(id?.id, idOf(NS, 'payment'));
  });

  test('5. the SPIRE agent restarted under traffic: 0 failed orders; SVIDs rotate afterwards', async () => {
    const rotations = async (): Promise<number[]> =>
      Promise.all(
        SERVICES.map(async (s) => {
          const [p] = await kube.readyPods(NS, selector(s, 'shop'));
          const text = await metrics(p as Pod, OPS_PORT[s]);
          return Number(/shop_identity_rotations_total(?:\{[^}]*\})? (\d+)/.exec(text)?.[1] ?? NaN);
        }),
      );
    const shoppers = startShoppers(orderUrl);
    try {
      await sleep(3000);
      const [agent] = await kube.pods('spire', 'app.kubernetes.io/name=spire-agent');
      assert.ok(agent, 'an agent pod');
      await kube.kubectl(['-n', 'spire', 'delete', 'pod', agent.metadata.name, '--wait=true']);
      await kube.rollout('spire', 'daemonset/spire-agent');
      const afterRestart = await rotations();
      // SVIDs live 60 s (the ClusterSPIFFEID's ttl) and rotate at half-life.
      await waitFor(
        'every service to rotate its SVID after the agent restart',
        async () => {
          const now = await rotations();
          return now.every((n, i) => n > (afterRestart[i] ?? Infinity)) ? now : undefined;
        },
        90_000,
        3000,
      );
    } finally {
      await shoppers.stop();
    }
    expectNoFailure(shoppers.answers, 'agent restart');
  });

  test('6. files mode: Secrets mounted as files; a replaced Secret is presented without a restart', async () => {
    const td = await createTestTrustDomain('example.org');
    await createNamespace(FILES_NS);
    await createFilesSecrets(td);
    await createDataClaims();
    await helmInstall('shop', FILES_NS, [
      '--set',
      'identity=files',
      ...SERVICES.flatMap((s) => ['--set', `services.${s}.dataClaim=${s}-data`]),
    ]);
    const url = `http://${await kube.clusterIp(FILES_NS, 'order')}:8080`;
    await orderConfirmed(url);
    for (const s of SERVICES) {
      const [id] = await identityOf(FILES_NS, 'shop', s);
      assert.ok(id, `${s}: a ready pod`);
      assert.equal(id.source, 'files', `${s}: ${JSON.stringify(id)}`);
      assert.equal(id.id, idOf(FILES_NS, s));
    }
    const [pod] = await kube.readyPods(FILES_NS, selector('payment', 'shop'));
    assert.ok(pod, 'a payment pod');
    const paymentAddr = await kube.clusterIp(FILES_NS, 'payment');
    const firstSerial = await presentedSerial(paymentAddr, 8443, td);
    assert.equal(firstSerial, files.payment?.serial, 'payment presents the certificate of its Secret');

    const renewed = await issue(td, 'payment');
    await kube.apply(tlsSecret('payment', renewed));
    // The kubelet refreshes a Secret volume within its sync period (about a minute).
    await waitFor(
      'payment to present the renewed certificate',
      async () => ((await presentedSerial(paymentAddr, 8443, td)) === renewed.serial ? true : undefined),
      150_000,
      2000,
    );
    const [same] = await kube.readyPods(FILES_NS, selector('payment', 'shop'));
    assert.ok(same, 'a ready payment pod');
    assert.equal(same.metadata.uid, pod.metadata.uid, 'the same pod');
    assert.equal(same.status.containerStatuses?.[0]?.restartCount, 0, 'not restarted');
    await orderConfirmed(url);
  });

  test('7. the migration on Kubernetes: files → SPIFFE one service at a time with helm upgrade and the trust bridge, 0 failed orders', async () => {
    assert.ok(staticCa, 'test 6 installed the files release');
    const ca = staticCa;
    const url = `http://${await kube.clusterIp(FILES_NS, 'order')}:8080`;
    const shoppers = startShoppers(url);
    try {
      // 1. Bridge trust: files-mode services also trust SPIRE's bundle; SPIFFE-mode ones the static CA.
      const spireBundle = await (spire as Spire).bundlePem();
      await kube.apply(opaqueSecret('shop-trust', { 'ca.crt': ca.ca.certPem + spireBundle }));
      await kube.apply(opaqueSecret('shop-trust-bridge', { 'ca.crt': ca.ca.certPem }));
      await waitFor(
        'every files-mode service to trust two roots',
        async () => {
          for (const s of SERVICES) {
            const ids = await identityOf(FILES_NS, 'shop', s);
            if (ids.length === 0 || ids.some((i) => i.roots !== 2)) return undefined;
          }
          return true;
        },
        150_000,
        3000,
      );
      // 2.-4. inventory, payment, order move to SPIFFE, one helm upgrade each.
      for (const s of ['inventory', 'payment', 'order'] as const) {
        await helmUpgrade('shop', FILES_NS, ['trustBridge.secret=shop-trust-bridge', `services.${s}.identity=spiffe`]);
        const ids = await identityOf(FILES_NS, 'shop', s);
        assert.deepEqual(
          ids.map((i) => [i.source, i.id, i.roots]),
          ids.map(() => ['spiffe', idOf(FILES_NS, s), 2]),
          `${s} on SPIFFE, bridged: ${JSON.stringify(ids)}`,
        );
        assert.deepEqual(
          shoppers.answers.filter((a) => a.kind !== 'ok'),
          [],
          `after moving ${s}: ${summary(shoppers.answers)}`,
        );
      }
      // Before the bridge ends, a client holding order's static certificate is still let in (control) ...
      const paymentAddr = await kube.clusterIp(FILES_NS, 'payment');
      assert.equal(await callWithStaticOrderCertificate(paymentAddr), 404, 'static order certificate while bridged');
      // 5. End the bridge: an empty file, reloaded without a restart.
      await kube.apply(opaqueSecret('shop-trust-bridge', { 'ca.crt': '' }));
      await waitFor(
        'every service to drop the static CA',
        async () => {
          for (const s of SERVICES) {
            const ids = await identityOf(FILES_NS, 'shop', s);
            if (ids.length === 0 || ids.some((i) => i.roots !== 1)) return undefined;
          }
          return true;
        },
        150_000,
        3000,
      );
      // ... and refused once it has.
      assert.equal(await callWithStaticOrderCertificate(paymentAddr), 401, 'static order certificate after the bridge');
    } finally {
      const answers = await shoppers.stop();
      expectNoFailure(answers, 'migration');
    }
  });

  test('8. bad values: helm install fails naming the value, and nothing is half-installed', async () => {
    // Positive control: the same command with good values passes every check (server-side dry run: nothing is created).
    await kube.helm([
      'install',
      'shop-bad',
      CHART,
      '-n',
      'shop-bad',
      '--create-namespace',
      '-f',
      LOCAL_VALUES,
      '--dry-run=server',
    ]);
    assert.equal((await kube.kubectl(['get', 'namespace', 'shop-bad', '--ignore-not-found', '-o', 'name'])).trim(), '');
    // Each message names the value (its path in the values) and what it must be.
    const cases: [string[], RegExp][] = [
      [['--set', 'identity=certificates'], /at '\/identity': value must be one of 'spiffe', 'files'/],
      [['--set', 'services.payment.port=70000'], /at '\/services\/payment\/port': maximum: got 70,000, want 65,535/],
      [['--set', 'trustDomain=Example.ORG'], /at '\/trustDomain': 'Example.ORG' does not match pattern/],
      [['--set', 'services.order.spiffeId=https://example.org/order'], /at '\/services\/order\/spiffeId'/],
      [
        ['--set', 'services.order.inventoryProtocol=soap'],
        /at '\/services\/order\/inventoryProtocol': value must be one of 'grpc', 'http'/,
      ],
      [['--set', 'services.payment.replicas=-1'], /at '\/services\/payment\/replicas': minimum: got -1, want 0/],
      [['--set', 'replica=2'], /additional properties 'replica' not allowed/],
    ];
    for (const [set, message] of cases) {
      const ns = 'shop-bad';
      let failure: CommandError | undefined;
      try {
        await kube.helm(['install', 'shop-bad', CHART, '-n', ns, '--create-namespace', '-f', LOCAL_VALUES, ...set]);
      } catch (err) {
        failure = err as CommandError;
      }
      assert.ok(failure, `${set.join(' ')}: helm install succeeded`);
      namespaces.add(ns);
      assert.match(failure.stderr, /values don't meet the specifications of the schema/, set.join(' '));
      assert.match(failure.stderr, message, set.join(' '));
      const nsList = await kube.kubectl(['get', 'namespace', ns, '--ignore-not-found', '-o', 'name']);
      assert.equal(nsList.trim(), '', `${set.join(' ')}: namespace ${ns} was created`);
      const releases = await kube.helm(['list', '--all-namespaces', '--all', '-q', '--filter', '^shop-bad$']);
      assert.equal(releases.trim(), '', `${set.join(' ')}: a release was recorded`);
    }
  });

  // --- files mode: the static CA and certificates, made here --------------------------------------
  interface Issued {
    certPem: string;
    keyPem: string;
    serial: string;
  }
  let staticCa: TestTrustDomain | undefined;
  const files: Partial<Record<Service, Issued>> = {};

  async function issue(td: TestTrustDomain, s: Service): Promise<Issued> {
    const cert = await td.issue(`/ns/${FILES_NS}/sa/${s}`, {
      subject: `CN=${s}`,
      dnsNames: [s, `${s}.${FILES_NS}.svc`],
      ttlSeconds: 3 * 3600,
    });
    const { X509Certificate } = await import('node:crypto');
    return { certPem: cert.certPem, keyPem: cert.keyPem, serial: new X509Certificate(cert.certDer).serialNumber };
  }

  function opaqueSecret(name: string, data: Record<string, string>): string {
    return JSON.stringify({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name, namespace: FILES_NS },
      type: 'Opaque',
      stringData: data,
    });
  }

  function tlsSecret(s: Service, c: Issued): string {
    return JSON.stringify({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: `${s}-tls`, namespace: FILES_NS },
      type: 'kubernetes.io/tls',
      stringData: { 'tls.crt': c.certPem, 'tls.key': c.keyPem },
    });
  }

  async function createFilesSecrets(td: TestTrustDomain): Promise<void> {
    staticCa = td;
    await kube.apply(opaqueSecret('shop-trust', { 'ca.crt': td.ca.certPem }));
    for (const s of SERVICES) {
      files[s] = await issue(td, s);
      await kube.apply(tlsSecret(s, files[s]));
    }
  }

  /** createDataClaims gives each service of the files release a local volume, so a replacement pod continues its SQLite store. */
  async function createDataClaims(): Promise<void> {
    for (const s of SERVICES) {
      await mkdir(join(DATA_ROOT, s), { recursive: true });
      await kube.apply(
        JSON.stringify({
          apiVersion: 'v1',
          kind: 'PersistentVolume',
          metadata: { name: `${FILES_NS}-${s}-data`, labels: { 'spiffe-shop-test': 'k8s' } },
          spec: {
            capacity: { storage: '256Mi' },
            accessModes: ['ReadWriteOnce'],
            persistentVolumeReclaimPolicy: 'Retain',
            storageClassName: 'spire-local',
            claimRef: { namespace: FILES_NS, name: `${s}-data` },
            local: { path: join(DATA_ROOT, s) },
            nodeAffinity: {
              required: {
                nodeSelectorTerms: [
                  { matchExpressions: [{ key: 'kubernetes.io/os', operator: 'In', values: ['linux'] }] },
                ],
              },
            },
          },
        }),
      );
      await kube.apply(
        JSON.stringify({
          apiVersion: 'v1',
          kind: 'PersistentVolumeClaim',
          metadata: { name: `${s}-data`, namespace: FILES_NS },
          spec: {
            accessModes: ['ReadWriteOnce'],
            storageClassName: 'spire-local',
            volumeName: `${FILES_NS}-${s}-data`,
            resources: { requests: { storage: '256Mi' } },
          },
        }),
      );
    }
  }

  /** presentedSerial is the serial number of the certificate a TLS server presents (as order, so the handshake completes). */
  async function presentedSerial(host: string, port: number, td: TestTrustDomain): Promise<string> {
    const client = files.order ?? (await issue(td, 'order'));
    return new Promise((resolve, reject) => {
      const socket = connect({ host, port, cert: client.certPem, key: client.keyPem, rejectUnauthorized: false });
      socket.setTimeout(5000, () => socket.destroy(new Error('TLS handshake timed out')));
      socket.once('secureConnect', () => {
        const serial = socket.getPeerCertificate().serialNumber;
        socket.end();
        resolve(serial);
      });
      socket.once('error', reject);
    });
  }

  /** callWithStaticOrderCertificate looks a payment up holding order's static certificate; returns the status. */
  async function callWithStaticOrderCertificate(host: string): Promise<number> {
    const c = files.order;
    assert.ok(c, 'order’s static certificate');
    const dispatcher = new Agent({ connect: { cert: c.certPem, key: c.keyPem, rejectUnauthorized: false } });
    try {
      const res = await request(`https://${host}:8443/api/payments?order_id=static-client`, { dispatcher });
      await res.body.dump();
      return res.statusCode;
    } finally {
      await dispatcher.close();
    }
  }
});
