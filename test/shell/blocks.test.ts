import { describe, expect, it } from "vitest";
import { BlockReader, parseShellCommand, type BlockEvent } from "../../src/shell/blocks.js";

const reader = () => new BlockReader({ keywordCallees: new Set(["task"]), keywordsFunction: "__keywords__" });
const feed = (r: BlockReader, lines: string[]): BlockEvent["kind"][] => lines.map((l) => r.push(l).kind);

describe("the shell's block rules", () => {
  it("keeps every entered line, even a complete one, until an empty line runs the block", () => {
    const r = reader();
    expect(feed(r, ['print("a")', 'print("b")', ""])).toEqual(["more", "more", "run"]);
  });

  it("runs the whole block as one program", () => {
    const r = reader();
    feed(r, ["a = 1", "b = 2"]);
    const event = r.push("");
    expect(event).toMatchObject({ kind: "run", source: "a = 1\nb = 2" });
  });

  it("checks lines added unchecked (a paste) when asked: an error gives back the lines after it", () => {
    const r = reader();
    for (const line of ["a = 1", "b = = 2", "c = 3", "d = 4"]) expect(r.push(line, true).kind).toBe("more");
    const event = r.checkAdded();
    expect(event).toMatchObject({ kind: "error", error: { line: 2, column: 5 }, source: "a = 1\nb = = 2", rest: ["c = 3", "d = 4"] });
    expect(r.collecting).toBe(false);
    // Complete or not, a block without an error goes on reading until its empty line.
    for (const line of ["x = [1,", "2]"]) r.push(line, true);
    expect(r.checkAdded()).toEqual({ kind: "more" });
    expect(r.push("")).toMatchObject({ kind: "run", source: "x = [1,\n2]" });
    expect(r.checkAdded()).toEqual({ kind: "more" });
  });

  it("keeps an empty line inside an incomplete block and goes on reading", () => {
    const r = reader();
    expect(feed(r, ["x = [1,", "", "2]", ""])).toEqual(["more", "more", "more", "run"]);
  });

  it("reports a syntax error as soon as the line is entered, with its line and column, and drops the block", () => {
    const r = reader();
    r.push("a = 1");
    const event = r.push("b = (2))");
    expect(event).toMatchObject({ kind: "error", error: { line: 2, column: 8 } });
    expect(r.collecting).toBe(false);
  });

  it("does nothing for an empty line at the >>> prompt", () => {
    expect(reader().push("   ").kind).toBe("idle");
  });

  it("runs a shell command typed alone on the >>> line at once", () => {
    const r = reader();
    expect(r.push("debug()")).toMatchObject({ kind: "command", name: "debug" });
    expect(r.push("exit(3)")).toMatchObject({ kind: "command", name: "exit", args: [3] });
  });

  it("treats a command inside a block as code of the block", () => {
    const r = reader();
    r.push("x = 1");
    expect(r.push("debug()").kind).toBe("more");
  });

  it("lets comment lines in front of a command through", () => {
    const r = reader();
    r.push("# turn the debug channel on");
    expect(r.push("debug()")).toMatchObject({ kind: "command", name: "debug" });
  });

  it("runs the last block at the end of the input, or reports it unfinished", () => {
    const done = reader();
    done.push("a = 1");
    expect(done.end()?.kind).toBe("run");
    const open = reader();
    open.push("f(");
    expect(open.end()).toMatchObject({ kind: "error", error: { message: "Unexpected end of input", line: 1, column: 3 } });
  });

  it("recognises the shell commands and nothing else", () => {
    expect(parseShellCommand("  stats()  ")).toEqual({ name: "stats", args: [] });
    expect(parseShellCommand("quit")).toEqual({ name: "quit", args: [] });
    expect(parseShellCommand("debug")).toEqual({ name: "debug", args: [] });
    expect(parseShellCommand(" help ")).toEqual({ name: "help", args: [] });
    expect(parseShellCommand("debug(1)")).toBeUndefined();
    expect(parseShellCommand("debug() + 1")).toBeUndefined();
  });
});
