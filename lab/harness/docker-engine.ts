// A minimal Docker Engine API client over a Unix socket (the SSH-forwarded
// socket of the manager's engine). Only what the harness needs: JSON calls and
// the streaming JSON-lines answers of image push.
import * as http from "node:http";

/** The lab VMs run Debian's docker.io 20.10 (API 1.41); every call is pinned to it. */
export const API_VERSION = "v1.41";

export class EngineError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = "EngineError";
  }
}

export interface EngineResponse {
  status: number;
  body: string;
}

export class DockerEngine {
  constructor(readonly socketPath: string) {}

  request(method: string, apiPath: string, body?: unknown, headers: Record<string, string> = {}): Promise<EngineResponse> {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body), "utf8");
    return new Promise((resolve, reject) => {
      const req = http.request(
        {
          socketPath: this.socketPath,
          method,
          path: `/${API_VERSION}${apiPath}`,
          headers: {
            ...headers,
            ...(payload ? { "Content-Type": "application/json", "Content-Length": String(payload.length) } : {}),
          },
        },
        (res) => {
          let text = "";
          res.setEncoding("utf8");
          res.on("data", (chunk: string) => (text += chunk));
          res.on("end", () => resolve({ status: res.statusCode ?? 0, body: text }));
          res.on("error", reject);
        },
      );
      req.on("error", (error) => reject(new Error(`Docker Engine API ${method} ${apiPath}: ${error.message}`)));
      if (payload) req.write(payload);
      req.end();
    });
  }

  /** JSON call that must succeed (2xx); the engine's own message is in the error. */
  async call<T>(method: string, apiPath: string, body?: unknown, headers?: Record<string, string>): Promise<T> {
    const res = await this.request(method, apiPath, body, headers);
    if (res.status < 200 || res.status >= 300) {
      throw new EngineError(res.status, `Docker Engine API ${method} ${apiPath} → HTTP ${res.status}: ${engineMessage(res.body)}`);
    }
    return (res.body.trim() === "" ? {} : JSON.parse(res.body)) as T;
  }

  /** Calls that return JSON lines (push): fails on the first {"error": …} line. */
  async stream(method: string, apiPath: string, headers: Record<string, string>, onLine: (line: StreamLine) => void): Promise<void> {
    const res = await this.request(method, apiPath, undefined, headers);
    if (res.status < 200 || res.status >= 300) {
      throw new EngineError(res.status, `Docker Engine API ${method} ${apiPath} → HTTP ${res.status}: ${engineMessage(res.body)}`);
    }
    for (const line of res.body.split("\n")) {
      if (line.trim() === "") continue;
      const parsed = JSON.parse(line) as StreamLine;
      if (parsed.error) throw new EngineError(500, `Docker Engine API ${method} ${apiPath}: ${parsed.error}`);
      onLine(parsed);
    }
  }
}

export interface StreamLine {
  status?: string;
  error?: string;
  aux?: { Tag?: string; Digest?: string; Size?: number };
}

function engineMessage(body: string): string {
  try {
    const parsed = JSON.parse(body) as { message?: string };
    return parsed.message ?? body.trim();
  } catch {
    return body.trim();
  }
}
