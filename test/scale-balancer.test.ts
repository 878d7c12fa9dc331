// The harness's round-robin TCP balancer (scripts/tcp-balancer.ts): every
// backend gets its turn, a backend that refuses is skipped (and, on TLS
// ports, one that closes unanswered), no backend means a closed connection,
// and TLS passes through untouched (the client sees the
// backend's own certificate, the backend sees the client's).
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect as netConnect, createServer, type Server } from 'node:net';
import { connect as tlsConnect, createServer as createTlsServer, type TLSSocket } from 'node:tls';
import { after, describe, test } from 'node:test';
import { createTestTrustDomain } from '@shop/auth-testing';
import { freePort } from '../scripts/shop.ts';
import { TcpBalancer } from '../scripts/tcp-balancer.ts';

const HOST = '127.0.0.1';
const closers: (() => Promise<unknown>)[] = [];
after(async () => {
  for (const c of closers.reverse()) await c();
});

/** namedServer answers every connection with its name, then closes. */
async function namedServer(name: string): Promise<number> {
  const s: Server = createServer((c) => {
    c.end(name);
  });
  s.listen(0, HOST);
  await once(s, 'listening');
  closers.push(() => new Promise((r) => s.close(r)));
  return (s.address() as { port: number }).port;
}

/** ask opens one connection and reads until the far end closes ('' when it closed at once). */
async function ask(port: number): Promise<string> {
  const c = netConnect(port, HOST);
  let text = '';
  c.setEncoding('utf8');
  c.on('data', (d: string) => (text += d));
  await new Promise<void>((res) => {
    c.once('close', () => {
      res();
    });
    c.once('error', () => {
      res();
    });
  });
  return text;
}

async function balancer(
  backends: () => readonly number[],
  replayUntilAnswered = false,
): Promise<TcpBalancer & { port: number }> {
  const port = await freePort();
  const b = new TcpBalancer({ name: 'test', host: HOST, port, backends, replayUntilAnswered });
  await b.listen();
  closers.push(() => b.close());
  return Object.assign(b, { port });
}

describe('TcpBalancer', () => {
  test('hands connections to every backend in turn', async () => {
    const ports = [await namedServer('a'), await namedServer('b'), await namedServer('c')];
    const b = await balancer(() => ports);
    const seen: string[] = [];
    for (let i = 0; i < 6; i++) seen.push(await ask(b.port));
    assert.deepEqual([...seen].sort(), ['a', 'a', 'b', 'b', 'c', 'c']);
    assert.deepEqual(
      ports.map((p) => b.connections.get(p)),
      [2, 2, 2],
    );
  });

  test('skips a backend that refuses; with none left the connection is closed', async () => {
    const live = await namedServer('live');
    const dead = await freePort(); // nobody listens there
    const b = await balancer(() => [dead, live]);
    // Positive control: the live backend answers every connection, also those whose turn was the dead one's.
    for (let i = 0; i < 4; i++) assert.equal(await ask(b.port), 'live');
    assert.equal(b.refused, 0);

    const none = await balancer(() => [dead]);
    assert.equal(await ask(none.port), '');
    assert.equal(none.refused, 1);
    const empty = await balancer(() => []);
    assert.equal(await ask(empty.port), '');
    assert.equal(empty.refused, 1);
  });

  test('replayUntilAnswered: a backend that takes the connection and closes it unanswered is passed over', async () => {
    // A backend that accepts and drops every connection, like a replica SIGKILLed a moment ago.
    const drop = createServer((c) => c.destroy());
    drop.listen(0, HOST);
    await once(drop, 'listening');
    closers.push(() => new Promise((r) => drop.close(r)));
    const dropper = (drop.address() as { port: number }).port;
    const live = await namedServer('live');
    // Positive control: with replay on, every connection ends at the live backend.
    const replaying = await balancer(() => [dropper, live], true);
    for (let i = 0; i < 4; i++) assert.equal(await ask(replaying.port), 'live');
    // Without it (plaintext ports: a backend may have acted before dying) the dropped connections stay dropped.
    const plain = await balancer(() => [dropper, live]);
    const answers = [];
    for (let i = 0; i < 4; i++) answers.push(await ask(plain.port));
    assert.deepEqual([...answers].sort(), ['', '', 'live', 'live']);
  });

  test('mutual TLS passes through: each side sees the other’s certificate', async () => {
    const td = await createTestTrustDomain();
    const ca = td.ca;
    const server = await td.issue('/payment', { dnsNames: ['localhost'] });
    const client = await td.issue('/order');
    const s = createTlsServer(
      { cert: server.certPem, key: server.keyPem, ca: ca.certPem, requestCert: true, rejectUnauthorized: true },
      (c) => {
        const uri = c.getPeerCertificate().subjectaltname ?? '';
        c.end(uri);
      },
    );
    s.listen(0, HOST);
    await once(s, 'listening');
    closers.push(() => new Promise((r) => s.close(r)));
    // A dropping backend first in turn: the ClientHello it swallowed is replayed to the real one.
    const drop = createServer((c) => {
      c.once('data', () => c.destroy());
    });
    drop.listen(0, HOST);
    await once(drop, 'listening');
    closers.push(() => new Promise((r) => drop.close(r)));
    const tlsPort = (s.address() as { port: number }).port;
    const dropPort = (drop.address() as { port: number }).port;
    const b = await balancer(() => [dropPort, tlsPort], true);

    const call = async (withCert: boolean): Promise<{ peer: string; text: string; error?: string }> => {
      const c: TLSSocket = tlsConnect({
        host: HOST,
        port: b.port,
        servername: 'localhost',
        ca: ca.certPem,
        ...(withCert ? { cert: client.certPem, key: client.keyPem } : {}),
      });
      let text = '';
      let peer = '';
      c.setEncoding('utf8');
      c.on('secureConnect', () => (peer = c.getPeerCertificate().subjectaltname ?? ''));
      c.on('data', (d: string) => (text += d));
      const error = await new Promise<string | undefined>((res) => {
        c.once('error', (e: Error) => {
          res(e.message);
        });
        c.once('close', () => {
          res(undefined);
        });
      });
      return { peer, text, ...(error ? { error } : {}) };
    };
    // Positive control: with its certificate the client reaches the server through the balancer
    // (twice, so one of the two connections went to the dropping backend first).
    for (let i = 0; i < 2; i++) {
      const ok = await call(true);
      assert.match(ok.peer, /URI:spiffe:\/\/example\.org\/payment/);
      assert.match(ok.text, /URI:spiffe:\/\/example\.org\/order/);
    }
    // Without one the server itself refuses: the balancer terminates nothing.
    const refused = await call(false);
    assert.equal(refused.text, '');
    assert.ok(refused.error, 'the TLS handshake failed end to end');
  });
});
