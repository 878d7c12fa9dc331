// Issue 16: from a checkout in a deep folder, `npm run migrate` failed because
// spire-agent could not bind <repo>/.data/migrate/spire/agents/inventory/workload.sock
// (over the Unix socket path limit), and all a user saw was "exited during
// start-up". Sockets now go to a short folder of their own, and a path that is
// still too long fails early, naming the limit and the path. Runs the start-up
// logic (no SPIRE needed): Spire's socket paths for a work folder over 100
// characters, and binding a real Unix socket where they point.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  SOCKET_DIR_ENV,
  SocketPathError,
  UNIX_SOCKET_PATH_MAX_BYTES,
  checkSocketPath,
  makeSocketDir,
  socketBaseDir,
} from '../scripts/spire/socket-dir.ts';
import { Spire } from '../scripts/spire/spire.ts';

async function canBind(path: string): Promise<boolean> {
  const server = createServer();
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(path, resolve);
    });
    return true;
  } catch {
    return false;
  } finally {
    await new Promise((r) => server.close(r));
  }
}

describe('issue 16: Unix socket paths from a checkout in a deep folder', () => {
  let top: string;
  let deep: string;
  before(async () => {
    top = await mkdtemp(join(tmpdir(), 'deep-'));
    // A checkout over 100 characters deep, as a user's projects folder can be.
    deep = join(top, 'a-rather-long-folder-name-for-projects', 'and-another-level-of-nesting-here', 'spiffe-shop');
    assert.ok(deep.length > 100, deep);
    await mkdir(deep, { recursive: true });
  });
  after(() => rm(top, { recursive: true, force: true }));

  test('Spire with its work folder in the deep checkout puts its sockets in a short folder elsewhere, and they bind', async () => {
    const spire = new Spire({
      binDir: join(deep, 'bin'),
      workDir: join(deep, '.data', 'migrate', 'spire'),
      serverPort: 1,
      serverHealthPort: 1,
      agentHealthPortBase: 1,
    });
    try {
      for (const path of [spire.serverSocket, spire.agentSocket('inventory'), spire.agentSocket('partner-workload')]) {
        assert.ok(!path.startsWith(deep), `${path} is not under the checkout`);
        assert.ok(Buffer.byteLength(path) <= UNIX_SOCKET_PATH_MAX_BYTES, path);
        assert.doesNotThrow(() => {
          checkSocketPath(path, 'test');
        });
        assert.equal(await canBind(path), true, `binds ${path}`);
      }
      // What used to be chosen cannot be bound: the limit is real (the regression this test is about).
      const old = join(deep, '.data', 'migrate', 'spire', 'agents', 'inventory', 'workload.sock');
      assert.ok(Buffer.byteLength(old) > UNIX_SOCKET_PATH_MAX_BYTES);
      await mkdir(join(old, '..'), { recursive: true });
      assert.equal(await canBind(old), false);
    } finally {
      await spire.stop();
    }
    assert.equal(await canBind(join(spire.socketDir, 'x.sock')), false, 'stop() removed the socket folder');
  });

  test('a socket path over the limit fails early with an error naming the limit and the path', async () => {
    const long = join(deep, 'sockets');
    const spire = new Spire({
      binDir: join(deep, 'bin-that-does-not-exist'),
      workDir: join(deep, 'work'),
      socketDir: long,
      serverPort: 1,
      serverHealthPort: 1,
      agentHealthPortBase: 1,
    });
    // Before spawning anything: the binary does not even exist.
    await assert.rejects(spire.startServer(), (e: unknown) => {
      assert.ok(e instanceof SocketPathError);
      assert.equal(e.code, 'SHOP_ERR_SOCKET_PATH_TOO_LONG');
      assert.equal(e.path, join(long, 'server.sock'));
      assert.ok(e.message.includes(join(long, 'server.sock')), e.message);
      assert.ok(e.message.includes(`${String(UNIX_SOCKET_PATH_MAX_BYTES)}-byte limit`), e.message);
      assert.ok(e.message.includes(SOCKET_DIR_ENV), e.message);
      return true;
    });
    await assert.rejects(spire.startAgent('inventory'), SocketPathError);
  });

  test('SHOP_SOCKET_DIR sets the folder; one too long or relative is refused at once', () => {
    assert.equal(socketBaseDir({ env: { [SOCKET_DIR_ENV]: '/tmp/shop-sockets' } }), '/tmp/shop-sockets');
    assert.throws(() => socketBaseDir({ env: { [SOCKET_DIR_ENV]: deep } }), SocketPathError);
    assert.throws(() => socketBaseDir({ env: { [SOCKET_DIR_ENV]: 'relative/dir' } }), /must be an absolute folder/);
  });

  test('a temporary folder that is itself too deep is passed over for a shorter one', () => {
    assert.equal(socketBaseDir({ env: {}, tmp: '/tmp' }), '/tmp'); // positive control
    assert.equal(socketBaseDir({ env: { XDG_RUNTIME_DIR: '/run/user/1000' }, tmp: deep }), '/run/user/1000');
    assert.equal(socketBaseDir({ env: {}, tmp: deep }), '/tmp');
  });

  test('makeSocketDir makes a fresh private folder with a short name', async () => {
    const dir = makeSocketDir({ env: {}, tmp: tmpdir() });
    try {
      assert.match(dir, /\/shop-[A-Za-z0-9]{6}$/);
      assert.equal(await canBind(join(dir, 'agent-inventory.sock')), true);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
