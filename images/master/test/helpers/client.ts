// A small HTTP(S) client for the tests: fetch cannot trust a custom CA in Node
// 20, and some tests need raw control (a plain-HTTP request to the TLS port).
import { request as httpRequest, type IncomingHttpHeaders, type IncomingMessage } from "node:http";
import { request as httpsRequest } from "node:https";

export interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
  json<T = Record<string, unknown>>(): T;
}

export interface RequestInit {
  method?: string;
  headers?: Record<string, string>;
  body?: string;
  /** Certificates to trust for https:// (nothing else is trusted). */
  ca?: string;
}

export function request(url: string, init: RequestInit = {}): Promise<Reply> {
  const target = new URL(url);
  const options = {
    method: init.method ?? "GET",
    headers: { ...(init.body !== undefined ? { "content-length": String(Buffer.byteLength(init.body)) } : {}), ...init.headers },
    agent: false as const,
  };
  return new Promise((resolve, reject) => {
    const onReply = (res: IncomingMessage): void => {
      const chunks: Buffer[] = [];
      res.on("data", (chunk: Buffer) => chunks.push(chunk));
      res.on("end", () => {
        const text = Buffer.concat(chunks).toString("utf8");
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json: <T>() => JSON.parse(text) as T });
      });
      res.on("error", reject);
    };
    const req =
      target.protocol === "https:"
        ? httpsRequest(target, { ...options, ca: init.ca }, onReply)
        : httpRequest(target, options, onReply);
    req.on("error", reject);
    req.end(init.body);
  });
}

/** The value to send back as `Cookie` from a reply's `Set-Cookie`. */
export function cookieFrom(reply: Reply): string {
  const header = reply.headers["set-cookie"]?.[0];
  if (header === undefined) throw new Error(`no Set-Cookie in a ${reply.status} reply`);
  return header.split(";")[0] as string;
}
