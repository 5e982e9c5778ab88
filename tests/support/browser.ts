import { mkdirSync } from "node:fs";
import path from "node:path";
import type { Page } from "playwright-core";

export interface RenderedAnswer {
  text: string;
  language: string;
  node: string;
  workerId: string;
}

/** Types a query in the chat page, sends it, and returns the answer as the page shows it. */
export async function askThroughPage(page: Page, query: string, timeoutMs = 60_000): Promise<RenderedAnswer> {
  const answers = page.locator(".message.answer");
  const before = await answers.count();
  await page.fill("#query-input", query);
  await page.click("#send-button");
  const answer = answers.nth(before);
  await answer.waitFor({ state: "visible", timeout: timeoutMs });
  const text = async (selector: string): Promise<string> => ((await answer.locator(selector).first().textContent()) ?? "").trim();
  return { text: await text(".answer-text"), language: await text(".worker-language"), node: await text(".worker-node"), workerId: await text(".worker-id") };
}

/** Signs in through the page's form (a master with WEB_AUTH_TOKEN) and waits for the chat. */
export async function signInThroughPage(page: Page, token: string, timeoutMs = 15_000): Promise<void> {
  await page.locator('[data-testid="signin-form"]').waitFor({ state: "visible", timeout: timeoutMs });
  await page.fill('[data-testid="signin-token"]', token);
  await page.click('[data-testid="signin-button"]');
  await page.locator('[data-testid="signin-form"]').waitFor({ state: "hidden", timeout: timeoutMs });
  await page.locator("#query-input").waitFor({ state: "visible", timeout: timeoutMs });
}

/** What a page reported: console lines, uncaught errors and Content Security Policy violations. */
export interface PageReports {
  console: string[];
  errors: string[];
  violations: string[];
}

/**
 * Records a page's console, its uncaught errors and every CSP violation
 * (through a `securitypolicyviolation` listener that Playwright injects over
 * the DevTools protocol, which the page's CSP does not govern). Call before
 * the first navigation.
 */
export async function watchPage(page: Page): Promise<PageReports> {
  const reports: PageReports = { console: [], errors: [], violations: [] };
  page.on("console", (message) => reports.console.push(`${message.type()}: ${message.text()}`));
  page.on("pageerror", (error) => reports.errors.push(error.message));
  await page.exposeFunction("reportCspViolation", (text: string) => reports.violations.push(text));
  await page.addInitScript(() => {
    document.addEventListener("securitypolicyviolation", (event) => {
      const report = (window as unknown as { reportCspViolation(text: string): void }).reportCspViolation;
      report(`${event.violatedDirective} ${event.blockedURI}`);
    });
  });
  return reports;
}

/** Console lines that mention the Content Security Policy. */
export function cspConsoleLines(reports: PageReports): string[] {
  return reports.console.filter((line) => /Content Security Policy/i.test(line));
}

/**
 * A screenshot into the folder named by env SCREENSHOT_DIR (created if
 * missing), as `<name>.png`; nothing when SCREENSHOT_DIR is not set.
 * Returns the file written, if any.
 */
export async function screenshotIfAsked(page: Page, name: string, fullPage = false): Promise<string | undefined> {
  const dir = process.env.SCREENSHOT_DIR;
  if (dir === undefined || dir === "") return undefined;
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${name.replace(/[^A-Za-z0-9_.-]/g, "_")}.png`);
  await page.screenshot({ path: file, fullPage });
  return file;
}

/** Presses Tab until the focused element matches `selector` (at most `maxTabs` times); false if it never does. */
export async function tabTo(page: Page, selector: string, maxTabs = 80): Promise<boolean> {
  for (let i = 0; i < maxTabs; i += 1) {
    await page.keyboard.press("Tab");
    if (await page.evaluate((s) => document.activeElement?.matches(s) ?? false, selector)) return true;
  }
  return false;
}
