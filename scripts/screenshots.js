// `npm run screenshots`: a PNG of every console view, light and dark, in docs/console/. It opens a
// memory-mode jobshell with the sample jobs (transaction events on), issues a few tasks of each kind,
// serves it on a free loopback port and photographs each view in Debian's Chromium.
import { existsSync, mkdirSync } from "node:fs";
import { chromium } from "playwright-core";
import { open } from "../dist/index.js";
import { serve } from "../dist/server/index.js";

const chromiumPath = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
if (!existsSync(chromiumPath)) {
  console.error(`screenshots: ${chromiumPath} is missing: install Debian's chromium (apt-get install -y chromium)`);
  process.exit(1);
}
const out = new URL("../docs/console/", import.meta.url);
mkdirSync(out, { recursive: true });

const js = await open({ jobs: ["samples/jobs"], jobTransactionEvent: true, log: () => {} });
const server = await serve(js, { port: 0, host: "127.0.0.1", log: () => {} });
const browser = await chromium.launch({ executablePath: chromiumPath, args: ["--no-sandbox"] });

/** Tasks of every outcome, spread over a few seconds so that the chart has a shape. */
async function seed(rounds) {
  const ids = [];
  for (let i = 0; i < rounds; i++) {
    ids.push(await js.task("greet", { name: `pilot ${i}` }));
    ids.push(await js.task("order.placed", { order: 1000 + i, items: (i % 3) + 1 }));
    ids.push(await js.task("divide", { a: i, b: i % 4 === 0 ? 0 : 2 }));
    if (i % 5 === 0) ids.push(await js.task("nobody.listens", { note: "no job has this topic" }));
    await new Promise((r) => setTimeout(r, 150));
  }
  await Promise.all(ids.map((id) => js.waitfor(id, 30)));
  return ids;
}

try {
  await seed(12);
  // The saga of samples/jobs/saga.yaml: a charge over 1000 fails, and the order is cancelled.
  await js.transaction("order-42", { item: "gundam", quantity: 1, amount: 5000 });
  const greeted = await js.task("greet.twice", { name: "Amuro", note: "x".repeat(2000) });
  await js.waitfor(greeted, 30);
  await new Promise((r) => setTimeout(r, 1000));
  const views = [
    ["overview", "/console"],
    ["tasks", "/console/tasks"],
    ["task", `/console/tasks/${greeted}`],
    ["issue", "/console/issue"],
    ["jobs", "/console/jobs"],
    ["job", "/console/jobs/divide"],
    ["debug", "/console/debug"],
    ["transactions", "/console/transactions"],
  ];
  for (const colorScheme of ["light", "dark"]) {
    const context = await browser.newContext({ baseURL: server.url, colorScheme, viewport: { width: 1200, height: 800 } });
    const page = await context.newPage();
    for (const [name, path] of views) {
      await page.goto(path);
      if (name === "debug") {
        await page.locator("#live[data-state=on]").waitFor({ timeout: 5000 }).catch(() => {});
        await seed(3);
      }
      if (name === "issue") {
        await page.getByLabel("Topic").fill("order.placed");
        await page.getByLabel("Content (JSON object)").fill('{"order": 77, "items": 2}');
      }
      if (name === "overview" || name === "tasks") await seed(2);
      await page.waitForTimeout(1200);
      const file = new URL(`${name}-${colorScheme}.png`, out);
      // Long pages are photographed to the window's height: the tasks view would be a tall, heavy image.
      await page.screenshot({ path: file.pathname, fullPage: name !== "debug" && name !== "tasks" });
      console.log(`docs/console/${name}-${colorScheme}.png`);
    }
    await context.close();
  }
} finally {
  await browser.close();
  await server.close();
  await js.close();
}
