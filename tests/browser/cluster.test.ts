/**
 * The cluster view and the query's story in Debian's chromium, against the
 * real master and real workers (two Python workers on vm-alpha, one Go worker
 * on vm-beta): cards per VM that agree with GET /api/workers, details by
 * keyboard, the story of an answer, a re-dispatch after a worker is SIGKILLed
 * mid-task, the phone and 200 % zoom layouts, and no CSP violation.
 * Screenshots go to $SCREENSHOT_DIR when it is set.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Browser, Page } from "playwright-core";
import { startMosquitto } from "../../launch/mosquitto";
import { masterMissing, startMaster, startWorker, workerMissing, type Master, type StartedWorker } from "../../launch/system";
import { listWorkers, waitForIdleWorkers } from "../../launch/api";
import { eventually } from "../../launch/ports";
import { stopAll } from "../../launch/processes";
import { CHROMIUM, launchChromium } from "../../launch/browser";
import { askThroughPage, cspConsoleLines, screenshotIfAsked, tabTo, watchPage, type PageReports } from "../support/browser";

const missing =
  masterMissing() ?? workerMissing("python") ?? workerMissing("go") ?? (CHROMIUM === undefined ? "chromium is not installed (apt-get install -y chromium)" : undefined);
if (missing !== undefined) console.warn(`[skip] cluster view browser test: ${missing}`);

/** Long enough to kill a worker while it holds the task. */
const WORK_MS = "3000";

