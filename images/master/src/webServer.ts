// The listening side of the web port.
//
// Without TLS: one node:http server, as always.
// With TLS: a net.Server looks at the first byte of every new connection. 0x16
// opens a TLS handshake: the connection goes to the https server (page, API,
// Socket.IO). Anything else is plain HTTP and goes to a small http server that
// never serves the page: GET/HEAD get a 308 to the same URL on https://, other
// methods a 400, and only GET /healthz is answered (Docker's health check runs
// inside the container).
import { createServer as createHttpServer, type IncomingMessage, type RequestListener, type Server as HttpServer, type ServerResponse } from "node:http";
import { createServer as createHttpsServer, type Server as HttpsServer } from "node:https";
import { createServer as createNetServer, type AddressInfo, type Server as NetServer, type Socket } from "node:net";

const TLS_HANDSHAKE = 0x16;
/** A connection that sends nothing for this long is closed before it is handed on. */
const FIRST_BYTE_TIMEOUT_MS = 10_000;
/** While closing: how often keep-alive connections that went idle (their last answer sent) are closed. */
const IDLE_SWEEP_MS = 50;
/**
 * Pending connections the kernel may hold for us (Node's default is 511; the
 * kernel caps it at net.core.somaxconn). A burst of new clients beyond the
 * backlog gets its SYNs dropped and retried after 1 s, then 3 s.
 */
export const LISTEN_BACKLOG = 2048;
const HOST_PATTERN = /^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/;

export interface TlsFiles {
  cert: string;
  key: string;
}

export class WebServer {
  /** Serves the page, the API and Socket.IO: https when TLS is on. */
  readonly main: HttpServer | HttpsServer;
  /** With TLS only: where plain-HTTP connections to the same port go. */
  readonly plain?: HttpServer;
  private readonly front?: NetServer;
  /** Every open connection of the port (upgraded WebSockets included), to force them shut. */
  private readonly connections = new Set<Socket>();

  constructor(handler: RequestListener, tls?: TlsFiles) {
    if (!tls) {
      this.main = createHttpServer(handler);
    } else {
      this.main = createHttpsServer({ cert: tls.cert, key: tls.key, minVersion: "TLSv1.2" }, handler);
      this.plain = createHttpServer((req, res) => (isHealthCheck(req) ? handler(req, res) : redirectToHttps(req, res)));
      this.front = createNetServer((socket) => this.dispatch(socket));
    }
    (this.front ?? this.main).on("connection", (socket: Socket) => {
      this.connections.add(socket);
      socket.once("close", () => this.connections.delete(socket));
    });
  }

  listen(port: number, host: string): Promise<number> {
    const listener = this.front ?? this.main;
    return new Promise((resolve, reject) => {
      listener.once("error", reject);
      listener.listen({ port, host, backlog: LISTEN_BACKLOG }, () => {
        // The inner servers never listen themselves; "listening" starts their
        // bookkeeping (connection tracking for headersTimeout/requestTimeout).
        if (this.front) for (const server of [this.main, this.plain]) server?.emit("listening");
        resolve((listener.address() as AddressInfo).port);
      });
    });
  }

  /**
   * Stops accepting new connections and closes the idle ones, then each one
   * that goes idle (its answer sent); resolves once every connection has
   * ended. Requests in progress finish first: whoever holds them (long-polls,
   * Socket.IO) must end them, or destroyConnections() must.
   */
  close(): Promise<void> {
    const listener = this.front ?? this.main;
    return new Promise((resolve) => {
      const sweep = (): void => {
        this.main.closeIdleConnections();
        this.plain?.closeIdleConnections();
      };
      const sweeper = setInterval(sweep, IDLE_SWEEP_MS);
      listener.close(() => {
        clearInterval(sweeper);
        resolve();
      });
      // The inner servers never listened; closing them stops their bookkeeping.
      if (this.front) for (const server of [this.main, this.plain]) server?.close();
      sweep();
    });
  }

  /** Drops every open connection at once (what close() waits for, when that takes too long). */
  destroyConnections(): void {
    for (const socket of this.connections) socket.destroy();
  }

  private dispatch(socket: Socket): void {
    // Stays for the socket's life: an error on the raw socket must never go unhandled.
    socket.on("error", () => socket.destroy());
    const silent = (): void => {
      socket.destroy();
    };
    socket.setTimeout(FIRST_BYTE_TIMEOUT_MS, silent);
    socket.once("data", (chunk: Buffer) => {
      socket.pause();
      socket.setTimeout(0);
      socket.removeListener("timeout", silent);
      socket.unshift(chunk);
      if (chunk[0] === TLS_HANDSHAKE) {
        // The TLS socket reads what is buffered on the raw one first.
        this.main.emit("connection", socket);
        return;
      }
      this.plain?.emit("connection", socket);
      socket.resume();
    });
  }
}

function isHealthCheck(req: IncomingMessage): boolean {
  return req.method === "GET" && (req.url === "/healthz" || (req.url ?? "").startsWith("/healthz?"));
}

function redirectToHttps(req: IncomingMessage, res: ServerResponse): void {
  const host = req.headers.host;
  const path = (req.url ?? "/").startsWith("/") ? (req.url ?? "/") : "/";
  const target = host !== undefined && HOST_PATTERN.test(host) ? `https://${host}${path}` : undefined;
  if (target !== undefined && (req.method === "GET" || req.method === "HEAD")) {
    res.writeHead(308, { location: target, "content-length": 0 });
    res.end();
    return;
  }
  const body = JSON.stringify({ error: `use ${target ?? "https://"} (this port speaks HTTPS only)` });
  res.writeHead(400, { "content-type": "application/json; charset=utf-8", "content-length": Buffer.byteLength(body), connection: "close" });
  res.end(body);
}
