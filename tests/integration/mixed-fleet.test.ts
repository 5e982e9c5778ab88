/**
 * A mixed fleet: the master with two workers of each language answers 60
 * queries; every language answers some; none is lost or answered twice.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { io, type Socket } from "socket.io-client";
import { startMosquitto } from "../../launch/mosquitto";
import { masterMissing, startMaster, startWorker, workerMissing, WORKER_LANGUAGES, type Master } from "../../launch/system";
import { postQuery, waitForAnswer, waitForIdleWorkers, type QueryView } from "../../launch/api";
import { eventually, sleep } from "../../launch/ports";
import { stopAll } from "../../launch/processes";

const missing = masterMissing() ?? WORKER_LANGUAGES.map(workerMissing).find((m) => m !== undefined);
if (missing !== undefined) console.warn(`[skip] mixed fleet: ${missing}`);

describe.skipIf(missing !== undefined)("mixed fleet of python, go and java workers", () => {
  let master: Master;

  beforeAll(async () => {
    const broker = await startMosquitto();
    master = await startMaster({ mqttPort: broker.port });
    const workers = WORKER_LANGUAGES.flatMap((language) =>
      [1, 2].map((n) =>
        startWorker(language, { mqttPort: broker.port, grpcAddr: master.grpcAddr, node: `vm-${language}-${n}`, env: { SIMULATED_WORK_MS: "200" } }),
      ),
    );
    await waitForIdleWorkers(master.url, workers.map((w) => w.id), 90_000);
  });

  afterAll(stopAll);

  it("answers 60 queries, each exactly once, with every language taking part", async () => {
    const sessionId = `mixed-${Date.now()}`;
    const answersSeen = new Map<string, Set<string>>();
    const socket: Socket = io(master.url, { auth: { sessionId }, transports: ["websocket"] });
    socket.on("query:update", (view: QueryView) => {
      if (view.status !== "done") return;
      const seen = answersSeen.get(view.id) ?? new Set<string>();
      seen.add(`${view.worker?.id}|${view.answer}`);
      answersSeen.set(view.id, seen);
    });
    try {
      const posted = await Promise.all(Array.from({ length: 60 }, (_, i) => postQuery(master.url, { query: `mixed fleet query ${i}` }, sessionId)));
      expect(posted.map((p) => p.status)).toEqual(posted.map(() => 202));
      const ids = posted.map((p) => String(p.body.id));
      expect(new Set(ids).size).toBe(60);

      const answers = await Promise.all(ids.map((id) => waitForAnswer(master.url, id, 120_000)));
      expect(answers.filter((a) => a.status !== "done")).toEqual([]);
      for (const [i, answer] of answers.entries()) expect(answer.answer).toContain(`mixed fleet query ${i}`);

      const byLanguage = new Map<string, number>();
      for (const a of answers) byLanguage.set(a.worker?.language ?? "?", (byLanguage.get(a.worker?.language ?? "?") ?? 0) + 1);
      console.log(`answers by language: ${JSON.stringify(Object.fromEntries(byLanguage))}`);
      expect([...byLanguage.keys()].sort()).toEqual(["go", "java", "python"]);

      await eventually("the page to see all 60 answers", () => (ids.every((id) => answersSeen.has(id)) ? true : undefined));
      await sleep(1000);
      expect(ids.filter((id) => answersSeen.get(id)?.size !== 1)).toEqual([]);
    } finally {
      socket.close();
    }
  });
});
