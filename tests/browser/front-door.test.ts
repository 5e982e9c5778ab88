/**
 * The chat page behind the closed front door, in Debian's chromium: HTTPS with
 * the stack's certificate, a web token, the page's strict Content Security
 * Policy. The browser context ignores certificate errors (chromium here has no
 * way to trust the test CA); the Node-side integration test proves the chain
 * against the CA.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { startMosquitto } from "../../launch/mosquitto";
import { issueWebCertificate, masterMissing, opensslMissing, startMaster, startWorker, workerMissing, type Master } from "../../launch/system";
import { waitForIdleWorkers } from "../../launch/api";
import { stopAll } from "../../launch/processes";
import { CHROMIUM, launchChromium } from "../../launch/browser";
import { askThroughPage, cspConsoleLines, signInThroughPage, watchPage, type PageReports } from "../support/browser";

const WEB_TOKEN = `browser-web-token-${process.pid}-7c1d`;
const missing =
  masterMissing() ?? workerMissing("python") ?? opensslMissing() ?? (CHROMIUM === undefined ? "chromium is not installed (apt-get install -y chromium)" : undefined);
if (missing !== undefined) console.warn(`[skip] front door browser test: ${missing}`);

describe.skipIf(missing !== undefined)("chat page over HTTPS with a token, in chromium", () => {
  let dir: string;
  let master: Master;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let reports: PageReports;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), "ai-swarm-browser-door-"));
    const cert = issueWebCertificate(dir);
    const broker = await startMosquitto();
    master = await startMaster({
      mqttPort: broker.port,
      env: { WEB_TLS_CERT_FILE: cert.certFile, WEB_TLS_KEY_FILE: cert.keyFile, WEB_AUTH_TOKEN: WEB_TOKEN },
    });
    const worker = startWorker("python", { mqttPort: broker.port, grpcAddr: master.grpcAddr, node: "vm-door", env: { SIMULATED_WORK_MS: "300" } });
    await waitForIdleWorkers(master.url, [worker.id], 60_000, { token: WEB_TOKEN, ca: cert.ca });
    browser = await launchChromium();
    context = await browser.newContext({ ignoreHTTPSErrors: true });
    page = await context.newPage();
    reports = await watchPage(page);
    await page.goto(master.url);
  });

  afterAll(async () => {
    await browser?.close();
    await stopAll();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("shows only the sign-in form before signing in, and refuses a wrong token", async () => {
    await page.locator('[data-testid="signin-form"]').waitFor({ state: "visible" });
    expect(await page.locator("#query-input").isVisible()).toBe(false);
    expect(await page.locator('[data-testid="signout-button"]').isVisible()).toBe(false);
    await page.fill('[data-testid="signin-token"]', "not-the-right-token-at-all");
    await page.click('[data-testid="signin-button"]');
    await expect.poll(() => page.locator('[data-testid="signin-error"]').textContent()).toBe("wrong token");
    expect(await page.locator('[data-testid="signin-form"]').isVisible()).toBe(true);
  });

  it("signs in through the form, asks a query and shows the answer with language and node", async () => {
    await signInThroughPage(page, WEB_TOKEN);
    expect(await page.locator('[data-testid="signin-token"]').inputValue()).toBe("");
    await expect.poll(() => page.locator('[data-testid="connection"]').textContent(), { timeout: 10_000 }).toBe("connected");
    const answer = await askThroughPage(page, "What does a front door do?");
    expect(answer.text).toMatch(/^\[offline\]/);
    expect(answer.language.toLowerCase()).toContain("python");
    expect(answer.node).toContain("vm-door");
    // The token is nowhere the page can read it: not in its storage, not in a cookie it can see.
    const stored = await page.evaluate(() => JSON.stringify({ local: { ...localStorage }, session: { ...sessionStorage }, cookie: document.cookie }));
    expect(stored).not.toContain(WEB_TOKEN);
    expect(stored).not.toContain("aiswarm_session");
  });

  it("keeps the session across a reload (the answer is replayed)", async () => {
    await page.reload();
    await page.locator("#query-input").waitFor({ state: "visible" });
    expect(await page.locator('[data-testid="signin-form"]').isVisible()).toBe(false);
    expect(await page.locator('[data-testid="signout-button"]').isVisible()).toBe(true);
    await expect.poll(() => page.locator(".message.answer .answer-text").allTextContents(), { timeout: 10_000 }).toContainEqual(
      expect.stringMatching(/front door/),
    );
  });

  it("a fresh browser context has no session: the sign-in form, and no socket", async () => {
    const fresh = await browser.newContext({ ignoreHTTPSErrors: true });
    try {
      const other = await fresh.newPage();
      const freshReports = await watchPage(other);
      await other.goto(master.url);
      await other.locator('[data-testid="signin-form"]').waitFor({ state: "visible" });
      expect(await other.locator(".message").count()).toBe(0);
      const attempt = await other.evaluate(
        () =>
          new Promise<string>((resolve) => {
            const io = (window as unknown as { io(opts: object): { on(event: string, fn: (arg?: { message: string }) => void): void } }).io;
            const socket = io({ forceNew: true, reconnection: false, transports: ["websocket"] });
            socket.on("connect", () => resolve("connected"));
            socket.on("connect_error", (err) => resolve(err?.message ?? "error"));
          }),
      );
      expect(attempt).toBe("unauthorized");
      expect(await other.evaluate(async () => (await fetch("/api/workers")).status)).toBe(401);
      expect(freshReports.violations).toEqual([]);
      expect(freshReports.errors).toEqual([]);
    } finally {
      await fresh.close();
    }
  });

  it("signs out: back to the form, and a reload stays signed out", async () => {
    await page.click('[data-testid="signout-button"]');
    await page.locator('[data-testid="signin-form"]').waitFor({ state: "visible" });
    expect(await page.locator(".message").count()).toBe(0);
    await page.reload();
    await page.locator('[data-testid="signin-form"]').waitFor({ state: "visible" });
    expect(await page.locator("#query-input").isVisible()).toBe(false);
  });

  it("ran under its CSP without a single violation or error (and the watch does catch one)", async () => {
    expect(reports.violations).toEqual([]);
    expect(reports.errors).toEqual([]);
    expect(cspConsoleLines(reports)).toEqual([]);
    // The control: an inline script is refused and reported, so silence above means no violation.
    await page.evaluate(() => {
      const script = document.createElement("script");
      script.textContent = "window.inlineRan = true;";
      document.body.append(script);
    });
    await expect.poll(() => reports.violations.length).toBeGreaterThan(0);
    expect(reports.violations[0]).toMatch(/^script-src/);
    await expect.poll(() => cspConsoleLines(reports).length).toBeGreaterThan(0);
    expect(await page.evaluate(() => (window as unknown as { inlineRan?: boolean }).inlineRan)).toBeUndefined();
  });
});
