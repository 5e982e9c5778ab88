import http from "node:http";
import type { AddressInfo } from "node:net";

/**
 * Faithful fakes of the two LLM HTTP APIs the workers speak (Gemini
 * generateContent and OpenAI-compatible chat completions), on loopback, so the
 * workers' real client code is exercised end to end.
 */
export type FakeBehaviour = "ok" | 429 | 500 | "hang";

export interface RecordedRequest {
  path: string;
  headers: http.IncomingHttpHeaders;
  body: unknown;
}

export interface FakeLlm {
  baseUrl: string;
  requests: RecordedRequest[];
  behaviour: FakeBehaviour;
  close(): Promise<void>;
}

export async function startFakeGemini(answerPrefix = "gemini-fake says:"): Promise<FakeLlm> {
  return startFake((request, body) => {
    const match = request.url?.match(/^\/v1beta\/models\/([^/:]+):generateContent$/);
    if (request.method !== "POST" || !match) return [404, { error: { code: 404, message: "not found" } }];
    const text = extractGeminiText(body);
    return [200, { candidates: [{ content: { role: "model", parts: [{ text: `${answerPrefix} ${text}` }] }, finishReason: "STOP" }] }];
  });
}

export async function startFakeOpenAi(answerPrefix = "openai-fake says:"): Promise<FakeLlm> {
  return startFake((request, body) => {
    if (request.method !== "POST" || request.url !== "/v1/chat/completions") return [404, { error: { message: "not found" } }];
    const messages = (body as { messages?: { content?: string }[] }).messages ?? [];
    const text = messages.map((m) => m.content ?? "").join(" ");
    return [200, { id: "chatcmpl-fake", object: "chat.completion", choices: [{ index: 0, message: { role: "assistant", content: `${answerPrefix} ${text}` }, finish_reason: "stop" }] }];
  }, "/v1");
}

function extractGeminiText(body: unknown): string {
  const contents = (body as { contents?: { parts?: { text?: string }[] }[] }).contents ?? [];
  return contents.flatMap((c) => c.parts ?? []).map((p) => p.text ?? "").join(" ");
}

type Handler = (request: http.IncomingMessage, body: unknown) => [number, unknown];

async function startFake(handler: Handler, basePath = ""): Promise<FakeLlm> {
  const hanging = new Set<http.ServerResponse>();
  const fake: FakeLlm = {
    baseUrl: "",
    requests: [],
    behaviour: "ok",
    close: async () => {
      for (const response of hanging) response.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  const server = http.createServer((request, response) => {
    let raw = "";
    request.on("data", (chunk: Buffer) => (raw += chunk.toString("utf8")));
    request.on("end", () => {
      let body: unknown = null;
      try {
        body = JSON.parse(raw);
      } catch {
        body = raw;
      }
      fake.requests.push({ path: request.url ?? "", headers: request.headers, body });
      if (fake.behaviour === "hang") {
        hanging.add(response);
        return;
      }
      if (fake.behaviour !== "ok") {
        send(response, fake.behaviour, { error: { code: fake.behaviour, message: `fake error ${fake.behaviour}` } });
        return;
      }
      const [status, payload] = handler(request, body);
      send(response, status, payload);
    });
  });
  server.keepAliveTimeout = 1000;
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  fake.baseUrl = `http://127.0.0.1:${port}${basePath}`;
  return fake;
}

function send(response: http.ServerResponse, status: number, payload: unknown): void {
  const text = JSON.stringify(payload);
  response.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
  response.end(text);
}
