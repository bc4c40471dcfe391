// Injected code in a context of its own: the builtins work across it, and the time limit ends
// code that never yields.
import { describe, expect, it } from "vitest";
import { json, sleep, type ScriptBuiltins } from "../../src/builtins.js";
import { ScriptTimeoutError } from "../../src/errors.js";
import { MU } from "../../src/mu.js";
import { runInOwnContext } from "../../src/slack/code-context.js";
import { Transactions } from "../../src/transaction.js";

function builtins(issued: unknown[] = []): ScriptBuiltins {
  const lines: string[] = [];
  const logger = { debug() {}, info() {}, warning() {}, error() {}, critical() {} };
  return {
    task: MU({ topic: "amuro", content: { text: "x" } }),
    logger: logger as unknown as ScriptBuiltins["logger"],
    qprint: (...args) => lines.push(args.join(" ")),
    MU,
    json,
    sleep,
    issue: async (topic, content) => {
      issued.push({ topic, content });
      return "f".repeat(32);
    },
    waitfor: async () => MU({ status: "completed", results: [{ value: 3 }] }),
    callout: async () => ({ code: 200 }),
  };
}

const run = (code: string, seconds = 1, b = builtins()) => runInOwnContext("test", code, b, seconds);

describe("code in its own context", () => {
  it("returns its value, with top-level await", async () => {
    expect(await run("await sleep(0.01)\nreturn task.topic + task.content.text")).toBe("amurox");
  });

  it("has no Node globals, console included: qprint and logger print", async () => {
    expect(await run("return [typeof console, typeof process, typeof require, typeof setTimeout]")).toEqual(["undefined", "undefined", "undefined", "undefined"]);
    await expect(run('console.log("x")')).rejects.toThrow(/console is not defined/);
  });

  it("hands plain objects it made to the builtins as plain objects", async () => {
    const issued: unknown[] = [];
    const value = await run("const id = await issue('t', {a: [1, {b: 2}]})\nconst r = await waitfor(id)\nreturn [MU({n: 1}).n, r.results[0].value, id.length]", 1, builtins(issued));
    expect(value).toEqual([1, 3, 32]);
    expect(issued).toEqual([{ topic: "t", content: { a: [1, { b: 2 }] } }]);
  });

  it("moves a transaction through its statuses, and a refused move is an error the code can catch", async () => {
    const events: { topic: string; content: Record<string, unknown> }[] = [];
    const transactions = new Transactions({ events: true, issue: async (topic, content) => (events.push({ topic, content }), "e".repeat(32)) });
    const b = { ...builtins(), transaction: (what?: unknown, data?: Record<string, unknown>) => transactions.open(what, data) };
    const code = [
      "const t = await transaction('order-7', {item: 'tea'})",
      "await t.to('Complete', {paid: true})",
      "let refused = ''",
      "try { await t.to('Processing') } catch (err) { refused = err.message }",
      "return [t.xname, t.status, t.previousStatus, t.data.item, t.data.paid, t.next.join(','), refused]",
    ].join("\n");
    const [xname, status, previous, item, paid, next, refused] = (await run(code, 2, b)) as string[];
    expect([xname, status, previous, item, paid, next]).toEqual(["order-7", "Complete", "Processing", "tea", true, "Cancelling"]);
    expect(refused).toMatch(/Complete.*Processing/);
    expect(events.map((e) => e.topic)).toEqual(["Transaction.Processing", "Transaction.Complete"]);
    expect(transactions.get("order-7")?.status).toBe("Complete");
  });

  it("reports a thrown error with the code's line and column", async () => {
    await expect(run("const a = 1\n  throw new TypeError('bad')")).rejects.toThrow("TypeError: bad (line 2:9)");
    await expect(run("throw new Error('first')")).rejects.toThrow(/^first \(line 1:7\)$/);
  });

  it.each([
    ["a loop built with Function", "Function('while (true) {}')()"],
    ["an endless chain of awaits", "const f = async () => { await null; return f() }\nreturn f()"],
    ["a loop after an await", "await sleep(0.01)\nFunction('for (;;) {}')()"],
    ["a promise that never settles", "await new Promise(() => {})"],
  ])("ends %s at the time limit", async (_, code) => {
    const began = performance.now();
    await expect(run(code, 0.5)).rejects.toBeInstanceOf(ScriptTimeoutError);
    expect(performance.now() - began).toBeLessThan(10_000);
  });

  it("leaves no timer behind when it is cut off while sleeping", async () => {
    const timers = () => process.getActiveResourcesInfo().filter((r) => r === "Timeout").length;
    const before = timers();
    await expect(run("await sleep(3600)", 0.2)).rejects.toBeInstanceOf(ScriptTimeoutError);
    expect(timers()).toBeLessThanOrEqual(before);
  });

  it("sees no Node globals", async () => {
    expect(await run("return [typeof process, typeof require, typeof setTimeout]")).toEqual(["undefined", "undefined", "undefined"]);
  });
});
