/**
 * The load client's HTTP: one keep-alive HTTP/1.1 connection per lane, on a
 * plain socket. The client shares the machine's two cores with everything it
 * measures, so it must be cheap: node:http spent about as much CPU per request
 * as the master serving it (undici's fetch twice that). It speaks just enough
 * HTTP/1.1 for the master's JSON API: requests with a body and
 * Content-Length, responses with Content-Length (anything else is an error).
 */
import { connect, type Socket } from "node:net";

export interface JsonResponse {
  status: number;
  headers: Map<string, string>;
  body: unknown;
}

interface Pending {
  resolve(response: JsonResponse): void;
  reject(error: Error): void;
}

const HEADER_END = Buffer.from("\r\n\r\n");
const MAX_HEADER_BYTES = 16 * 1024;

export class HttpConnection {
  private readonly socket: Socket;
  private buffered: Buffer = Buffer.alloc(0);
  private pending?: Pending;
  private closed?: Error;

  constructor(
    private readonly host: string,
    port: number,
  ) {
    this.socket = connect({ host, port, noDelay: true });
    this.socket.on("data", (chunk: Buffer) => this.onData(chunk));
    this.socket.on("error", (error) => this.fail(error));
    this.socket.on("close", () => this.fail(new Error("connection closed by the server")));
  }

  /** Sends one request and resolves with the parsed JSON response; one at a time. */
  request(method: string, path: string, headers: Record<string, string> = {}, value?: unknown): Promise<JsonResponse> {
    if (this.closed) return Promise.reject(this.closed);
    if (this.pending) return Promise.reject(new Error("a request is already in flight on this connection"));
    const body = value === undefined ? "" : JSON.stringify(value);
    const lines = [`${method} ${path} HTTP/1.1`, `host: ${this.host}`, "connection: keep-alive"];
    for (const [name, text] of Object.entries(headers)) lines.push(`${name}: ${text}`);
    if (value !== undefined) lines.push("content-type: application/json");
    lines.push(`content-length: ${Buffer.byteLength(body)}`, "", body);
    return new Promise((resolve, reject) => {
      this.pending = { resolve, reject };
      this.socket.write(lines.join("\r\n"));
    });
  }

  close(): void {
    this.closed ??= new Error("connection closed by the client");
    this.socket.destroy();
  }

  private onData(chunk: Buffer): void {
    this.buffered = this.buffered.length === 0 ? chunk : Buffer.concat([this.buffered, chunk]);
    const response = this.takeResponse();
    if (response === undefined) return;
    const pending = this.pending;
    this.pending = undefined;
    if (response instanceof Error) {
      this.close();
      pending?.reject(response);
    } else if (pending) {
      pending.resolve(response);
    }
  }

  /** A whole response from the buffer, undefined while incomplete. */
  private takeResponse(): JsonResponse | Error | undefined {
    const end = this.buffered.indexOf(HEADER_END);
    if (end < 0) return this.buffered.length > MAX_HEADER_BYTES ? new Error("response headers too long") : undefined;
    const [statusLine = "", ...headerLines] = this.buffered.subarray(0, end).toString("latin1").split("\r\n");
    const status = /^HTTP\/1\.[01] (\d{3})/.exec(statusLine);
    if (!status) return new Error(`not an HTTP/1.1 status line: ${statusLine.slice(0, 80)}`);
    const headers = new Map<string, string>();
    for (const line of headerLines) {
      const colon = line.indexOf(":");
      if (colon > 0) headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
    }
    const length = Number(headers.get("content-length"));
    if (!Number.isInteger(length) || length < 0) return new Error("response without a Content-Length");
    const bodyStart = end + HEADER_END.length;
    if (this.buffered.length < bodyStart + length) return undefined;
    const text = this.buffered.subarray(bodyStart, bodyStart + length).toString("utf8");
    this.buffered = this.buffered.subarray(bodyStart + length);
    try {
      return { status: Number(status[1]), headers, body: JSON.parse(text) as unknown };
    } catch {
      return new Error(`${status[1]} with a body that is not JSON: ${text.slice(0, 200)}`);
    }
  }

  private fail(error: Error): void {
    this.closed ??= error;
    const pending = this.pending;
    this.pending = undefined;
    pending?.reject(error);
  }
}
