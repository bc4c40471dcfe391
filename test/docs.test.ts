// Every TypeScript example of the README and of docs/ compiles against the built types, as a user's
// module importing "jobshell" would: the documentation cannot drift from the API unnoticed.
import { mkdtempSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import ts from "typescript";
import { afterAll, describe, expect, it } from "vitest";

const root = resolve(import.meta.dirname, "..");

interface Example {
  /** the Markdown file, relative to the repository */
  file: string;
  /** the example's number among the TypeScript blocks of its file, from 1 */
  block: number;
  /** the line of the opening fence in the Markdown file, from 1 */
  line: number;
  code: string;
}

/** The fenced blocks tagged `ts` or `typescript` of a Markdown text. */
export function typescriptBlocks(file: string, markdown: string): Example[] {
  const examples: Example[] = [];
  const lines = markdown.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const open = /^\s*(`{3,}|~{3,})\s*([^\s`]*)/.exec(lines[i]);
    if (!open) continue;
    const [, fence, tag] = open;
    const start = i;
    const body: string[] = [];
    for (i++; i < lines.length && !(lines[i].trim().startsWith(fence) && lines[i].trim().replace(/[`~]/g, "") === ""); i++) {
      body.push(lines[i]);
    }
    if (tag === "ts" || tag === "typescript") {
      examples.push({ file, block: examples.length + 1, line: start + 1, code: body.join("\n") + "\n" });
    }
  }
  return examples;
}

const scratch: string[] = [];
afterAll(() => {
  for (const dir of scratch) rmSync(dir, { recursive: true, force: true });
});

/** Type-check each example as a module of its own; one line per diagnostic, empty when all compile. */
export function checkExamples(examples: Example[]): string[] {
  const dir = mkdtempSync(join(tmpdir(), "jobshell-docs-"));
  scratch.push(dir);
  writeFileSync(join(dir, "package.json"), JSON.stringify({ name: "docs-examples", private: true, type: "module" }));
  mkdirSync(join(dir, "node_modules"));
  symlinkSync(root, join(dir, "node_modules", "jobshell"), "dir");
  const byPath = new Map<string, Example>();
  examples.forEach((example, i) => {
    const path = join(dir, `example-${i + 1}.ts`);
    writeFileSync(path, example.code);
    byPath.set(path, example);
  });
  const program = ts.createProgram([...byPath.keys()], {
    strict: true,
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    noEmit: true,
    types: ["node"],
    typeRoots: [join(root, "node_modules", "@types")],
    skipLibCheck: true,
  });
  return ts.getPreEmitDiagnostics(program).map((d) => {
    const message = ts.flattenDiagnosticMessageText(d.messageText, "\n");
    const example = d.file && byPath.get(d.file.fileName);
    if (!d.file || !example) return `${d.file?.fileName ?? "(options)"}: TS${d.code}: ${message}`;
    const { line, character } = d.file.getLineAndCharacterOfPosition(d.start ?? 0);
    return `${example.file}:${example.line + 1 + line}: block ${example.block}, line ${line + 1}:${character + 1}: TS${d.code}: ${message}`;
  });
}

function documentedExamples(): Example[] {
  const files = ["README.md", ...readdirSync(join(root, "docs")).filter((f) => f.endsWith(".md")).map((f) => `docs/${f}`)];
  return files.flatMap((file) => typescriptBlocks(file, readFileSync(join(root, file), "utf8")));
}

describe("the documentation's TypeScript examples", () => {
  it("are found: every block tagged ts or typescript, in README.md and docs/*.md", () => {
    const examples = documentedExamples();
    expect(examples.length).toBeGreaterThanOrEqual(4);
    expect(examples.filter((e) => e.file === "README.md").length).toBeGreaterThanOrEqual(2);
  });

  it("all compile against the built types of the package", () => {
    expect(checkExamples(documentedExamples())).toEqual([]);
  });

  it("a broken example is reported with its file, block and line", () => {
    const markdown = [
      "# a page",
      "",
      "```ts",
      'import { open } from "jobshell";',
      "const js = await open({ jobQueueSize: 10 });",
      "```",
      "",
      "```ts",
      'import { open } from "jobshell";',
      "const js = await open({ redisUrl: 6379 });",
      "await js.noSuchMethod();",
      "```",
    ].join("\n");
    const problems = checkExamples(typescriptBlocks("broken.md", markdown));
    expect(problems).toHaveLength(2);
    expect(problems[0]).toMatch(/^broken\.md:10: block 2, line 2:\d+: TS2322: /);
    expect(problems[1]).toMatch(/^broken\.md:11: block 2, line 3:\d+: TS2339: .*noSuchMethod/);
  });
});
