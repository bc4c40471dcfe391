// Injected code in a context of its own: the builtins work across it, and the time limit ends
// code that never yields.
import { describe, expect, it } from "vitest";
import { json, sleep, type ScriptBuiltins } from "../src/builtins.js";
import { ScriptTimeoutError } from "../src/errors.js";
import { MU } from "../src/mu.js";
import { runInOwnContext } from "../src/slack/code-context.js";

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

  it("hands plain objects it made to the builtins as plain objects", async () => {
    const issued: unknown[] = [];
    const value = await run("const id = await issue('t', {a: [1, {b: 2}]})\nconst r = await waitfor(id)\nreturn [MU({n: 1}).n, r.results[0].value, id.length]", 1, builtins(issued));
    expect(value).toEqual([1, 3, 32]);
    expect(issued).toEqual([{ topic: "t", content: { a: [1, { b: 2 }] } }]);
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
