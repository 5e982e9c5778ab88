/**
 * A loopback TCP proxy that can go deaf one way: while `holdReplies()` is on,
 * the client's bytes still reach the server but the server's replies are
 * dropped. Put in front of the master's gRPC port, it makes a SendResult that
 * the master accepted look lost to the worker (its call runs into its
 * deadline and it retries), which is the "ack lost" case of docs/protocol.md
 * rule 5. `releaseReplies()` closes every connection that lost bytes (its
 * HTTP/2 state is broken) so clients reconnect, and forwards normally again.
 */
import net from "node:net";

export class TcpProxy {
  private holding = false;
  private readonly pairs = new Set<{ client: net.Socket; server: net.Socket }>();

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
    for (const pair of this.pairs) {
      pair.client.destroy();
      pair.server.destroy();
    }
  }

  async close(): Promise<void> {
    this.releaseReplies();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: net.Socket, targetPort: number): void {
    const server = net.connect(targetPort, "127.0.0.1");
    const pair = { client, server };
    this.pairs.add(pair);
    client.on("data", (chunk: Buffer) => server.write(chunk));
    server.on("data", (chunk: Buffer) => {
      if (!this.holding) client.write(chunk);
    });
    const end = (): void => {
      this.pairs.delete(pair);
      client.destroy();
      server.destroy();
    };
    for (const socket of [client, server]) {
      socket.on("close", end);
      socket.on("error", end);
    }
  }
}
