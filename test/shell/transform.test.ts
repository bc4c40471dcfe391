import vm from "node:vm";
import { describe, expect, it } from "vitest";
import { BlockSyntaxError, transformBlock } from "../../src/shell/transform.js";
import { keywords, isKeywords, toHost } from "../../src/shell/keywords.js";

const options = { keywordCallees: new Set(["task", "dict", "json.dumps"]), keywordsFunction: "__keywords__" };

/** A context like the shell's: blocks run one after another in it. */
function shell() {
  const calls: unknown[][] = [];
  const context = vm.createContext({
    __keywords__: keywords,
    task: async (...args: unknown[]) => {
      calls.push(args);
      return `id${calls.length}`;
    },
    dict: (kw: Record<string, unknown>) => ({ ...kw }),
    tick: () => new Promise((resolve) => setTimeout(resolve, 1)),
  });
  const run = async (block: string) => {
    const { code } = transformBlock(block, options);
    const result = await new vm.Script(code, { filename: "<shell>" }).runInContext(context);
    return result?.value;
  };
  return { run, context, calls };
}

describe("the shell's block transform", () => {
  it("allows await at the top level of a block and returns the last expression's value", async () => {
    const { run } = shell();
    expect(await run("await tick()\n40 + 2")).toBe(42);
  });

  it("keeps const, let and var declared in a block for later blocks", async () => {
    const { run } = shell();
    await run("const a = await task('x')\nlet b = 2\nvar c = 3");
    expect(await run("[a, b, c]")).toEqual(["id1", 2, 3]);
  });

  it("lets the same block be pasted twice (names may be declared again)", async () => {
    const { run } = shell();
    const block = "const t = await task('x')\nclass C { m() { return 1 } }\nfunction f() { return t }";
    await run(block);
    await run(block);
    expect(await run("f()")).toBe("id2");
    expect(await run("new C().m()")).toBe(1);
  });

  it("keeps bare assignments as globals", async () => {
    const { run, context } = shell();
    await run("r = await task('x')");
    expect(context.r).toBe("id1");
  });

  it("declares every name of a destructuring pattern", async () => {
    const { run } = shell();
    await run("const { a, b: [c, ...rest], d = 4 } = { a: 1, b: [2, 3, 5] }");
    expect(await run("[a, c, rest, d]")).toEqual([1, 2, [3, 5], 4]);
    expect(transformBlock("const { a, b: [c, ...rest], d = 4 } = x\nfunction f() {}", options).declared).toEqual(["a", "c", "rest", "d", "f"]);
  });

  it("hoists functions within the block and keeps them afterwards", async () => {
    const { run } = shell();
    expect(await run("const y = f(1)\nfunction f(x) { return x + 1 }\ny")).toBe(2);
    expect(await run("f(2)")).toBe(3);
  });

  it("leaves await inside nested async functions alone and keeps their declarations local", async () => {
    const { run, context } = shell();
    await run("async function g() { const inner = await tick(); var v = 1; return v }\nout = await g()");
    expect(context.out).toBe(1);
    expect(context.inner).toBeUndefined();
    expect(context.v).toBeUndefined();
  });

  it("moves var out of loops and blocks but keeps let in a for head to the loop", async () => {
    const { run, context } = shell();
    await run("for (var i = 0; i < 3; i++) { var last = i }\nfor (let j = 0; j < 2; j++) {}\nfor (var k of [7]) {}");
    expect([context.i, context.last, context.k]).toEqual([3, 2, 7]);
    expect("j" in context).toBe(false);
  });

  it("shows a promise value as a promise instead of waiting for it", async () => {
    const { context } = shell();
    const { code } = transformBlock("await tick()\nPromise.resolve(5)", options);
    const result = await new vm.Script(code).runInContext(context);
    expect(typeof result.value.then).toBe("function");
    expect(await result.value).toBe(5);
  });

  it("has no value for a block that ends with a declaration", async () => {
    const { run } = shell();
    expect(await run("const x = 1")).toBeUndefined();
  });

  it("reads a block that is only an object literal as an object", async () => {
    const { run } = shell();
    expect(await run('{"topic": "hello", "expire": 10}')).toEqual({ topic: "hello", expire: 10 });
  });

  it("turns Python-style keyword arguments of the builtins into tagged keyword objects", async () => {
    const { run, calls } = shell();
    await run('await task("hello.job", dict(arg="hello"), expire=30)');
    const [topic, content, named] = calls[0];
    expect(topic).toBe("hello.job");
    expect(content).toEqual({ arg: "hello" });
    expect(isKeywords(named)).toBe(true);
    expect({ ...(named as object) }).toEqual({ expire: 30 });
  });

  it("accepts keyword arguments in member builtins such as json.dumps", () => {
    expect(transformBlock("json.dumps(x, indent=2)", options).code).toContain("json.dumps(x, __keywords__({indent: 2}))");
  });

  it("leaves assignments in calls to other functions as assignments", async () => {
    const { run, context } = shell();
    await run("function f(v) { return v }\ny = f(x = 5)");
    expect([context.x, context.y]).toEqual([5, 5]);
  });

  it("refuses a positional argument after a keyword argument, with its position", () => {
    const err = catchError(() => transformBlock('x = 1\ntask("a", expire=1, 2)', options));
    expect(err).toBeInstanceOf(BlockSyntaxError);
    expect(err).toMatchObject({ line: 2, column: 21, incomplete: false });
  });

  it("treats Python comment lines as comments", async () => {
    const { run } = shell();
    expect(await run("# the answer\n42")).toBe(42);
  });

  it("keeps # lines inside a template string (a YAML text) as they are", async () => {
    const { run } = shell();
    const yaml = "# jobs\n- name: x\n  # the topics\n  topics: [a]\n#\n";
    expect(await run(`# a comment\ntext = \`${yaml}\`\ntext`)).toBe(yaml);
  });

  it("keeps the block's line numbers in the program it makes", () => {
    const program = transformBlock("const a = 1\n\nx = foo(a)", options);
    expect(program.code.split("\n")[2]).toContain("foo(a)");
    const column = program.code.split("\n")[2].indexOf("foo") + 1;
    expect(program.originalPosition(3, column)).toEqual({ line: 3, column: 5 });
  });

  it("tells an incomplete block from a wrong one", () => {
    for (const src of ["1 +", "function f() {", "`abc", "/* x", "{ a: 1", 'await task("x"', "if (x) {\n}\nelse {"]) {
      expect(catchError(() => transformBlock(src, options)), src).toMatchObject({ incomplete: true });
    }
    for (const src of ["foo)", '"abc', "let = = 1"]) {
      expect(catchError(() => transformBlock(src, options)), src).toMatchObject({ incomplete: false });
    }
  });

  it("reports the line and column of a syntax error inside the block", () => {
    expect(catchError(() => transformBlock("a = 1\nb = (2))", options))).toMatchObject({ line: 2, column: 8 });
  });
});

function catchError(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error("expected an error");
}

describe("the copy of the shell's values into the host's realm", () => {
  it("copies plain objects and arrays of any depth, keeping shared and circular references", () => {
    const [value, flat] = vm.runInNewContext("const a = {x: 1}; const o = {a, b: a, list: [a, [1, 2]], n: null}; o.self = o; [o, {k: 'v'}]");
    const copy = toHost(value) as Record<string, any>;
    expect(Object.getPrototypeOf(copy)).toBe(Object.prototype);
    expect(copy.a).toBe(copy.b);
    expect(copy.list[0]).toBe(copy.a);
    expect(copy.self).toBe(copy);
    expect(Object.getPrototypeOf(copy.list)).toBe(Array.prototype);
    expect(copy.list[1]).toEqual([1, 2]);
    expect(toHost(flat)).toEqual({ k: "v" });
    expect(Object.getPrototypeOf(toHost(flat))).toBe(Object.prototype);
  });
});
