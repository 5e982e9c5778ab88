/**
 * The cluster view with 1000 workers on 50 VMs, in chromium, against the real
 * master. The workers are simulated over MQTT by this test (register,
 * heartbeats, and a churn of busy/idle changes — the wire contract of
 * docs/protocol.md, no tasks); the page must stay small and the master must
 * send it aggregated, rate-limited updates: at most about one `cluster`
 * summary a second, whatever the churn, and a VM's worker list only once the
 * page asks for it.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import mqtt, { type MqttClient } from "mqtt";
import type { Browser, Page } from "playwright-core";
import { startMosquitto } from "../../launch/mosquitto";
import { masterMissing, startMaster, type Master } from "../../launch/system";
import { listWorkers } from "../../launch/api";
import { eventually, sleep } from "../../launch/ports";
import { stopAll } from "../../launch/processes";
import { CHROMIUM, launchChromium } from "../../launch/browser";
import { cspConsoleLines, screenshotIfAsked, watchPage, type PageReports } from "../support/browser";

const missing = masterMissing() ?? (CHROMIUM === undefined ? "chromium is not installed (apt-get install -y chromium)" : undefined);
if (missing !== undefined) console.warn(`[skip] cluster view at scale: ${missing}`);

const WORKERS = 1000;
const VMS = 50;
const LANGUAGES = ["python", "go", "java"] as const;

interface SimWorker {
  id: string;
  node: string;
  language: (typeof LANGUAGES)[number];
  status: "idle" | "busy";
  /** Stopped: no more heartbeats. */
  gone?: boolean;
}

