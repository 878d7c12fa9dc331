// A round-robin TCP balancer on loopback: the shop harness's stand-in for a
// Kubernetes Service in front of a service's replicas. It pipes bytes and
// never terminates TLS, so mutual TLS (and the SPIFFE ID checks on both ends)
// stays end to end between the caller and the replica it lands on.
//
// Hand-written on node:net because what exists on npm either terminates the
// protocol (http-proxy and friends: they would break mTLS) or is a full proxy
// server to run beside the shop; this needs ~100 lines and nothing else.
import { connect, createServer, type Server, type Socket } from 'node:net';

/** BalancerOptions describe one balancer. */
export interface BalancerOptions {
  /** name is shown in errors (e.g. "payment"). */
  name: string;
  host: string;
  port: number;
  /** backends returns the ports in rotation now (asked at every new connection). */
  backends: () => readonly number[];
  /**
   * replayUntilAnswered sends a connection on to the next backend when one
   * closes it before sending a single byte, replaying what the client sent.
   * Safe for TLS: a server processes no request before its first handshake
   * message (and Node has no 0-RTT data). Not for plaintext HTTP, where a
   * backend may have acted on a request and died before answering.
   * Default: false (only a refused connection moves on).
   */
  replayUntilAnswered?: boolean;
}

/**
 * TcpBalancer hands each new connection to the next backend in turn, like
 * kube-proxy does for a Service: per connection, not per request. A backend
 * that refuses the connection is skipped for this connection (the next one
 * is tried), so a replica killed a moment ago costs no caller a refusal
 * (see also replayUntilAnswered).
 */
export class TcpBalancer {
  readonly #o: BalancerOptions;
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  #next = 0;
  /** connections counts the connections handed to each backend port. */
  readonly connections = new Map<number, number>();
  /** refused counts connections that found no backend to take them. */
  refused = 0;

  constructor(o: BalancerOptions) {
    this.#o = o;
    this.#server = createServer({ pauseOnConnect: true }, (client) => {
      this.#accept(client);
    });
  }

  /** listen binds the balancer's port. */
  listen(): Promise<void> {
    return new Promise((res, rej) => {
      this.#server.once('error', (err) => {
        rej(new Error(`${this.#o.name} balancer cannot listen on ${this.#o.host}:${this.#o.port}: ${err.message}`));
      });
      this.#server.listen(this.#o.port, this.#o.host, () => {
        res();
      });
    });
  }

  #track(s: Socket): void {
    this.#sockets.add(s);
    s.once('close', () => this.#sockets.delete(s));
  }

  #accept(client: Socket): void {
    this.#track(client);
    const ports = [...this.#o.backends()];
    const first = this.#next++;
    // What the client sent before any backend answered: replayed to the next
    // backend when one dies before answering (only with replayUntilAnswered).
    const sent: Buffer[] = [];
    let clientEnded = false;
    let current: Socket | undefined;
    const onClientData = (d: Buffer): void => {
      sent.push(d);
      current?.write(d);
    };
    const onClientEnd = (): void => {
      clientEnded = true;
      current?.end();
    };
    const onClientGone = (): void => {
      current?.destroy();
    };
    client.on('data', onClientData);
    client.on('end', onClientEnd);
    client.on('error', onClientGone);
    client.on('close', onClientGone);

    const attempt = (tried: number): void => {
      current = undefined;
      if (client.destroyed) return;
      if (tried >= ports.length) {
        this.refused++;
        client.destroy();
        return;
      }
      const port = ports[(first + tried) % ports.length] as number;
      const upstream = connect({ host: this.#o.host, port });
      this.#track(upstream);
      current = upstream;
      let connected = false;
      let done = false;
      // Gone before answering: refused, or (replayUntilAnswered) reset or closed
      // before its first byte, e.g. a replica SIGKILLed a moment ago whose
      // listening socket still took the connection.
      const early = (): void => {
        if (done) return;
        done = true;
        upstream.destroy();
        if (connected && !this.#o.replayUntilAnswered) {
          client.destroy();
          return;
        }
        attempt(tried + 1);
      };
      upstream.once('error', early);
      upstream.once('close', early);
      upstream.once('connect', () => {
        connected = true;
        this.connections.set(port, (this.connections.get(port) ?? 0) + 1);
      });
      upstream.once('data', (d: Buffer) => {
        // Answered: from here on a plain pipe, and either side going ends both.
        done = true;
        upstream.off('error', early);
        upstream.off('close', early);
        client.off('data', onClientData);
        client.off('end', onClientEnd);
        sent.length = 0;
        const both = (): void => {
          client.destroy();
          upstream.destroy();
        };
        upstream.on('error', both);
        upstream.once('close', both);
        client.on('error', both);
        client.once('close', both);
        client.write(d);
        if (!clientEnded) client.pipe(upstream);
        upstream.pipe(client);
      });
      for (const d of sent) upstream.write(d);
      if (clientEnded) upstream.end();
    };
    attempt(0);
    client.resume();
  }

  /** close stops accepting and cuts every open connection. */
  close(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    return new Promise((res) => {
      this.#server.close(() => {
        res();
      });
    });
  }
}