describe.skipIf(missing !== undefined)("cluster view and query story in chromium", () => {
  let master: Master;
  let workers: StartedWorker[];
  let browser: Browser;
  let page: Page;
  let reports: PageReports;

  const card = (node: string) => page.locator(`.vm-card[data-node="${node}"]`);

  /** Online workers per node as GET /api/workers says. */
  async function onlineByNode(): Promise<Map<string, { idle: number; busy: number; ids: string[] }>> {
    const out = new Map<string, { idle: number; busy: number; ids: string[] }>();
    for (const w of await listWorkers(master.url)) {
      if (w.status === "offline") continue;
      const entry = out.get(w.node) ?? { idle: 0, busy: 0, ids: [] };
      entry[w.status] += 1;
      entry.ids.push(w.id);
      out.set(w.node, entry);
    }
    return out;
  }

  beforeAll(async () => {
    const broker = await startMosquitto();
    master = await startMaster({ mqttPort: broker.port });
    const env = { SIMULATED_WORK_MS: WORK_MS };
    workers = [
      startWorker("python", { mqttPort: broker.port, grpcAddr: master.grpcAddr, node: "vm-alpha", env }),
      startWorker("python", { mqttPort: broker.port, grpcAddr: master.grpcAddr, node: "vm-alpha", env }),
      startWorker("go", { mqttPort: broker.port, grpcAddr: master.grpcAddr, node: "vm-beta", env }),
    ];
    await waitForIdleWorkers(master.url, workers.map((w) => w.id), 90_000);
    browser = await launchChromium();
    page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    reports = await watchPage(page);
    await page.goto(master.url);
  });

  afterAll(async () => {
    await browser?.close();
    await stopAll();
  });

  it("shows one card per VM whose counts match GET /api/workers, and the totals", async () => {
    await card("vm-alpha").waitFor({ timeout: 15_000 });
    await card("vm-beta").waitFor();
    const expected = await onlineByNode();
    for (const [node, counts] of expected) {
      await expect.poll(() => card(node).getAttribute("data-workers"), { timeout: 5_000 }).toBe(String(counts.ids.length));
      expect(await card(node).locator('[data-count="idle"] .count-value').textContent()).toBe(String(counts.idle));
      expect(await card(node).locator('[data-count="busy"] .count-value').textContent()).toBe(String(counts.busy));
    }
    expect(await page.locator(".vm-card").count()).toBe(expected.size);
    expect(await card("vm-alpha").locator(".vm-langs").textContent()).toBe("python 2");
    expect(await card("vm-beta").locator(".vm-langs").textContent()).toBe("go 1");
    // Never colour alone: the states are words too.
    expect(await card("vm-alpha").locator(".vm-counts").textContent()).toMatch(/\d+ busy.*\d+ idle/);
    const totals = page.locator('[data-testid="cluster-totals"]');
    expect(await totals.locator('[data-total="vms"]').textContent()).toBe("2");
    expect(await totals.locator('[data-total="workers"]').textContent()).toBe("3");
    expect(await totals.locator('[data-total="languages"]').textContent()).toBe("go 1 · python 2");
    expect(await page.locator("#cluster-chart polyline").count()).toBe(2);
  });

  it("opens a VM's details with the keyboard (a real button, aria-expanded, visible focus)", async () => {
    await page.evaluate(() => (document.activeElement as HTMLElement | null)?.blur());
    const toggle = '.vm-card[data-node="vm-alpha"] .vm-toggle';
    expect(await tabTo(page, toggle)).toBe(true);
    expect(await page.evaluate(() => document.activeElement?.tagName)).toBe("BUTTON");
    expect(await page.evaluate(() => getComputedStyle(document.activeElement as Element).outlineStyle)).not.toBe("none");
    expect(await page.locator(toggle).getAttribute("aria-expanded")).toBe("false");
    await page.keyboard.press("Enter");
    expect(await page.locator(toggle).getAttribute("aria-expanded")).toBe("true");
    const list = card("vm-alpha").locator(".vm-workers");
    const controls = await page.locator(toggle).getAttribute("aria-controls");
    expect(await list.getAttribute("id")).toBe(controls);
    const ids = (await onlineByNode()).get("vm-alpha")?.ids.sort() ?? [];
    await expect.poll(async () => (await list.locator(".worker").evaluateAll((items) => items.map((i) => (i as HTMLElement).dataset.workerId))).sort(), { timeout: 10_000 }).toEqual(ids);
    expect(await list.locator(".worker .worker-status").first().textContent()).toMatch(/idle|busy/);
    // Space closes it, Enter opens it again.
    await page.keyboard.press("Space");
    expect(await page.locator(toggle).getAttribute("aria-expanded")).toBe("false");
    expect(await list.isVisible()).toBe(false);
    await page.keyboard.press("Enter");
    expect(await page.locator(toggle).getAttribute("aria-expanded")).toBe("true");
    await card("vm-beta").locator(".vm-toggle").click();
    await expect.poll(() => card("vm-beta").locator(".vm-workers .worker").count(), { timeout: 10_000 }).toBe(1);
  });

  it("shows the answer's story: queued, leased to worker W on VM V, answered, with times", async () => {
    const answer = await askThroughPage(page, "Tell me your story");
    expect(answer.text).toMatch(/^\[offline\]/);
    const story = page.locator(".message.answer").last().locator(".story li");
    expect(await story.evaluateAll((items) => items.map((i) => (i as HTMLElement).dataset.kind))).toEqual(["queued", "leased", "answered"]);
    const leased = (await story.nth(1).textContent()) ?? "";
    expect(leased).toContain(`leased to worker ${answer.workerId} on VM ${answer.node}`);
    expect(await story.nth(0).locator(".story-time").textContent()).toBe("+0 ms");
    expect(await story.nth(2).locator(".story-time").textContent()).toMatch(/^\+\d+ ms$/);
  });

  it("a worker SIGKILLed mid-task: the story says the worker was lost, and it leaves its card", async () => {
    const answersBefore = await page.locator(".message.answer").count();
    await page.fill("#query-input", "survive a lost worker");
    await page.click("#send-button");
    const holder = page.locator(".message.assigned .worker-id").last();
    await holder.waitFor({ timeout: 20_000 });
    const victimId = ((await holder.textContent()) ?? "").trim();
    const victim = workers.find((w) => w.id === victimId);
    expect(victim, `the holder ${victimId} is one of ours`).toBeDefined();
    const victimNode = victimId.startsWith("go") ? "vm-beta" : "vm-alpha";
    const onlineBefore = Number(await card(victimNode).getAttribute("data-workers"));
    victim?.process.signal("SIGKILL");

    const answer = page.locator(".message.answer").nth(answersBefore);
    await answer.waitFor({ timeout: 45_000 });
    expect(await answer.locator(".answer-text").textContent()).toMatch(/^\[offline\]/);
    const steps = answer.locator(".story li");
    expect(await steps.evaluateAll((items) => items.map((i) => (i as HTMLElement).dataset.kind))).toEqual(["queued", "leased", "requeued", "leased", "answered"]);
    const lost = answer.locator('.story li[data-kind="requeued"]');
    expect(await lost.getAttribute("data-reason")).toBe("worker_lost");
    expect((await lost.textContent()) ?? "").toMatch(new RegExp(`worker lost.*${victimId}`));
    expect(await answer.locator(".worker-id").first().textContent()).not.toBe(victimId);
    expect((await steps.nth(3).textContent()) ?? "").toContain("(attempt 2)");

    // It leaves its card: one worker fewer, and not in the open worker list.
    await expect.poll(() => card(victimNode).getAttribute("data-workers"), { timeout: 15_000 }).toBe(String(onlineBefore - 1));
    await expect.poll(() => card(victimNode).locator(`.worker[data-worker-id="${victimId}"]`).count(), { timeout: 10_000 }).toBe(0);
    const expected = await onlineByNode();
    await expect.poll(() => card(victimNode).getAttribute("data-workers")).toBe(String(expected.get(victimNode)?.ids.length ?? 0));
    if (onlineBefore - 1 === 0) expect(await card(victimNode).locator(".vm-empty").count()).toBe(1);
  });

  it("desktop (1280×800): chat and cluster side by side", async () => {
    await page.setViewportSize({ width: 1280, height: 800 });
    const chat = await page.locator(".chat").boundingBox();
    const cluster = await page.locator("#cluster").boundingBox();
    expect(chat && cluster && cluster.x >= chat.x + chat.width - 1).toBe(true);
    await screenshotIfAsked(page, "cluster-desktop-1280x800");
  });

  it("phone (375×667): the cluster view stacks under the chat, nothing scrolls sideways", async () => {
    await page.setViewportSize({ width: 375, height: 667 });
    const chat = await page.locator(".chat").boundingBox();
    const cluster = await page.locator("#cluster").boundingBox();
    expect(chat && cluster && cluster.y >= chat.y + chat.height - 1).toBe(true);
    expect(await page.evaluate(() => document.documentElement.scrollWidth <= document.documentElement.clientWidth)).toBe(true);
    expect(await page.locator("#send-button").isVisible()).toBe(true);
    await screenshotIfAsked(page, "cluster-phone-375x667");
    await screenshotIfAsked(page, "cluster-phone-375x667-full", true);
  });

  it("200 % zoom (1280 px at 2×: 640 CSS px): readable, stacked, nothing scrolls sideways", async () => {
    await page.setViewportSize({ width: 640, height: 400 });
    expect(await page.evaluate(() => document.documentElement.scrollWidth <= document.documentElement.clientWidth)).toBe(true);
    const chat = await page.locator(".chat").boundingBox();
    const cluster = await page.locator("#cluster").boundingBox();
    expect(chat && cluster && cluster.y >= chat.y + chat.height - 1).toBe(true);
    await page.setViewportSize({ width: 1280, height: 800 });
  });

  it("ran without a CSP violation or a page error", async () => {
    await eventually("the reports to settle", () => true);
    expect(reports.violations).toEqual([]);
    expect(reports.errors).toEqual([]);
    expect(cspConsoleLines(reports)).toEqual([]);
  });
});
