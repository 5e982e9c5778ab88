// A TCP proxy on loopback that the tests control, for two things:
// - a service VIP as Swarm makes one: each new connection goes to the next
//   backend in turn, skipping one that refuses (a dead task leaves the VIP);
// - a network partition: cut() stops every byte both ways without closing
//   anything (what a cable pulled between two VMs looks like: no RST, no FIN,
//   only silence), heal() drops the silenced connections and lets new ones
//   through again;
// - a VM lost for good: lose() silences the connections open now (the dead
//   VM's end of them is gone without a word) while new connections still reach
//   the backends that answer, as Swarm's DNS and VIP stop naming a dead task.
import net from "node:net";

export interface TcpProxy {
  /** The proxy's own port on 127.0.0.1. */
  readonly port: number;
  /** Connections forwarded since start, by backend port. */
  readonly forwarded: ReadonlyMap<number, number>;
  /** Silence: nothing passes either way, nothing is closed; new connections are accepted and left hanging. */
  cut(): void;
  /** Ends the silence: the silenced connections are dropped, new ones are forwarded again. */
  heal(): void;
  /** Silences the connections open now, for good (nothing passes, nothing is closed); new ones are forwarded as before. */
  lose(): void;
  close(): Promise<void>;
}

interface Pair {
  client: net.Socket;
  backend?: net.Socket;
  /** Lost: silent for good, whatever its backend does. */
  lost?: boolean;
}

/** Starts a proxy on a free loopback port in front of `backendPorts` (on 127.0.0.1), round-robin. */
export async function startTcpProxy(backendPorts: readonly number[]): Promise<TcpProxy> {
  if (backendPorts.length === 0) throw new Error("startTcpProxy: at least one backend port is needed");
  const pairs = new Set<Pair>();
  const forwarded = new Map<number, number>();
  let next = 0;
  let silent = false;

  const connectBackend = (pair: Pair, tries: number): void => {
    const port = backendPorts[next % backendPorts.length] as number;
    next += 1;
    const backend = net.connect(port, "127.0.0.1");
    pair.backend = backend;
    backend.once("connect", () => {
      if (silent) return; // cut meanwhile: leave it silent
      forwarded.set(port, (forwarded.get(port) ?? 0) + 1);
      pair.client.pipe(backend);
      backend.pipe(pair.client);
      pair.client.resume();
    });
    backend.once("error", () => {
      if (pair.lost) return;
      if (!backend.connecting || silent) {
        pair.client.destroy();
        return;
      }
      // Refused: the next backend, as a VIP no longer sends to a dead task.
      backend.destroy();
      if (tries + 1 < backendPorts.length) connectBackend(pair, tries + 1);
      else pair.client.destroy();
    });
    backend.once("close", () => {
      if (!silent && !pair.lost) pair.client.destroy();
    });
  };

  const server = net.createServer((client) => {
    const pair: Pair = { client };
    pairs.add(pair);
    client.pause();
    client.on("error", () => pair.backend?.destroy());
    client.once("close", () => {
      pairs.delete(pair);
      if (!silent && !pair.lost) pair.backend?.destroy();
    });
    if (!silent) connectBackend(pair, 0);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("cannot read the proxy's port");

  return {
    port: address.port,
    forwarded,
    cut() {
      silent = true;
      for (const { client, backend } of pairs) {
        client.unpipe();
        backend?.unpipe();
        client.pause();
        backend?.pause();
      }
    },
    lose() {
      for (const pair of pairs) {
        pair.lost = true;
        pair.client.unpipe();
        pair.backend?.unpipe();
        pair.client.pause();
        pair.backend?.pause();
      }
    },
    heal() {
      silent = false;
      for (const pair of pairs) {
        pair.client.destroy();
        pair.backend?.destroy();
      }
      pairs.clear();
    },
    async close() {
      silent = false;
      for (const pair of pairs) {
        pair.client.destroy();
        pair.backend?.destroy();
      }
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
