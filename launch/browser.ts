// Debian's chromium, headless, for the browser tests and `npm run bench:cluster`.
import { existsSync } from "node:fs";
import { chromium, type Browser } from "playwright-core";

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
