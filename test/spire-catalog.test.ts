// The SPIRE build keeps only the plugins in scripts/spire/spire-catalog.ts.
// These tests check the trimming itself on a catalog file made here, and that
// no SPIRE configuration in this repository names a plugin left out (it
// would fail only at `spire-server run`, deep inside a SPIRE or cluster suite).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { SPIRE_BUILD } from '../scripts/spire/get-spire.ts';
import { packageName, SPIRE_PLUGINS, trimCatalog } from '../scripts/spire/spire-catalog.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

const CATALOG = `package catalog

import (
	"github.com/spiffe/spire/pkg/common/catalog"
	"github.com/spiffe/spire/pkg/server/plugin/upstreamauthority"
	"github.com/spiffe/spire/pkg/server/plugin/upstreamauthority/awspca"
	"github.com/spiffe/spire/pkg/server/plugin/upstreamauthority/disk"
	spireplugin "github.com/spiffe/spire/pkg/server/plugin/upstreamauthority/spire"
	"github.com/spiffe/spire/pkg/server/plugin/nodeattestor/jointoken"
)

func (repo *upstreamAuthorityRepository) BuiltIns() []catalog.BuiltIn {
	return []catalog.BuiltIn{
		awspca.BuiltIn(),
		spireplugin.BuiltIn(),
		disk.BuiltIn(),
		jointoken.BuiltIn(),
	}
}
`;

describe('the SPIRE catalog trim', () => {
  it('keeps the listed plugins (positive control) and drops the rest, aliased imports included', () => {
    const out = trimCatalog(CATALOG, ['disk', 'join_token']);
    assert.match(out, /"github\.com\/spiffe\/spire\/pkg\/server\/plugin\/upstreamauthority\/disk"/);
    assert.match(out, /^\t\tdisk\.BuiltIn\(\),$/m);
    assert.match(out, /^\t\tjointoken\.BuiltIn\(\),$/m);
    assert.match(
      out,
      /"github\.com\/spiffe\/spire\/pkg\/server\/plugin\/upstreamauthority"$/m,
      'the plugin type package stays',
    );
    assert.doesNotMatch(out, /awspca/);
    assert.doesNotMatch(out, /spireplugin|upstreamauthority\/spire"/);
  });

  it('keeps nothing when the list is empty, leaving valid Go (an empty slice)', () => {
    const out = trimCatalog(CATALOG, []);
    assert.doesNotMatch(out, /BuiltIn\(\),/);
    assert.match(out, /return \[\]catalog\.BuiltIn\{\n\t\}/);
  });

  it('refuses a kept plugin the catalog does not have, naming it', () => {
    assert.throws(() => trimCatalog(CATALOG, ['disk', 'aws_iid']), /no built-in plugin package "awsiid"/);
  });
});

describe('the SPIRE configurations in this repository', () => {
  const files = execFileSync('git', ['ls-files', '*.conf', '*.ts', '*.yaml', '*.yml', '*.tpl', '*.hcl'], {
    cwd: ROOT,
    encoding: 'utf8',
  })
    .split('\n')
    .filter((f) => f !== '' && f !== 'test/spire-catalog.test.ts');
  const named = new Map<string, Set<string>>(); // "Type name" -> files
  for (const file of files) {
    const text = readFileSync(join(ROOT, file), 'utf8');
    for (const m of text.matchAll(
      /\b(KeyManager|NodeAttestor|WorkloadAttestor|Notifier|UpstreamAuthority|BundlePublisher|SVIDStore|CredentialComposer)\s+"([a-z0-9_]+)"\s*\{/g,
    )) {
      const key = `${m[1]} ${m[2]}`;
      named.set(key, (named.get(key) ?? new Set()).add(file));
    }
  }

  it('are found by this scan (positive control: the local server and agent configurations)', () => {
    assert.ok(named.has('NodeAttestor join_token'), [...named.keys()].join(', '));
    assert.ok(named.has('WorkloadAttestor unix'), [...named.keys()].join(', '));
    assert.ok(named.has('NodeAttestor k8s_psat'), [...named.keys()].join(', '));
  });

  it('name only plugins the build compiles in', () => {
    const missing: string[] = [];
    for (const [key, where] of named) {
      const [type = '', name = ''] = key.split(' ');
      const sides = (['server', 'agent'] as const).filter((s) => type in SPIRE_PLUGINS[s]);
      for (const side of sides) {
        const kept = (SPIRE_PLUGINS[side] as Record<string, readonly string[]>)[type] ?? [];
        if (!kept.includes(name)) missing.push(`${side} ${key} (in ${[...where].join(', ')})`);
      }
    }
    assert.deepEqual(missing, [], 'add these to SPIRE_PLUGINS in scripts/spire/spire-catalog.ts');
  });

  it('spell package names as SPIRE lays them out', () => {
    assert.equal(packageName('k8s_psat'), 'k8spsat');
    assert.equal(packageName('x509pop'), 'x509pop');
  });
});

describe('the local SPIRE images on Kubernetes', () => {
  it('are tagged with the trimmed build, as scripts/containers builds them', () => {
    const k = readFileSync(join(ROOT, 'deploy/spire/local/kustomization.yaml'), 'utf8');
    const tags = [...k.matchAll(/newName: spiffe-shop-local\/spire-(server|agent)\n\s+newTag: (\S+)/g)];
    assert.equal(tags.length, 2, 'both spire-server and spire-agent have a newTag');
    for (const t of tags) assert.equal(t[2], SPIRE_BUILD, `spire-${t[1] ?? ''}`);
  });
});
