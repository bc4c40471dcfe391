// code_injection's policy and the shape of replies, without Slack.
import { describe, expect, it } from "vitest";
import { CodeRefusedError } from "../../src/slack/errors.js";
import { checkCode, normaliseCode } from "../../src/slack/injection.js";
import { cutText, errorText, valueText } from "../../src/slack/reply.js";

function refusal(code: string): CodeRefusedError {
  try {
    checkCode(code);
  } catch (err) {
    if (err instanceof CodeRefusedError) return err;
    throw err;
  }
  throw new Error(`not refused: ${code}`);
}

describe("normaliseCode", () => {
  it("unwraps a fenced block, with or without a language", () => {
    expect(normaliseCode("```\nreturn 1\n```")).toBe("return 1");
    expect(normaliseCode("```js\nreturn 2\n```")).toBe("return 2");
    expect(normaliseCode("here:\n```return 3```")).toBe("return 3");
  });

  it("unwraps inline backticks", () => {
    expect(normaliseCode("`return 4`")).toBe("return 4");
  });

  it("gives back what the user typed where Slack made a link of it", () => {
    expect(normaliseCode('return callout({url: "<https://example.com/a?b=1&amp;c=2>"})')).toBe('return callout({url: "https://example.com/a?b=1&c=2"})');
    expect(normaliseCode('return "<http://example.com|example.com>"')).toBe('return "example.com"');
    expect(normaliseCode('return "<mailto:a@b.io|a@b.io>"')).toBe('return "a@b.io"');
    expect(normaliseCode("return 1 &lt; 2 &amp;&amp; 3 &gt; 2")).toBe("return 1 < 2 && 3 > 2");
  });

  it("undoes exactly Slack's three escapes, &amp; last", () => {
    expect(normaliseCode("a &lt; b &amp;&amp; c &gt; d")).toBe("a < b && c > d");
    expect(normaliseCode('"&amp;lt;"')).toBe('"&lt;"');
    expect(normaliseCode("&quot;")).toBe("&quot;");
  });
});

describe("checkCode", () => {
  it("accepts ordinary code with top-level await and return", () => {
    expect(() => checkCode("const x = await sleep(0)\nreturn [1, 2].map((n) => n * 2)")).not.toThrow();
  });

  it("would read an escaped comparison wrongly: the escapes must go first", () => {
    // `a &lt; b` parses as `a & lt; b`, a silent change of meaning.
    expect(() => checkCode("a &lt; b")).not.toThrow();
  });

  it("names every refused construct with its line, also inside nested functions", () => {
    const err = refusal("const f = () => {\n  while (true) {}\n}\nimport('x')\nfor (;;) {}");
    expect(err.code).toBe("CODE_REFUSED");
    expect(err.problems.map((p) => [p.line, p.what])).toEqual([
      [2, "`while` loops are not allowed"],
      [4, "`import()` is not allowed"],
      [5, "`for` loops are not allowed"],
    ]);
  });

  it("refuses import in every form", () => {
    expect(refusal("import fs from 'node:fs'").problems[0].what).toMatch(/import` declarations/);
    expect(refusal("export const a = 1\nimport 'x'").problems.map((p) => p.line)).toContain(2);
    expect(refusal("return import.meta").problems[0].what).toMatch(/import\.meta/);
  });

  it("does not take new.target for import.meta", () => {
    expect(() => checkCode("function F() { return new.target }\nreturn 1")).not.toThrow();
  });

  it("reports a syntax error with its line and column", () => {
    const err = refusal("const a = 1\nconst = 2");
    expect(err.syntax).toBe(true);
    expect(err.problems[0].line).toBe(2);
    expect(err.problems[0].what).toMatch(/^SyntaxError: /);
  });
});

describe("replies", () => {
  it("keeps texts of up to 4000 characters as they are", () => {
    expect(cutText("x".repeat(4000))).toBe("x".repeat(4000));
  });

  it("cuts longer texts to 4000 characters, ending with an ellipsis", () => {
    const cut = cutText("y".repeat(10_000));
    expect(cut).toHaveLength(4000);
    expect(cut.endsWith("y…")).toBe(true);
  });

  it("counts characters, not UTF-16 units, and never splits a surrogate pair", () => {
    const text = "😀".repeat(4000);
    expect(cutText(text)).toBe(text);
    const cut = cutText("a" + "😀".repeat(4000));
    expect(Array.from(cut)).toHaveLength(4000);
    expect(cut).toBe("a" + "😀".repeat(3998) + "…");
  });

  it("keeps a character made of several code points whole", () => {
    const family = "👨‍👩‍👧"; // five code points
    const cut = cutText("a".repeat(3997) + family + "b".repeat(10));
    expect(cut).toBe("a".repeat(3997) + "…");
  });

  it("shows strings as they are and other values as JSON", () => {
    expect(valueText("plain")).toBe("plain");
    expect(valueText(42)).toBe("42");
    expect(valueText({ a: [1] })).toBe('{\n  "a": [\n    1\n  ]\n}');
  });

  it("makes an error one short line", () => {
    expect(errorText("boom\nat somewhere")).toBe("Error: boom");
    expect(errorText("RangeError: too deep")).toBe("RangeError: too deep");
    expect(Array.from(errorText("e".repeat(2000)))).toHaveLength(500);
  });
});
