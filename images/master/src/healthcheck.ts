// The image's HEALTHCHECK: GET /healthz on this container's own web port,
// exit 0 on 200, else 1. Reads the master's own environment (HTTP_PORT,
// BIND_HOST, WEB_TLS_CERT_FILE) to know where and how to ask.
import { request as httpRequest, type IncomingMessage } from "node:http";
import { request as httpsRequest } from "node:https";

const TIMEOUT_MS = 4_000;

const env = process.env;
const port = Number(env.HTTP_PORT?.trim() || 8888);
const bind = env.BIND_HOST?.trim();
// A wildcard bind answers on loopback; a specific address only there.
const host = !bind || bind === "0.0.0.0" || bind === "::" ? "127.0.0.1" : bind;
const tls = Boolean(env.WEB_TLS_CERT_FILE?.trim());

const done = (code: number): never => process.exit(code);
const onResponse = (res: IncomingMessage): void => {
  res.resume();
  done(res.statusCode === 200 ? 0 : 1);
};
const options = { host, port, path: "/healthz", method: "GET", timeout: TIMEOUT_MS };
// No certificate verification: this is the container talking to itself over
// loopback, and the certificate names the public address, not 127.0.0.1.
const req = tls ? httpsRequest({ ...options, rejectUnauthorized: false }, onResponse) : httpRequest(options, onResponse);
req.on("timeout", () => req.destroy(new Error("timeout")));
req.on("error", () => done(1));
req.end();
