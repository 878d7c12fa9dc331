// The SPIRE build is static, so the same binaries run on the host and in the
// FROM scratch stand-in images (scripts/containers/local-images.ts).
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { isStaticElf } from '../scripts/containers/local-images.ts';
import { getSpire } from '../scripts/spire/get-spire.ts';

test('get-spire yields static binaries; a dynamically linked one (this Node) is told apart', async () => {
  const bin = await getSpire();
  assert.equal(await isStaticElf(join(bin, 'spire-server')), true);
  assert.equal(await isStaticElf(join(bin, 'spire-agent')), true);
  assert.equal(await isStaticElf(process.execPath), false);
});
