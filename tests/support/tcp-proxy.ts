/**
 * A loopback TCP proxy that can fail the way networks do:
 *
 * - `holdReplies()`: the client's bytes still reach the server but the
 *   server's replies are dropped. In front of the master's gRPC port it makes a
 *   SendResult that the master accepted look lost to the worker (its call runs
 *   into its deadline and it retries): the "ack lost" case of docs/protocol.md
 *   rule 5. `releaseReplies()` closes every connection (their HTTP/2 state lost
 *   bytes) so clients reconnect, and forwards normally again.
 * - `sever()`: the client's side of every connection is closed and new ones
 *   are refused, while the server's side stays open and hears nothing (a
 *   half-open connection, as after a network cut: in front of the broker, the
 *   broker still thinks the worker is there and publishes into the void), or
 *   with a last message to the server in the client's name. `mend()` lets
 *   clients connect again.
 */
import net from "node:net";

interface Pair {
  client: net.Socket;
  server: net.Socket;
  severed: boolean;
}

export class TcpProxy {
  private holding = false;
  private refusing = false;
  private readonly pairs = new Set<Pair>();

  private constructor(
    private readonly server: net.Server,
    readonly port: number,
  ) {}

  /** Listens on 127.0.0.1 (a free port) and forwards to 127.0.0.1:targetPort. */
  static async start(targetPort: number): Promise<TcpProxy> {
    let proxy: TcpProxy | undefined;
    const server = net.createServer((client) => proxy?.accept(client, targetPort));
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(0, "127.0.0.1", () => resolve());
    });
    proxy = new TcpProxy(server, (server.address() as net.AddressInfo).port);
    return proxy;
  }

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  holdReplies(): void {
    this.holding = true;
  }

  releaseReplies(): void {
    this.holding = false;
    for (const pair of this.pairs) if (!pair.severed) this.end(pair);
  }

  /** `farewell`: bytes the server gets last, in the client's name (e.g. an MQTT DISCONNECT). */
  sever(farewell?: Buffer): void {
    this.refusing = true;
    for (const pair of this.pairs) {
      pair.severed = true;
      pair.client.destroy();
      if (farewell) pair.server.write(farewell);
    }
  }

  mend(): void {
    this.refusing = false;
  }

  async close(): Promise<void> {
    this.holding = false;
    this.refusing = true;
    for (const pair of this.pairs) {
      pair.severed = false;
      this.end(pair);
    }
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: net.Socket, targetPort: number): void {
    if (this.refusing) {
      client.destroy();
      return;
    }
    const pair: Pair = { client, server: net.connect(targetPort, "127.0.0.1"), severed: false };
    this.pairs.add(pair);
    client.on("data", (chunk: Buffer) => {
      if (!pair.severed) pair.server.write(chunk);
    });
    pair.server.on("data", (chunk: Buffer) => {
      if (!this.holding && !pair.severed) client.write(chunk);
    });
    for (const socket of [client, pair.server]) {
      socket.on("close", () => this.end(pair, socket));
      socket.on("error", () => this.end(pair, socket));
    }
  }

  /** Closes a connection; a severed one keeps its server side open until that side closes. */
  private end(pair: Pair, closed?: net.Socket): void {
    pair.client.destroy();
    if (pair.severed && closed !== pair.server) return;
    this.pairs.delete(pair);
    pair.server.destroy();
  }
}
