// A real Chromium for the console's tests (Debian's /usr/bin/chromium, driven by playwright-core; no
// browser is ever downloaded), and a page that records every console error, uncaught exception and
// CSP violation, so that a test can say none happened.
import { existsSync } from "node:fs";
import { chromium, type Browser, type BrowserContext, type Page } from "playwright-core";

export const chromiumPath = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

/** Why no browser can run here, or undefined; under CI a missing browser is an error, not a skip. */
export function browserMissing(): string | undefined {
  if (existsSync(chromiumPath)) return undefined;
  const missing = `${chromiumPath} is missing: install Debian's chromium (apt-get install -y chromium)`;
  if (process.env.CI) throw new Error(`console browser tests under CI: ${missing}`);
  console.warn(`\n*** SKIPPING the console's browser tests: ${missing} ***\n`);
  return missing;
}

export function launch(): Promise<Browser> {
  return chromium.launch({ executablePath: chromiumPath, args: ["--no-sandbox"] });
}

/** A page whose console errors, page errors and CSP violations are kept in `problems`. */
export async function watchedPage(context: BrowserContext): Promise<Page & { problems: string[] }> {
  const page = (await context.newPage()) as Page & { problems: string[] };
  page.problems = [];
  page.on("console", (m) => {
    if (m.type() === "error") page.problems.push(`console: ${m.text()}`);
  });
  page.on("pageerror", (e) => page.problems.push(`page error: ${e.message}`));
  return page;
}
