// The SPIRE plugins this project compiles in. SPIRE's server and agent link
// every built-in plugin (AWS, Azure, GCP, Vault, TPM, …) through the catalog
// files in pkg/{server,agent}/catalog; those cloud SDKs are most of a cold
// build's download and compile time, and none of them is used here. The
// build (get-spire.ts) keeps only the plugins below, by editing the catalog
// files of its copy of the module; a configuration naming any other plugin
// fails at `spire-server run` with SPIRE's own "no built-in plugin" error.
// test/spire-catalog.test.ts checks that every plugin named by a SPIRE
// configuration in this repository is in this list.

/** SPIRE_PLUGINS maps each plugin type to the built-in plugin names (as configurations spell them) that are compiled in. */
export const SPIRE_PLUGINS = {
  server: {
    KeyManager: ['disk', 'memory'],
    NodeAttestor: ['join_token', 'k8s_psat', 'x509pop'],
    Notifier: ['k8sbundle'],
    UpstreamAuthority: ['disk'],
    BundlePublisher: [],
    CredentialComposer: ['uniqueid'],
  },
  agent: {
    KeyManager: ['disk', 'memory'],
    NodeAttestor: ['join_token', 'k8s_psat', 'x509pop'],
    WorkloadAttestor: ['docker', 'k8s', 'unix'],
    SVIDStore: [],
  },
} as const satisfies Record<'server' | 'agent', Record<string, readonly string[]>>;

/**
 * CATALOG_FILES names the files of SPIRE's module that list built-in plugins,
 * with the plugin type each lists. A SPIRE upgrade that adds a catalog file
 * is caught by get-spire.ts, which refuses to build when pkg/*\/catalog holds
 * a file not named here.
 */
export const CATALOG_FILES: Readonly<Record<string, { side: 'server' | 'agent'; type: string } | 'untouched'>> = {
  'pkg/server/catalog/bundlepublisher.go': { side: 'server', type: 'BundlePublisher' },
  'pkg/server/catalog/credentialcomposer.go': { side: 'server', type: 'CredentialComposer' },
  'pkg/server/catalog/keymanager.go': { side: 'server', type: 'KeyManager' },
  'pkg/server/catalog/nodeattestor.go': { side: 'server', type: 'NodeAttestor' },
  'pkg/server/catalog/notifier.go': { side: 'server', type: 'Notifier' },
  'pkg/server/catalog/upstreamauthority.go': { side: 'server', type: 'UpstreamAuthority' },
  'pkg/server/catalog/catalog.go': 'untouched',
  'pkg/agent/catalog/keymanager.go': { side: 'agent', type: 'KeyManager' },
  'pkg/agent/catalog/nodeattestor.go': { side: 'agent', type: 'NodeAttestor' },
  'pkg/agent/catalog/svidstore.go': { side: 'agent', type: 'SVIDStore' },
  'pkg/agent/catalog/workloadattestor.go': { side: 'agent', type: 'WorkloadAttestor' },
  'pkg/agent/catalog/catalog.go': 'untouched',
};

/** packageName is the Go package of a plugin as SPIRE lays them out: the configured name without underscores. */
export function packageName(pluginName: string): string {
  return pluginName.replaceAll('_', '');
}

/**
 * trimCatalog returns a catalog file's Go source with every built-in plugin
 * not in `keep` (configured names) removed: its import line and its
 * `<pkg>.BuiltIn(),` line. It throws when a kept plugin is not in the file,
 * so a renamed plugin fails the build instead of vanishing.
 */
export function trimCatalog(source: string, keep: readonly string[]): string {
  const keepPkgs = new Set(keep.map(packageName));
  // import lines of plugin packages: optional alias, then the path's last segment.
  const importLine = /^\s*(?:(\w+)\s+)?"github\.com\/spiffe\/spire\/pkg\/(?:server|agent)\/plugin\/\w+\/(\w+)"\s*$/;
  const aliasToPkg = new Map<string, string>();
  for (const line of source.split('\n')) {
    const m = importLine.exec(line);
    if (m) aliasToPkg.set(m[1] ?? (m[2] as string), m[2] as string);
  }
  for (const pkg of keepPkgs) {
    if (![...aliasToPkg.values()].includes(pkg)) throw new Error(`the catalog has no built-in plugin package "${pkg}"`);
  }
  const dropped = new Set([...aliasToPkg].filter(([, pkg]) => !keepPkgs.has(pkg)).map(([alias]) => alias));
  return source
    .split('\n')
    .filter((line) => {
      const imp = importLine.exec(line);
      if (imp) return !dropped.has(imp[1] ?? (imp[2] as string));
      const builtIn = /^\s*(\w+)\.BuiltIn\(\),?\s*$/.exec(line);
      return !(builtIn && dropped.has(builtIn[1] as string));
    })
    .join('\n');
}
