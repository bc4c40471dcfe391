// Every TypeScript example of the README and of docs/ compiles against the built types, as a user's
// module importing "jobshell" would, and every link between the pages leads to a page and heading that
// exist: the documentation cannot drift from the API, or from itself, unnoticed.
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

const pages = ["README.md", ...readdirSync(join(root, "docs")).filter((f) => f.endsWith(".md")).map((f) => `docs/${f}`)];

function documentedExamples(): Example[] {
  return pages.flatMap((file) => typescriptBlocks(file, readFileSync(join(root, file), "utf8")));
}

/** A page's text outside its fenced blocks. */
function prose(markdown: string): string {
  return markdown.replace(/^\s*(`{3,}|~{3,})[^]*?^\s*\1\s*$/gm, "");
}

/** The anchor GitHub gives a heading. */
function anchor(heading: string): string {
  return heading.trim().toLowerCase().replace(/[^\w\- ]/g, "").replace(/ /g, "-");
}

describe("the documentation", () => {
  it("has TypeScript examples: every block tagged ts or typescript, in README.md and docs/*.md", () => {
    const examples = documentedExamples();
    expect(examples.length).toBeGreaterThanOrEqual(4);
    expect(examples.filter((e) => e.file === "README.md").length).toBeGreaterThanOrEqual(2);
  });

  it("has examples that all compile against the built types of the package", () => {
    expect(checkExamples(documentedExamples())).toEqual([]);
  });

  it("links only to pages and headings that exist", () => {
    const headings = new Map(
      pages.map((page) => [page, new Set([...prose(readFileSync(join(root, page), "utf8")).matchAll(/^#+ (.*)$/gm)].map((m) => anchor(m[1])))]),
    );
    const broken: string[] = [];
    for (const page of pages) {
      for (const [, target] of prose(readFileSync(join(root, page), "utf8")).matchAll(/\]\(([^)\s]+)\)/g)) {
        if (/^[a-z]+:/.test(target)) continue;
        const [path, hash] = target.split("#");
        let file = path ? join(page, "..", path) : page;
        if (path.endsWith("/")) file = join(file, "README.md");
        const known = headings.get(file);
        if (!known || (hash && !known.has(hash))) broken.push(`${page}: ${target}`);
      }
    }
    expect(broken).toEqual([]);
  });

  it("reports a broken example with its file, block and line", () => {
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
