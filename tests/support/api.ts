import { eventually } from "./ports";

export interface WorkerView {
  id: string;
  language: string;
  node: string;
  status: "idle" | "busy" | "offline";
  task_id: string | null;
  last_seen_ms: number;
}

export interface QueryView {
  id: string;
  status: "queued" | "assigned" | "done" | "failed";
  query: string;
  position: number;
  answer: string | null;
  error: string | null;
  provider: string | null;
  worker: { id: string; language: string; node: string } | null;
  timings: Record<string, number | null>;
  attempts: number;
}

export async function postQuery(
  baseUrl: string,
  body: { query: string; apiKey?: string },
  sessionId?: string,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (sessionId !== undefined) headers["x-session-id"] = sessionId;
  const response = await fetch(`${baseUrl}/api/queries`, { method: "POST", headers, body: JSON.stringify(body) });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

/** Posts a query that must be accepted, and returns its id. */
export async function submit(baseUrl: string, query: string, apiKey?: string): Promise<string> {
  const { status, body } = await postQuery(baseUrl, apiKey === undefined ? { query } : { query, apiKey });
  if (status !== 202 || typeof body.id !== "string") throw new Error(`query refused: ${status} ${JSON.stringify(body)}`);
  return body.id;
}

export async function getQuery(baseUrl: string, id: string, waitMs = 0): Promise<QueryView> {
  const response = await fetch(`${baseUrl}/api/queries/${encodeURIComponent(id)}${waitMs > 0 ? `?wait=${waitMs}` : ""}`);
  if (!response.ok) throw new Error(`GET query ${id}: HTTP ${response.status}`);
  return (await response.json()) as QueryView;
}

/** Waits until the query is done or failed (long-polls the master). */
export async function waitForAnswer(baseUrl: string, id: string, timeoutMs = 60_000): Promise<QueryView> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let view: QueryView | undefined;
    try {
      view = await getQuery(baseUrl, id, Math.min(10_000, Math.max(1, deadline - Date.now())));
    } catch (error) {
      // An unknown id will not become known: fail now. Anything else may be a
      // master restarting in the test; keep asking until the deadline.
      if (error instanceof Error && error.message.includes("HTTP 404")) throw error;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    if (view !== undefined && (view.status === "done" || view.status === "failed")) return view;
    if (Date.now() > deadline) throw new Error(`query ${id} not finished after ${timeoutMs} ms: ${JSON.stringify(view)}`);
  }
}

export async function listWorkers(baseUrl: string): Promise<WorkerView[]> {
  const response = await fetch(`${baseUrl}/api/workers`);
  if (!response.ok) throw new Error(`GET /api/workers: HTTP ${response.status}`);
  return (await response.json()) as WorkerView[];
}

/** Waits until every listed worker id shows as idle on the master. */
export async function waitForIdleWorkers(baseUrl: string, ids: readonly string[], timeoutMs = 60_000): Promise<WorkerView[]> {
  return eventually(`workers ${ids.join(", ")} idle`, async () => {
    const workers = await listWorkers(baseUrl);
    const ready = ids.every((id) => workers.some((w) => w.id === id && w.status === "idle"));
    return ready ? workers : undefined;
  }, timeoutMs, 200);
}
