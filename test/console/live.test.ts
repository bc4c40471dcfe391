// The console's live stream broken for real, through a relay between browser and server: a cut
// connection resumes with Last-Event-ID and misses no task; a browser that stops reading is told how
// many debug lines it lost, and the server holds no growing buffer for it.
import type { Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { open, type JobShell } from "../../src/jobshell.js";
import { serve } from "../../src/server/index.js";
import { browserMissing, launch, watchedPage } from "./browser.js";
import { breakableProxy } from "./relay.js";

const missing = browserMissing();

describe.skipIf(missing !== undefined)("web console over a broken connection", () => {
  let js: JobShell;
  let browser: Browser;

  beforeAll(async () => {
    js = await open({ log: () => {} });
    await js.upload("- name: greet\n  topics: [hello]\n  script: return 'Hello, ' + task.content.name\n");
    browser = await launch();
  });

  afterAll(async () => {
    await browser?.close();
    await js?.close();
  });

  it("after a broken connection the live list resumes with Last-Event-ID and misses no task", async () => {
    const server = await serve(js, { port: 0, host: "127.0.0.1", log: () => {} });
    const line = await breakableProxy(new URL(server.url));
    const ctx = await browser.newContext({ baseURL: line.url });
    try {
      const page = await watchedPage(ctx);
      await page.goto("/console/tasks?topic=hello");
      await page.locator("#live[data-state=on]").waitFor();
      const first = await js.task("hello", { name: "before the break" });
      await page.locator(`tr[data-taskid="${first}"]`).waitFor();
      line.cut();
      await page.locator("#live:not([data-state=on])").waitFor();
      const during: string[] = [];
      for (let i = 0; i < 5; i++) during.push(await js.task("hello", { name: `during the break ${i}` }));
      await Promise.all(during.map((id) => js.waitfor(id, 10)));
      line.mend();
      for (const id of during) await page.locator(`tr[data-taskid="${id}"] .status`, { hasText: "completed" }).waitFor({ timeout: 10_000 });
      expect(line.heads.some((h) => /^GET \/events\?[^\r]*\r\n(?:.*\r\n)*last-event-id: \d+\r\n/i.test(h))).toBe(true);
      // Each task once: no gap and no duplicate row.
      const ids = await page.locator("#tasks tbody tr").evaluateAll((rows) => rows.map((r) => (r as HTMLElement).dataset.taskid));
      expect(new Set(ids).size).toBe(ids.length);
      expect(page.problems.filter((p) => !p.includes("ERR_") && !p.includes("EventSource"))).toEqual([]);
    } finally {
      await ctx.close();
      line.close();
      await server.close();
    }
  });
});

describe.skipIf(missing !== undefined)("web console debug tail, for a browser that cannot keep up", () => {
  it("says how many lines were dropped, and the server keeps no buffer for it", async () => {
    const js = await open({ log: () => {} });
    // Lines of 8 KiB, far more than the connection holds while the browser does not read.
    await js.upload("- name: flood\n  topics: [flood]\n  script: for (let i = 0; i < task.content.n; i++) qprint(i + ' ' + 'x'.repeat(8192))\n");
    const server = await serve(js, { port: 0, host: "127.0.0.1", log: () => {}, events: { ringSize: 50 } });
    const line = await breakableProxy(new URL(server.url));
    const browser = await launch();
    try {
      const page = await watchedPage(await browser.newContext({ baseURL: line.url }));
      await page.goto("/console/debug");
      await page.locator("#live[data-state=on]").waitFor();
      line.stall();
      await js.waitfor(await js.task("flood", { n: 3000 }), 30);
      line.resume();
      const dropped = page.getByRole("alert").filter({ hasText: /^\d+ lines dropped/ });
      await dropped.waitFor({ timeout: 15_000 });
      const count = Number((await dropped.textContent())!.split(" ")[0]);
      expect(count).toBeGreaterThan(0);
      expect(count).toBeLessThan(3000);
      expect(page.problems).toEqual([]);
    } finally {
      await browser.close();
      line.close();
      await server.close();
      await js.close();
    }
  });
});