describe.skipIf(missing !== undefined)(`cluster view with ${WORKERS} workers on ${VMS} VMs`, () => {
  let master: Master;
  let client: MqttClient;
  let browser: Browser;
  let page: Page;
  let reports: PageReports;
  let heartbeats: NodeJS.Timeout | undefined;
  let churn: NodeJS.Timeout | undefined;
  /** Socket.IO frames the page received over its WebSocket. */
  const frames: { at: number; bytes: number; event: string }[] = [];
  const fleet: SimWorker[] = Array.from({ length: WORKERS }, (_, i) => ({
    id: `sim-${String(i).padStart(4, "0")}`,
    node: `vm-${String(i % VMS).padStart(2, "0")}`,
    language: LANGUAGES[i % LANGUAGES.length] as SimWorker["language"],
    status: "idle",
  }));

  const send = (w: SimWorker, kind: "register" | "heartbeat" | "status", body: Record<string, unknown>): void => {
    client.publish(`ai-system/workers/${w.id}/${kind}`, JSON.stringify({ v: 1, type: kind, worker_id: w.id, ts: Date.now(), ...body }), { qos: 0 });
  };
  const heartbeat = (w: SimWorker): void => send(w, "heartbeat", { language: w.language, node: w.node, status: w.status, task_id: null });

  beforeAll(async () => {
    const broker = await startMosquitto();
    master = await startMaster({ mqttPort: broker.port, env: { HEARTBEAT_TIMEOUT_MS: "15000", LOG_LEVEL: "warn" } });
    client = await mqtt.connectAsync(`mqtt://127.0.0.1:${broker.port}`, { clientId: `sim-fleet-${process.pid}`, reconnectPeriod: 500 });
    for (const w of fleet) {
      send(w, "register", { language: w.language, node: w.node, provider: "offline" });
      send(w, "status", { status: "idle", task_id: null });
    }
    heartbeats = setInterval(() => fleet.filter((w) => !w.gone).forEach(heartbeat), 3000);
    await eventually(`${WORKERS} workers online`, async () => ((await listWorkers(master.url)).filter((w) => w.status !== "offline").length === WORKERS ? true : undefined), 30_000, 250);

    browser = await launchChromium();
    page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    reports = await watchPage(page);
    page.on("websocket", (ws) => {
      ws.on("framereceived", (frame) => {
        const text = typeof frame.payload === "string" ? frame.payload : frame.payload.toString("utf8");
        const event = /^42\["([^"]+)"/.exec(text)?.[1] ?? "other";
        frames.push({ at: Date.now(), bytes: Buffer.byteLength(text), event });
      });
    });
    await page.goto(master.url);
  });

  afterAll(async () => {
    clearInterval(heartbeats);
    clearInterval(churn);
    await browser?.close();
    await client?.endAsync(true);
    await stopAll();
  });

  it("shows 50 cards that collapse to counts, and totals for 1000 workers", async () => {
    await expect.poll(() => page.locator(".vm-card").count(), { timeout: 15_000 }).toBe(VMS);
    await expect.poll(() => page.locator('[data-total="workers"]').textContent(), { timeout: 5_000 }).toBe("1,000");
    expect(await page.locator('[data-total="vms"]').textContent()).toBe("50");
    expect(await page.locator('[data-total="languages"]').textContent()).toBe("go 333 · java 333 · python 334");
    expect(await page.locator('.vm-card[data-node="vm-07"]').getAttribute("data-workers")).toBe("20");
    // No worker list until asked: the page stays small.
    expect(await page.locator(".worker").count()).toBe(0);
    expect(await page.evaluate(() => document.querySelectorAll("*").length)).toBeLessThan(2500);
    // The page itself does not grow with the fleet (it was a 28,000-pixel list): the cluster column scrolls.
    expect(await page.evaluate(() => document.documentElement.scrollHeight)).toBeLessThan(1000);
  });

  it("under churn (~200 worker changes a second) the page gets at most about one summary a second", async () => {
    // Wait for the WebSocket (Socket.IO starts on long-polling, then upgrades).
    await eventually("the page's WebSocket", () => (frames.length > 0 ? true : undefined), 15_000);
    churn = setInterval(() => {
      for (let i = 0; i < 10; i++) {
        const w = fleet[Math.floor(Math.random() * fleet.length)] as SimWorker;
        w.status = w.status === "idle" ? "busy" : "idle";
        send(w, "status", { status: w.status, task_id: null });
      }
    }, 50);
    await sleep(1500);
    const from = Date.now();
    await sleep(6000);
    const window = frames.filter((f) => f.at >= from);
    const seconds = (Date.now() - from) / 1000;
    const summaries = window.filter((f) => f.event === "cluster");
    const bytesPerSecond = window.reduce((sum, f) => sum + f.bytes, 0) / seconds;
    console.log(`[cluster scale] ${summaries.length} summaries in ${seconds.toFixed(1)} s, ${(bytesPerSecond / 1024).toFixed(1)} KiB/s, events: ${[...new Set(window.map((f) => f.event))].join(", ")}`);
    expect(summaries.length).toBeGreaterThanOrEqual(3);
    expect(summaries.length).toBeLessThanOrEqual(Math.ceil(seconds) + 1);
    expect(window.filter((f) => f.event === "workers")).toEqual([]);
    expect(window.filter((f) => f.event === "node:workers")).toEqual([]); // nothing watched yet
    expect(bytesPerSecond).toBeLessThan(30 * 1024);
    clearInterval(churn);
    churn = undefined;
  });

  it("the busy/idle counts settle on what GET /api/workers says", async () => {
    await sleep(300); // the last churn messages reach the master
    const online = (await listWorkers(master.url)).filter((w) => w.status !== "offline");
    const busy = online.filter((w) => w.status === "busy").length;
    await expect.poll(() => page.locator('[data-total="busy"]').textContent(), { timeout: 5_000 }).toBe(`● ${busy.toLocaleString("en")}`);
    const node = "vm-13";
    const nodeBusy = online.filter((w) => w.node === node && w.status === "busy").length;
    await expect.poll(() => page.locator(`.vm-card[data-node="${node}"]`).getAttribute("data-busy"), { timeout: 5_000 }).toBe(String(nodeBusy));
  });

  it("one VM's details on demand: only that VM's list, 20 workers", async () => {
    const card = page.locator('.vm-card[data-node="vm-21"]');
    const from = Date.now();
    await card.locator(".vm-toggle").click();
    await expect.poll(() => card.locator(".vm-workers .worker").count(), { timeout: 10_000 }).toBe(WORKERS / VMS);
    expect(await page.locator(".worker").count()).toBe(WORKERS / VMS);
    // Changes elsewhere do not bring other VMs' lists.
    for (const w of fleet.filter((x) => x.node === "vm-22").slice(0, 5)) {
      w.status = w.status === "idle" ? "busy" : "idle";
      send(w, "status", { status: w.status, task_id: null });
    }
    await sleep(2500);
    const lists = frames.filter((f) => f.at >= from && f.event === "node:workers");
    expect(lists.length).toBeGreaterThanOrEqual(1);
    expect(lists.every((f) => f.bytes < 20 * 200)).toBe(true); // 20 workers, not 1000
    await screenshotIfAsked(page, "cluster-1000-workers-desktop-1280x800");
    await page.setViewportSize({ width: 375, height: 667 });
    await screenshotIfAsked(page, "cluster-1000-workers-phone-375x667");
    expect(await page.evaluate(() => document.documentElement.scrollWidth <= document.documentElement.clientWidth)).toBe(true);
  });

  it("a VM whose workers go offline leaves the totals and shows them as offline", async () => {
    for (const w of fleet.filter((x) => x.node === "vm-21")) {
      w.gone = true;
      send(w, "status", { status: "offline", task_id: null });
    }
    const card = page.locator('.vm-card[data-node="vm-21"]');
    await expect.poll(() => card.getAttribute("data-workers"), { timeout: 10_000 }).toBe("0");
    await expect.poll(() => card.locator(".vm-workers .worker").count(), { timeout: 10_000 }).toBe(0);
    expect(await card.locator('[data-count="offline"] .count-value').textContent()).toBe("20");
    await expect.poll(() => page.locator('[data-total="vms"]').textContent()).toBe("49");
    await expect.poll(() => page.locator('[data-total="workers"]').textContent()).toBe("980");
  });

  it("ran without a CSP violation or a page error", () => {
    expect(reports.violations).toEqual([]);
    expect(reports.errors).toEqual([]);
    expect(cspConsoleLines(reports)).toEqual([]);
  });
});
