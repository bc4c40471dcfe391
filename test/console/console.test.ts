// The web console in a real browser, against a real server in memory mode: sign-in, live lists,
// the issue form, the debug tail, the job editor, read-only, escaping, CSP and reloads.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Browser, BrowserContext } from "playwright-core";
import { internals } from "../../src/internals.js";
import { open, type JobShell } from "../../src/jobshell.js";
import { serve, type RunningServer } from "../../src/server/index.js";
import { browserMissing, launch, watchedPage } from "./browser.js";

const token = "console-test-token";
const jobs = `
- name: greet
  topics: [hello]
  script: |
    qprint("greeting", task.content.name)
    return "Hello, " + task.content.name
- name: shout
  topics: [hello]
  script: return task.content.name.toUpperCase()
`;

const missing = browserMissing();

describe.skipIf(missing !== undefined)("web console in a browser", () => {
  let js: JobShell;
  let server: RunningServer;
  let browser: Browser;
  let context: BrowserContext;

  /** A signed-in browser context for `server`. */
  async function signedIn(base: string, secret: string): Promise<BrowserContext> {
    const ctx = await browser.newContext({ baseURL: base });
    const page = await ctx.newPage();
    await page.goto("/console/login");
    await page.getByLabel("API token").fill(secret);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.waitForURL(/\/console$/);
    await page.close();
    return ctx;
  }

  beforeAll(async () => {
    js = await open({ log: () => {} });
    await js.upload(jobs);
    server = await serve(js, { port: 0, host: "127.0.0.1", token, log: () => {} });
    browser = await launch();
    context = await signedIn(server.url, token);
  });

  afterAll(async () => {
    await browser?.close();
    await server?.close();
    await js?.close();
  });

  it("sends a browser without a session to the sign-in page, and back where it was going after", async () => {
    const ctx = await browser.newContext({ baseURL: server.url });
    const page = await watchedPage(ctx);
    await page.goto("/console/jobs");
    expect(new URL(page.url()).pathname).toBe("/console/login");
    await page.getByLabel("API token").fill("wrong");
    await page.getByRole("button", { name: "Sign in" }).click();
    await expectVisible(page.getByRole("alert").filter({ hasText: "not accepted" }));
    // From the keyboard: Enter in the field signs in.
    await page.getByLabel("API token").fill(token);
    await page.getByLabel("API token").press("Enter");
    await page.waitForURL(/\/console\/jobs$/);
    await expectVisible(page.getByRole("heading", { name: "Jobs", level: 1 }));
    // The first Tab reaches the link that skips the navigation.
    await page.keyboard.press("Tab");
    expect(await page.evaluate(() => document.activeElement?.textContent)).toBe("Skip to content");
    expect(page.problems.filter((p) => !p.includes("401") && !p.includes("status of 30"))).toEqual([]);
    await ctx.close();
  });

  it("a task issued from the form shows in the open task list within a second, and its page shows each job's result", async () => {
    const list = await watchedPage(context);
    await list.goto("/console/tasks");
    await list.locator("#live[data-state=on]").waitFor();
    const form = await watchedPage(context);
    await form.goto("/console/issue");
    await form.getByLabel("Topic").fill("hello");
    await expectVisible(form.getByText("Fans out to: greet, shout"));
    await form.getByLabel("Content (JSON object)").fill('{"name": "amuro"}');
    await form.getByRole("button", { name: "Issue", exact: true }).click();
    await form.waitForURL(/\/console\/tasks\/[0-9a-f]{32}$/);
    const taskid = form.url().split("/").pop()!;
    await list.locator(`tr[data-taskid="${taskid}"]`).waitFor({ timeout: 1000 });
    await expectVisible(form.getByLabel("result of greet").filter({ hasText: "Hello, amuro" }));
    await expectVisible(form.getByLabel("result of shout").filter({ hasText: "AMURO" }));
    await expectVisible(list.locator(`tr[data-taskid="${taskid}"] .status`, { hasText: "completed" }));
    // Issue again: a new task with the same topic and content.
    await form.getByRole("button", { name: "Issue again" }).click();
    await form.waitForURL((url) => /\/console\/tasks\/[0-9a-f]{32}$/.test(url.pathname) && !url.pathname.endsWith(taskid));
    await expectVisible(form.getByLabel("result of greet").filter({ hasText: "Hello, amuro" }));
    expect([...list.problems, ...form.problems]).toEqual([]);
    await list.close();
    await form.close();
  });

  it("the issue form checks the content as JSON while it is typed, and warns of a topic no job handles", async () => {
    const page = await watchedPage(context);
    await page.goto("/console/issue");
    await page.getByLabel("Content (JSON object)").fill('{"name": ');
    await expectVisible(page.getByText(/^Not valid JSON/));
    await page.getByLabel("Content (JSON object)").fill("[1]");
    await expectVisible(page.getByText("The content must be a JSON object"));
    await page.getByLabel("Topic").fill("nobody.listens");
    await expectVisible(page.getByText("No job handles this topic"));
    expect(page.problems).toEqual([]);
    await page.close();
  });

  it("with wait, the form shows the record once the task ends", async () => {
    const page = await watchedPage(context);
    await page.goto("/console/issue");
    await page.getByLabel("Topic").fill("hello");
    await page.getByLabel("Content (JSON object)").fill('{"name": "char"}');
    await page.getByLabel(/Wait and show the record/).check();
    await page.getByRole("button", { name: "Issue", exact: true }).click();
    await expectVisible(page.getByLabel("the record").filter({ hasText: '"value": "Hello, char"' }));
    expect(page.problems).toEqual([]);
    await page.close();
  });

  it("a qprint line shows in the debug tail", async () => {
    const page = await watchedPage(context);
    await page.goto("/console/debug");
    await page.locator("#live[data-state=on]").waitFor();
    await js.task("hello", { name: "debug-tail-check" });
    await expectVisible(page.getByRole("log", { name: "Debug lines" }).filter({ hasText: "greeting debug-tail-check" }));
    await page.getByLabel("Filter").fill("no such text");
    await expect.poll(() => page.getByRole("log").textContent()).toBe("");
    expect(page.problems).toEqual([]);
    await page.close();
  });

  it("a bad YAML upload shows its problem at its line, and changes nothing", async () => {
    const page = await watchedPage(context);
    await page.goto("/console/jobs");
    await page.getByLabel("Job YAML").fill("- name: broken\n  topics: [a, b\n  script: return 1\n");
    await page.getByRole("button", { name: "Upload" }).click();
    const alert = page.getByRole("alert");
    await expectVisible(alert.filter({ hasText: "YAML syntax error" }));
    expect(await alert.textContent()).toMatch(/line [23]:\d+/);
    expect(js.jobs().map((d) => d.name)).not.toContain("broken");
    // A script's syntax error is named at its line inside the script.
    await page.getByLabel("Job YAML").fill("- name: broken\n  topics: [a]\n  script: |\n    return 1\n    let = ;\n");
    await page.getByRole("button", { name: "Upload" }).click();
    await expectVisible(page.getByRole("alert").filter({ hasText: /script.*line 2:\d+/ }));
    expect(page.problems.filter((p) => !p.includes("400"))).toEqual([]);
    await page.close();
  });

  it("a good YAML upload adds the job; delete asks first, then removes it", async () => {
    const page = await watchedPage(context);
    await page.goto("/console/jobs");
    await page.getByLabel("Job YAML").fill("- name: added\n  topics: [added.topic]\n  script: return 1\n");
    await page.getByRole("button", { name: "Upload" }).click();
    await page.waitForURL(/\/console\/jobs\/added$/);
    expect(js.jobs().map((d) => d.name)).toContain("added");
    // A job another process uploads shows in an open list.
    const list = await watchedPage(context);
    await list.goto("/console/jobs");
    await list.locator("#live[data-state=on]").waitFor();
    await js.upload("- name: elsewhere\n  topics: [elsewhere.topic]\n  script: return 2\n");
    await expectVisible(list.getByRole("link", { name: "elsewhere", exact: true }));
    await internals(js).removeJob("elsewhere");
    await list.getByRole("link", { name: "elsewhere", exact: true }).waitFor({ state: "detached" });
    expect(list.problems).toEqual([]);
    await list.close();
    await page.getByRole("link", { name: "Delete…" }).click();
    await page.getByRole("button", { name: "Delete added" }).click();
    await page.waitForURL(/\/console\/jobs$/);
    expect(js.jobs().map((d) => d.name)).not.toContain("added");
    expect(page.problems).toEqual([]);
    await page.close();
  });

  it("a topic or content holding <script> and <img onerror> renders as text", async () => {
    const topic = "<script>window.pwned=1</script>";
    const taskid = await js.task(topic, { name: "<img src=x onerror=window.pwned=2>" });
    await js.waitfor(taskid, 10);
    const page = await watchedPage(context);
    for (const path of ["/console/tasks", `/console/tasks/${taskid}`, "/console"]) {
      await page.goto(path);
      await expectVisible(page.getByText(topic).first());
      expect(await page.evaluate(() => (window as unknown as { pwned?: number }).pwned)).toBeUndefined();
      expect(await page.locator("img").count()).toBe(0);
    }
    // Live rows are built as text too.
    await page.goto("/console/tasks");
    await page.locator("#live[data-state=on]").waitFor();
    const live = await js.task("<img src=x onerror=window.pwned=3>", {});
    await page.locator(`tr[data-taskid="${live}"]`).waitFor();
    expect(await page.locator("img").count()).toBe(0);
    expect(await page.evaluate(() => (window as unknown as { pwned?: number }).pwned)).toBeUndefined();
    expect(page.problems).toEqual([]);
    await page.close();
  });

  it("no view has a CSP violation, a console error or a control without a name", async () => {
    const taskid = await js.task("hello", { name: "csp" });
    await js.waitfor(taskid, 10);
    const page = await watchedPage(context);
    for (const path of ["/console", "/console/tasks", `/console/tasks/${taskid}`, "/console/issue", "/console/jobs", "/console/jobs/greet", "/console/debug", "/console/transactions", "/console/tasks?text=csp"]) {
      await page.goto(path);
      await page.waitForLoadState("networkidle").catch(() => {});
      await expectVisible(page.getByRole("heading", { level: 1 }));
      // Every control has a name a screen reader can say: a label, an aria-label or its text.
      const unnamed = await page.locator("input:not([type=hidden]), select, textarea, button").evaluateAll((controls) =>
        controls
          .filter((c) => !((c as HTMLInputElement).labels?.length || c.getAttribute("aria-label") || (c.tagName === "BUTTON" && c.textContent?.trim())))
          .map((c) => c.outerHTML),
      );
      expect(unnamed, path).toEqual([]);
    }
    await page.goto("/console");
    // The charts are drawn by a module: proof that scripts run under the CSP.
    await page.locator("#chart-throughput polyline").first().waitFor();
    expect(page.problems).toEqual([]);
    await page.close();
  });

  it("a reload, or the link shared, shows the same filters and page", async () => {
    for (let i = 0; i < 7; i++) await js.waitfor(await js.task("hello", { name: `page${i}` }), 10);
    const page = await watchedPage(context);
    await page.goto("/console/tasks");
    await page.getByLabel("Status").selectOption("completed");
    await page.getByLabel("Topic").fill("hello");
    await page.getByLabel("Per page").selectOption("20");
    await page.getByRole("button", { name: "Apply" }).click();
    await page.waitForURL(/status=completed/);
    // 3 per page is not offered by the form but taken from the URL.
    await page.goto(page.url().replace("limit=20", "limit=3"));
    await page.getByRole("link", { name: "older →" }).click();
    await page.waitForURL(/cursor=/);
    const url = page.url();
    const rows = await page.locator("#tasks tbody tr").allTextContents();
    expect(rows).toHaveLength(3);
    await page.reload();
    expect(page.url()).toBe(url);
    expect(await page.locator("#tasks tbody tr").allTextContents()).toEqual(rows);
    expect(await page.getByLabel("Status").inputValue()).toBe("completed");
    expect(await page.getByLabel("Topic").inputValue()).toBe("hello");
    // A time given as epoch ms fills the field, so that the next Apply keeps it.
    await page.goto(`/console/tasks?since=${Date.now() - 3_600_000}`);
    expect(await page.getByLabel("Since").inputValue()).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d$/);
    await page.getByRole("button", { name: "Apply" }).click();
    await page.waitForURL(/since=\d{4}-\d\d-\d\dT/);
    expect(await page.locator("#tasks tbody tr").count()).toBeGreaterThan(0);
    const shared = await watchedPage(context);
    await shared.goto(url);
    expect(await shared.locator("#tasks tbody tr").allTextContents()).toEqual(rows);
    expect([...page.problems, ...shared.problems]).toEqual([]);
    await page.close();
    await shared.close();
  });

  it("finds a task by taskid prefix, opens a whole taskid at once, and says so in a page when there is none", async () => {
    const taskid = await js.task("hello", { name: "findme" });
    await js.waitfor(taskid, 10);
    const page = await watchedPage(context);
    await page.goto("/console/tasks");
    await page.getByLabel("Taskid prefix").fill(taskid.slice(0, 6));
    await page.getByRole("button", { name: "Apply" }).click();
    await page.waitForURL(/find=/);
    await page.locator(`tr[data-taskid="${taskid}"]`).waitFor();
    await expectVisible(page.getByRole("status").filter({ hasText: /Scanned \d+ of \d+ records/ }));
    await page.getByLabel("Taskid prefix").fill(taskid);
    await page.getByRole("button", { name: "Apply" }).click();
    await page.waitForURL(new RegExp(`/console/tasks/${taskid}$`));
    const missing = await page.goto(`/console/tasks/${"0".repeat(32)}`);
    expect(missing?.status()).toBe(404);
    await expectVisible(page.getByRole("alert").filter({ hasText: "no record of task" }));
    await expectVisible(page.getByRole("navigation", { name: "Console views" }));
    expect(page.problems.filter((p) => !p.includes("404"))).toEqual([]);
    await page.close();
  });

  it("a long value is folded and never sent whole; a bad filter is named on the page", async () => {
    const big = "z".repeat(200_000);
    const taskid = await js.task("hello", { name: "big", blob: big });
    await js.waitfor(taskid, 10);
    const page = await watchedPage(context);
    const reply = await page.goto(`/console/tasks/${taskid}`);
    expect((await reply!.body()).length).toBeLessThan(60_000);
    const fold = page.locator("details.fold").filter({ has: page.locator("summary", { hasText: /^content:/ }) });
    expect(await fold.evaluate((d) => (d as HTMLDetailsElement).open)).toBe(false);
    await fold.locator("summary").click();
    await expectVisible(fold.getByText(/Showing 16,384 of 200,\d{3} characters/));
    await page.goto("/console/tasks?since=yesterday-ish&status=done");
    await expectVisible(page.getByRole("alert").filter({ hasText: "since must be a date and time" }));
    await page.goto("/console/tasks?status=done");
    await expectVisible(page.getByRole("alert").filter({ hasText: "status" }));
    expect(page.problems).toEqual([]);
    await page.close();
  });

  it("reads and issues without JavaScript", async () => {
    const ctx = await browser.newContext({ baseURL: server.url, javaScriptEnabled: false, storageState: await context.storageState() });
    const page = await ctx.newPage();
    await page.goto("/console/issue");
    await page.getByLabel("Topic").fill("hello");
    await page.getByLabel("Content (JSON object)").fill('{"name": "nojs"}');
    await page.getByRole("button", { name: "Issue", exact: true }).click();
    await page.waitForURL(/\/console\/tasks\/[0-9a-f]{32}$/);
    const taskid = page.url().split("/").pop()!;
    await js.waitfor(taskid, 10);
    await page.reload();
    await expectVisible(page.getByLabel("result of greet").filter({ hasText: "Hello, nojs" }));
    await page.goto("/console/tasks?topic=hello");
    await page.locator(`tr[data-taskid="${taskid}"]`).waitFor();
    // The server checks the content when the page could not.
    await page.goto("/console/issue");
    await page.getByLabel("Topic").fill("hello");
    await page.getByLabel("Content (JSON object)").fill("{not json");
    await page.getByRole("button", { name: "Issue", exact: true }).click();
    await expectVisible(page.getByRole("alert").filter({ hasText: "the content is not valid JSON" }));
    expect(await page.getByLabel("Content (JSON object)").inputValue()).toBe("{not json");
    await ctx.close();
  });

  it("a read-only server shows no write controls and answers writes with 403", async () => {
    const readOnly = await serve(js, { port: 0, host: "127.0.0.1", token, readOnly: true, log: () => {} });
    const ctx = await signedIn(readOnly.url, token);
    try {
      const page = await watchedPage(ctx);
      const taskid = await js.task("hello", { name: "ro" });
      for (const path of ["/console/issue", "/console/jobs", "/console/jobs/greet", `/console/tasks/${taskid}`]) {
        await page.goto(path);
        expect(await page.getByRole("button", { name: /Issue|Upload|Delete/ }).count(), path).toBe(0);
        expect(await page.getByRole("link", { name: "Delete…" }).count(), path).toBe(0);
        expect(await page.getByRole("textbox").count(), path).toBe(0);
      }
      const statuses = await page.evaluate(async () => {
        const form = { "content-type": "application/x-www-form-urlencoded" };
        const issue = await fetch("/console/issue", { method: "POST", headers: form, body: "topic=hello&content=%7B%7D" });
        const upload = await fetch("/console/jobs", { method: "POST", headers: form, body: "yaml=-%20name%3A%20x%0A%20%20topics%3A%20%5Bx%5D%0A%20%20script%3A%20return%201" });
        const remove = await fetch("/console/jobs/greet/delete", { method: "POST", headers: form, body: "" });
        const api = await fetch("/tasks", { method: "POST", headers: { "content-type": "application/json" }, body: '{"topic":"hello"}' });
        return [issue.status, upload.status, remove.status, api.status];
      });
      expect(statuses).toEqual([403, 403, 403, 403]);
      expect(js.jobs().map((d) => d.name)).toContain("greet");
      expect(page.problems.filter((p) => !p.includes("403"))).toEqual([]);
    } finally {
      await ctx.close();
      await readOnly.close();
    }
  });
});

/** Wait until the locator is visible (5 s), failing with what it was looking for. */
async function expectVisible(locator: import("playwright-core").Locator): Promise<void> {
  await locator.waitFor({ state: "visible", timeout: 5000 });
}
