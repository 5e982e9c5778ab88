// The real HttpApi in front of the real QueryService and a real SQLite store,
// on 127.0.0.1. Tasks are recorded instead of published (no broker needed).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { HttpApi, type HttpDeps } from "../../src/httpServer";
import { createLogger } from "../../src/log";
import { Metrics } from "../../src/metrics";
import { QueryService, type TaskPublisher } from "../../src/queryService";
import { RateLimiter } from "../../src/rateLimit";
import { Scheduler } from "../../src/scheduler";
import { SqliteStore } from "../../src/sqliteStore";

export class RecordingPublisher implements TaskPublisher {
  connected = true;
  readonly sent: Record<string, unknown>[] = [];
  publish(_topic: string, payload: string): void {
    this.sent.push(JSON.parse(payload) as Record<string, unknown>);
  }
}

export interface TestApi {
  api: HttpApi;
  service: QueryService;
  publisher: RecordingPublisher;
  /** http(s)://127.0.0.1:<port> */
  base: string;
  port: number;
  /** Every log line the server wrote. */
  logs: string[];
  close(): Promise<void>;
}

export async function startApi(options: Pick<HttpDeps, "tls" | "auth" | "signInBackoff"> = {}): Promise<TestApi> {
  const dir = mkdtempSync(join(tmpdir(), "master-api-"));
  const store = new SqliteStore(join(dir, "master.db"));
  const scheduler = new Scheduler({
    leaseMs: 30_000, taskTimeoutMs: 300_000, heartbeatTimeoutMs: 7_000,
    maxQueuedPerSession: 50, maxAttempts: 5, offlineRetentionMs: 60_000,
  });
  const logs: string[] = [];
  const log = createLogger("debug", (line) => logs.push(line));
  const publisher = new RecordingPublisher();
  const service = new QueryService(store, scheduler, publisher, log, { taskTopic: (id) => `t/${id}` });
  const metrics = new Metrics({
    queueDepth: () => service.queueDepth(),
    queriesByState: () => service.queriesByState(),
    workers: () => service.workers(),
  });
  service.setMetrics(metrics);
  const api = new HttpApi({
    service, metrics, log, maxQueryChars: 200,
    rateLimiter: new RateLimiter(0),
    health: () => ({ mqtt: true, db: store.ping(), leader: true, store: "sqlite" }),
    ...options,
  });
  const port = await api.listen(0, "127.0.0.1");
  return {
    api, service, publisher, logs, port,
    base: `${options.tls ? "https" : "http"}://127.0.0.1:${port}`,
    close: async () => {
      await api.close();
      store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
