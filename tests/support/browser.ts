import { existsSync } from "node:fs";
import { chromium, type Browser, type Page } from "playwright-core";

export const CHROMIUM = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].find((p) => existsSync(p));

/**
 * Debian's chromium, headless, with nothing that phones home (this network is
 * closed). Playwright gives every launch a fresh, empty profile of its own.
 */
export async function launchChromium(): Promise<Browser> {
  if (CHROMIUM === undefined) throw new Error("chromium is not installed: apt-get install -y chromium");
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}

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
