// The Lua scripts of Redis mode as files: each has its header, each caller passes as many keys as the
// header declares, and each compiles on a real Redis.
import { readdirSync, readFileSync } from "node:fs";
import { Redis } from "ioredis";
import ts from "typescript";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { scriptNames, scriptText } from "../../src/backends/redis/lua.js";
import { backends, itWhen, redisUrl, requireServer } from "../each-backend.js";

const folder = new URL("../../src/backends/redis/lua/", import.meta.url);
const read = (file: string) => readFileSync(new URL(file, folder), "utf8");
const commands = readdirSync(folder).filter((f) => f.endsWith(".lua")).map((f) => f.slice(0, -4));
const includes = readdirSync(new URL("include/", folder)).map((f) => f.slice(0, -4));

/** The opening comment lines of a script. */
function header(text: string): string[] {
  const lines = text.split("\n");
  return lines.slice(0, lines.findIndex((l) => !l.startsWith("--")));
}

/** How many keys a command's header declares: its `-- KEYS[n]` lines, numbered from 1. */
function declaredKeys(name: string): number {
  const numbers = header(read(`${name}.lua`)).flatMap((l) => /^-- KEYS\[(\d+)\]/.exec(l)?.[1] ?? []).map(Number);
  expect(numbers, `${name}.lua numbers its KEYS from 1`).toEqual(numbers.map((_, i) => i + 1));
  return numbers.length;
}

/** Each method of Scripts that calls `this.run("<script>", keys, ...)`: the script and the length of
 *  the tuple type of its `keys` parameter, as the type checker sees it. */
function callers(): Map<string, { method: string; keys: number }> {
  const file = new URL("../../src/backends/redis/scripts.ts", import.meta.url).pathname;
  const program = ts.createProgram([file], { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.NodeNext, strict: true, noEmit: true });
  const checker = program.getTypeChecker();
  const found = new Map<string, { method: string; keys: number }>();
  const source = program.getSourceFile(file)!;
  source.forEachChild(function visit(node): void {
    if (ts.isMethodDeclaration(node) && node.body) {
      const method = node.name.getText(source);
      const keysParam = node.parameters.find((p) => p.name.getText(source) === "keys");
      node.body.forEachChild(function call(n): void {
        if (ts.isCallExpression(n) && n.expression.getText(source) === "this.run" && keysParam) {
          const [name, keys] = n.arguments;
          expect(keys.getText(source), `${method} passes its keys parameter`).toBe("keys");
          const type = checker.getTypeAtLocation(keysParam);
          expect(checker.isTupleType(type), `${method}'s keys are a tuple`).toBe(true);
          const length = (type as ts.TupleTypeReference).target.fixedLength;
          const script = (name as ts.StringLiteral).text;
          expect(found.has(script), `one method calls ${script}`).toBe(false);
          found.set(script, { method, keys: length });
        }
        n.forEachChild(call);
      });
    }
    node.forEachChild(visit);
  });
  return found;
}

describe("Redis mode's Lua scripts", () => {
  it("are the commands the loader knows, one file each", () => {
    expect(commands.sort()).toEqual([...scriptNames].sort());
  });

  it("each open with a header giving KEYS, ARGV, the reply and what is atomic", () => {
    for (const name of commands) {
      const lines = header(read(`${name}.lua`));
      expect(lines[0], `${name}.lua says what it does`).toMatch(new RegExp(`^-- ${name}: \\S`));
      for (const part of ["KEYS[1]", "ARGV[1]", "Returns", "Atomically"]) {
        expect(lines.some((l) => l.startsWith(`-- ${part}`)), `${name}.lua's header has ${part}`).toBe(true);
      }
    }
    for (const name of includes) {
      const text = read(`include/${name}.lua`);
      const fn = /^-- (\w+)\(/.exec(text)?.[1];
      expect(fn, `include/${name}.lua opens with the function it defines`).toBeDefined();
      expect(text).toContain(`local function ${fn}(`);
    }
  });

  it("expand every include once, and every include is used", () => {
    const used = new Set<string>();
    for (const name of scriptNames) {
      const text = scriptText(name);
      expect(text).not.toMatch(/--@include/);
      for (const inc of includes) {
        const fn = /^-- (\w+)\(/.exec(read(`include/${inc}.lua`))![1];
        const definitions = text.split(`local function ${fn}(`).length - 1;
        expect(definitions, `${name} defines ${fn} at most once`).toBeLessThanOrEqual(1);
        if (definitions === 1) used.add(inc);
      }
    }
    expect([...used].sort()).toEqual([...includes].sort());
  });

  it("are each called by one method of Scripts, with as many keys as the header declares", () => {
    const found = callers();
    expect([...found.keys()].sort()).toEqual([...scriptNames].sort());
    for (const [script, { method, keys }] of found) expect(keys, `${method} → ${script}.lua`).toBe(declaredKeys(script));
  }, 60_000);
});

describe("Redis mode's Lua scripts on a real Redis", () => {
  let ready = false;
  let redis: Redis | undefined;
  beforeAll(async () => {
    ready = await requireServer(backends.find((b) => b.name === "redis")!);
    if (ready) redis = new Redis(redisUrl);
  });
  afterAll(() => redis?.disconnect());

  // SCRIPT LOAD compiles a script and caches it: it changes nothing any other client sees.
  itWhen(() => ready)("each compile", async () => {
    for (const name of scriptNames) {
      await expect(redis!.script("LOAD", scriptText(name)), name).resolves.toMatch(/^[0-9a-f]{40}$/);
    }
  });
});
