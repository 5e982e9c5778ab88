/**
 * The chat page in a real browser (Debian's chromium through playwright-core)
 * against the real master and a real Python worker on loopback.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Browser, Page } from "playwright-core";
import { startMosquitto, type Broker } from "../../launch/mosquitto";
import { masterMissing, startMaster, startWorker, workerMissing, type Master } from "../../launch/system";
import { waitForIdleWorkers } from "../../launch/api";
import { stopAll } from "../../launch/processes";
import { CHROMIUM, launchChromium } from "../../launch/browser";
import { askThroughPage } from "../support/browser";

const missing = masterMissing() ?? workerMissing("python") ?? (CHROMIUM === undefined ? "chromium is not installed (apt-get install -y chromium)" : undefined);
if (missing !== undefined) console.warn(`[skip] browser test: ${missing}`);

describe.skipIf(missing !== undefined)("chat page in chromium", () => {
  let broker: Broker;
  let master: Master;
  let browser: Browser;
  let page: Page;
  const dialogs: string[] = [];

  beforeAll(async () => {
    broker = await startMosquitto();
    master = await startMaster({ mqttPort: broker.port });
    const worker = startWorker("python", { mqttPort: broker.port, grpcAddr: master.grpcAddr, node: "vm-browser", env: { SIMULATED_WORK_MS: "300" } });
    await waitForIdleWorkers(master.url, [worker.id]);
    browser = await launchChromium();
    page = await browser.newPage();
    page.on("dialog", (dialog) => {
      dialogs.push(dialog.message());
      void dialog.dismiss();
    });
    await page.goto(master.url);
  });

  afterAll(async () => {
    await browser?.close();
    await stopAll();
  });

  it("sends a query and shows the answer with the worker's language and node", async () => {
    const answer = await askThroughPage(page, "What does Docker Swarm do?");
    expect(answer.text).toMatch(/^\[offline\]/);
    expect(answer.language.toLowerCase()).toContain("python");
    expect(answer.node).toContain("vm-browser");
    expect(answer.workerId).toMatch(/^python-/);
  });

  it("shows the live cluster view: a card per node, its workers on demand", async () => {
    const panel = page.locator("#workers-panel");
    await expect.poll(async () => (await panel.textContent()) ?? "", { timeout: 10_000 }).toContain("vm-browser");
    const card = page.locator('#workers-panel .vm-card[data-node="vm-browser"]');
    await expect.poll(() => card.getAttribute("data-idle"), { timeout: 10_000 }).toBe("1");
    // Counts only until asked: the worker list comes with the disclosure button.
    expect(await card.locator(".worker").count()).toBe(0);
    await card.locator(".vm-toggle").click();
    await expect.poll(() => page.locator('#workers-panel .worker[data-status="idle"]').count(), { timeout: 10_000 }).toBeGreaterThan(0);
  });

  it("renders a query holding HTML as text, never as markup", async () => {
    const hostile = "<img src=x onerror=alert(1)>";
    const answer = await askThroughPage(page, hostile);
    expect(answer.text).toMatch(/^\[offline\]/);
    expect(await page.locator(".message img").count()).toBe(0);
    expect((await page.locator(".message").allTextContents()).some((t) => t.includes(hostile))).toBe(true);
    expect(dialogs).toEqual([]);
  });
});
