// The trust files of compose.migrate.yaml, kept in its `trust` volume:
//   static-services-trust.pem  TLS_CA_FILE of services still on files: the static CA, and SPIRE's bundle once bridged
//   static-ca-bridge.pem       TRUST_BRIDGE_CA_FILE of services on SPIFFE: the static CA, until the bridge ends
// Services reload both when they change; every write is atomic (rename).
//
//   node scripts/containers/trust-files.ts init        # create them from /certs/ca.crt.pem if missing
//   node scripts/containers/trust-files.ts bridge      # static CA + SPIRE's bundle (needs spire-server and its socket)
//   node scripts/containers/trust-files.ts end-bridge  # empty the bridge: the static CA leaves SPIFFE services' trust
import { existsSync } from 'node:fs';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SpireServerCli } from '../spire/server-cli.ts';

const TRUST_DIR = process.env.TRUST_DIR ?? '/trust';
const STATIC_CA = process.env.STATIC_CA_FILE ?? '/certs/ca.crt.pem';
const SERVICES_TRUST = join(TRUST_DIR, 'static-services-trust.pem');
const BRIDGE = join(TRUST_DIR, 'static-ca-bridge.pem');

async function put(path: string, text: string): Promise<void> {
  await writeFile(`${path}.tmp`, text);
  await rename(`${path}.tmp`, path);
  console.log(`trust-files: wrote ${path} (${String((text.match(/BEGIN CERTIFICATE/g) ?? []).length)} certificate(s))`);
}

const command = process.argv[2];
if (command !== 'init' && command !== 'bridge' && command !== 'end-bridge') {
  console.error(`trust-files: unknown command ${JSON.stringify(command ?? '')}; use init | bridge | end-bridge`);
  process.exit(2);
}
try {
  const staticCa = await readFile(STATIC_CA, 'utf8');
  if (command === 'init') {
    // Only if missing: `up` runs this again at every step, and must not undo a bridge.
    if (!existsSync(SERVICES_TRUST)) await put(SERVICES_TRUST, staticCa);
    if (!existsSync(BRIDGE)) await put(BRIDGE, staticCa);
  } else if (command === 'bridge') {
    const spire = new SpireServerCli(
      'spire-server',
      process.env.SPIRE_SERVER_SOCKET ?? '/tmp/spire-server/private/api.sock',
    );
    await put(SERVICES_TRUST, `${staticCa.trimEnd()}\n${await spire.bundlePem()}`);
  } else {
    await put(BRIDGE, '');
  }
} catch (err) {
  console.error(`trust-files: ${(err as Error).message}`);
  process.exit(1);
}
