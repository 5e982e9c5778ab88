// The benchmark's minimal HTTP/1.1 client against a real node:http server on loopback.
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HttpConnection } from "../../bench/client";

let server: Server;
let port: number;
const connectionsSeen = new Set<unknown>();

beforeAll(async () => {
  server = createServer((req, res) => {
    connectionsSeen.add(req.socket);
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      if (req.url === "/chunked") {
        res.write('{"no":'); // no content-length: chunked encoding
        res.end('"length"}');
        return;
      }
      const body = JSON.stringify({ method: req.method, url: req.url, prefer: req.headers.prefer ?? null, echo: Buffer.concat(chunks).toString("utf8") });
      res.writeHead(req.url === "/created" ? 202 : 200, { "content-type": "application/json", "content-length": Buffer.byteLength(body), "x-extra": "yes" });
      // Two writes: the client must put a response together from pieces.
      res.write(body.slice(0, 5));
      setTimeout(() => res.end(body.slice(5)), 5);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  port = (server.address() as AddressInfo).port;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

describe("the benchmark's HTTP client", () => {
  it("sends JSON requests on one keep-alive connection and parses each response", async () => {
    const before = connectionsSeen.size;
    const connection = new HttpConnection("127.0.0.1", port);
    const posted = await connection.request("POST", "/created", { prefer: "wait=10" }, { query: "héllo" });
    expect(posted.status).toBe(202);
    expect(posted.headers.get("x-extra")).toBe("yes");
    expect(posted.body).toEqual({ method: "POST", url: "/created", prefer: "wait=10", echo: '{"query":"héllo"}' });
    const got = await connection.request("GET", "/q/1?wait=5");
    expect(got.body).toMatchObject({ method: "GET", url: "/q/1?wait=5", echo: "" });
    expect(connectionsSeen.size - before).toBe(1);
    await expect(Promise.all([connection.request("GET", "/a"), connection.request("GET", "/b")])).rejects.toThrow(/already in flight/);
    connection.close();
    await expect(connection.request("GET", "/after")).rejects.toThrow(/closed/);
  });

  it("refuses a response without Content-Length", async () => {
    const connection = new HttpConnection("127.0.0.1", port);
    await expect(connection.request("GET", "/chunked")).rejects.toThrow(/Content-Length/);
    connection.close();
  });

  it("fails a request when the server is not there", async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
    const deadPort = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const connection = new HttpConnection("127.0.0.1", deadPort);
    await expect(connection.request("GET", "/")).rejects.toThrow(/ECONNREFUSED|closed/);
  });
});
