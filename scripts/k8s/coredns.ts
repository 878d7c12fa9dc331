// CoreDNS for the local cluster: the kube-dns Service at the DNS address the
// kubelet hands to pods, a one-replica Deployment on the FROM scratch image,
// RBAC to watch Services and EndpointSlices. It answers cluster.local (and
// reverse) names only: nothing is forwarded, because the only network here
// is this machine's own.
import { NETWORK } from './layout.ts';

/** corefile is CoreDNS's configuration for the cluster's domain. */
export function corefile(): string {
  return `.:53 {
    errors
    health {
        lameduck 5s
    }
    ready
    kubernetes ${NETWORK.clusterDomain} in-addr.arpa ip6.arpa {
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
        ttl 30
    }
    prometheus :9153
    cache 30
    loadbalance
}
`;
}

/**
 * corefilePlugins names the plugins the Corefile uses (the directives of its
 * server blocks), in the order they appear. The CoreDNS build compiles in
 * exactly these, so a plugin added to the Corefile is also added to the binary.
 */
export function corefilePlugins(text: string = corefile()): string[] {
  const names: string[] = [];
  let depth = 0;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    if (depth === 1 && line !== '}') {
      const name = line.split(/\s+/)[0] as string;
      if (!names.includes(name)) names.push(name);
    }
    depth += (line.match(/\{/g)?.length ?? 0) - (line.match(/\}/g)?.length ?? 0);
  }
  return names;
}

/** corednsManifests are the objects to apply, as one List (JSON, which kubectl reads as YAML). */
export function corednsManifests(image: string): object {
  const labels = { 'k8s-app': 'kube-dns' };
  const ns = 'kube-system';
  return {
    apiVersion: 'v1',
    kind: 'List',
    items: [
      { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'coredns', namespace: ns } },
      {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'ClusterRole',
        metadata: { name: 'system:coredns' },
        rules: [
          { apiGroups: [''], resources: ['endpoints', 'services', 'pods', 'namespaces'], verbs: ['list', 'watch'] },
          { apiGroups: ['discovery.k8s.io'], resources: ['endpointslices'], verbs: ['list', 'watch'] },
        ],
      },
      {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'ClusterRoleBinding',
        metadata: { name: 'system:coredns' },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'system:coredns' },
        subjects: [{ kind: 'ServiceAccount', name: 'coredns', namespace: ns }],
      },
      {
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: 'coredns', namespace: ns },
        data: { Corefile: corefile() },
      },
      {
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: { name: 'coredns', namespace: ns, labels },
        spec: {
          replicas: 1,
          selector: { matchLabels: labels },
          template: {
            metadata: { labels },
            spec: {
              serviceAccountName: 'coredns',
              priorityClassName: 'system-cluster-critical',
              dnsPolicy: 'Default',
              containers: [
                {
                  name: 'coredns',
                  image,
                  imagePullPolicy: 'Never',
                  args: ['-conf', '/etc/coredns/Corefile'],
                  ports: [
                    { name: 'dns', containerPort: 53, protocol: 'UDP' },
                    { name: 'dns-tcp', containerPort: 53, protocol: 'TCP' },
                    { name: 'metrics', containerPort: 9153, protocol: 'TCP' },
                  ],
                  resources: { requests: { cpu: '50m', memory: '32Mi' }, limits: { memory: '128Mi' } },
                  // Port 53 needs NET_BIND_SERVICE, which a non-root process
                  // loses on exec: root with every other capability dropped.
                  securityContext: {
                    allowPrivilegeEscalation: false,
                    readOnlyRootFilesystem: true,
                    capabilities: { drop: ['ALL'], add: ['NET_BIND_SERVICE'] },
                  },
                  volumeMounts: [{ name: 'config', mountPath: '/etc/coredns', readOnly: true }],
                  livenessProbe: {
                    httpGet: { path: '/health', port: 8080 },
                    initialDelaySeconds: 10,
                    periodSeconds: 10,
                  },
                  readinessProbe: { httpGet: { path: '/ready', port: 8181 }, periodSeconds: 2 },
                },
              ],
              volumes: [{ name: 'config', configMap: { name: 'coredns' } }],
            },
          },
        },
      },
      {
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name: 'kube-dns', namespace: ns, labels: { ...labels, 'kubernetes.io/name': 'CoreDNS' } },
        spec: {
          selector: labels,
          clusterIP: NETWORK.dnsServiceIp,
          ports: [
            { name: 'dns', port: 53, protocol: 'UDP', targetPort: 53 },
            { name: 'dns-tcp', port: 53, protocol: 'TCP', targetPort: 53 },
            { name: 'metrics', port: 9153, protocol: 'TCP', targetPort: 9153 },
          ],
        },
      },
    ],
  };
}
