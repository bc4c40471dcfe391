import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  definitionsToYaml,
  loadDefinitionFiles,
  mergeDefinitions,
  parseDefinitions,
  type JobDefinition,
} from "../src/definitions.js";
import { JobDefinitionError, type DefinitionProblem } from "../src/errors.js";

/** The problems thrown by `run`, which must throw a JobDefinitionError. */
function problemsOf(run: () => unknown): DefinitionProblem[] {
  try {
    run();
  } catch (err) {
    expect(err).toBeInstanceOf(JobDefinitionError);
    expect((err as JobDefinitionError).code).toBe("JOB_DEFINITION");
    return (err as JobDefinitionError).problems;
  }
  throw new Error("expected a JobDefinitionError");
}

async function problemsOfAsync(run: () => Promise<unknown>): Promise<DefinitionProblem[]> {
  const err = await run().then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(JobDefinitionError);
  return (err as JobDefinitionError).problems;
}

const example = `
- name: example
  topics: [hello, world]
  script: |-
    if (task.topic == "hello") qprint(\`Hello, \${task.content.name}\`)
    else if (task.topic == "world") qprint(\`Bye, \${task.content.name}\`)
`;

describe("parseDefinitions", () => {
  it("reads a list of jobs", () => {
    const defs = parseDefinitions(example, "jobs.yaml");
    expect(defs).toHaveLength(1);
    expect(defs[0]).toMatchObject({ name: "example", topics: ["hello", "world"], source: "jobs.yaml" });
    expect(defs[0].script).toContain('qprint(`Hello, ${task.content.name}`)');
    expect(defs[0].slack).toBeUndefined();
  });

  it("reads a single job mapping", () => {
    const defs = parseDefinitions("name: one\ntopics: [a]\nscript: return 1\n", "<upload>");
    expect(defs).toEqual([{ name: "one", topics: ["a"], script: "return 1", source: "<upload>" }]);
  });

  it("reads an empty text as no jobs", () => {
    expect(parseDefinitions("", "empty.yaml")).toEqual([]);
    expect(parseDefinitions("# nothing yet\n", "empty.yaml")).toEqual([]);
  });

  it("accepts top-level await and return in a script", () => {
    const defs = parseDefinitions("- name: a\n  topics: [t]\n  script: |\n    await sleep(0)\n    return 1\n", "f.yaml");
    expect(defs[0].script).toBe("await sleep(0)\nreturn 1\n");
  });

  it("reads slack options with code_injection false by default", () => {
    const defs = parseDefinitions("- name: bot\n  topics: [amuro]\n  script: return 1\n  slack:\n    token: ${SLACK_TOKEN}\n    app_token: xapp-1\n", "f.yaml");
    expect(defs[0].slack).toEqual({ token: "${SLACK_TOKEN}", app_token: "xapp-1", code_injection: false });
  });

  it("needs no script for a slack job with code_injection", () => {
    const defs = parseDefinitions("- name: bot\n  topics: [amuro]\n  slack: {token: xoxb-1, code_injection: true}\n", "f.yaml");
    expect(defs[0].script).toBeUndefined();
    expect(defs[0].slack?.code_injection).toBe(true);
  });

  it("reports a YAML syntax error with the YAML line", () => {
    const problems = problemsOf(() => parseDefinitions("- name: a\n  topics: [a, b\n  script: x\n", "bad.yaml"));
    expect(problems.length).toBeGreaterThan(0);
    expect(problems[0].file).toBe("bad.yaml");
    expect(problems[0].line).toBeGreaterThan(1);
    expect(problems[0].message).toMatch(/^YAML syntax error: /);
    expect(problems[0].message).not.toContain("\n");
  });

  it("reports a key given twice in one job as a YAML error", () => {
    const problems = problemsOf(() => parseDefinitions("- name: a\n  name: b\n  topics: [t]\n  script: x\n", "dup.yaml"));
    expect(problems[0]).toMatchObject({ file: "dup.yaml", line: 2 });
    expect(problems[0].message).toMatch(/unique/);
  });

  it("refuses several YAML documents in one text", () => {
    const problems = problemsOf(() => parseDefinitions("- name: a\n---\n- name: b\n", "docs.yaml"));
    expect(problems[0].message).toMatch(/one YAML document/);
  });

  it("refuses a text that is neither a list nor a mapping", () => {
    const problems = problemsOf(() => parseDefinitions("just words", "words.yaml"));
    expect(problems).toEqual([{ file: "words.yaml", message: expect.stringMatching(/list of jobs or a single job mapping/) }]);
  });

  it("refuses a list entry that is not a mapping, naming it by its position", () => {
    const problems = problemsOf(() => parseDefinitions("- name: a\n  topics: [t]\n  script: x\n- 42\n", "f.yaml"));
    expect(problems).toEqual([{ file: "f.yaml", job: "#2", message: expect.stringMatching(/must be a mapping/) }]);
  });

  it("refuses unknown fields, suggesting the near one", () => {
    const problems = problemsOf(() => parseDefinitions("- name: a\n  topic: [t]\n  script: x\n", "typo.yaml"));
    expect(problems).toContainEqual({
      file: "typo.yaml",
      job: "a",
      field: "topic",
      message: expect.stringMatching(/unknown field \(did you mean topics\?\)/),
    });
    expect(problems).toContainEqual(expect.objectContaining({ job: "a", field: "topics", message: expect.stringMatching(/required/) }));
  });

  it("refuses unknown fields inside slack", () => {
    const problems = problemsOf(() => parseDefinitions("- name: bot\n  topics: [u]\n  script: x\n  slack: {token: t, code_injektion: true}\n", "f.yaml"));
    expect(problems).toEqual([
      { file: "f.yaml", job: "bot", field: "slack.code_injektion", message: expect.stringMatching(/unknown field \(did you mean code_injection\?\)/) },
    ]);
  });

  it("requires a non-empty string name, calling the job by its position", () => {
    const problems = problemsOf(() =>
      parseDefinitions("- topics: [t]\n  script: x\n- name: ''\n  topics: [t]\n  script: x\n- name: 7\n  topics: [t]\n  script: x\n", "f.yaml"),
    );
    expect(problems).toEqual([
      { file: "f.yaml", job: "#1", field: "name", message: "is required" },
      { file: "f.yaml", job: "#2", field: "name", message: expect.stringMatching(/non-empty string, got an empty string/) },
      { file: "f.yaml", job: "#3", field: "name", message: expect.stringMatching(/non-empty string, got 7/) },
    ]);
  });

  it("requires topics as a non-empty list of non-empty strings", () => {
    const text = [
      "- {name: a, script: x}",
      "- {name: b, script: x, topics: hello}",
      "- {name: c, script: x, topics: []}",
      "- {name: d, script: x, topics: [ok, '', 3]}",
      "- {name: e, script: x, topics: [same, same]}",
    ].join("\n");
    const problems = problemsOf(() => parseDefinitions(text, "f.yaml"));
    expect(problems).toEqual([
      { file: "f.yaml", job: "a", field: "topics", message: expect.stringMatching(/is required/) },
      { file: "f.yaml", job: "b", field: "topics", message: expect.stringMatching(/must be a list of topic names, got the string "hello"/) },
      { file: "f.yaml", job: "c", field: "topics", message: "must not be empty" },
      { file: "f.yaml", job: "d", field: "topics[1]", message: expect.stringMatching(/non-empty string/) },
      { file: "f.yaml", job: "d", field: "topics[2]", message: expect.stringMatching(/non-empty string, got 3/) },
      { file: "f.yaml", job: "e", field: "topics[1]", message: "topic same is listed twice" },
    ]);
  });

  it("requires a string script unless slack.code_injection is true", () => {
    const text = [
      "- {name: a, topics: [t]}",
      "- {name: b, topics: [t], script: [1]}",
      "- {name: c, topics: [t], slack: {token: x}}",
      "- {name: d, topics: [t], slack: {token: x, code_injection: false}}",
    ].join("\n");
    const problems = problemsOf(() => parseDefinitions(text, "f.yaml"));
    expect(problems).toEqual([
      { file: "f.yaml", job: "a", field: "script", message: expect.stringMatching(/is required \(unless slack.code_injection is true\)/) },
      { file: "f.yaml", job: "b", field: "script", message: "must be a string, got a list" },
      { file: "f.yaml", job: "c", field: "script", message: expect.stringMatching(/is required/) },
      { file: "f.yaml", job: "d", field: "script", message: expect.stringMatching(/is required/) },
    ]);
  });

  it("checks the types of the slack options", () => {
    const text = [
      "- {name: a, topics: [t], script: x, slack: yes}",
      "- {name: b, topics: [t], script: x, slack: {}}",
      "- {name: c, topics: [t], script: x, slack: {token: 5, app_token: '', code_injection: 'yes'}}",
    ].join("\n");
    const problems = problemsOf(() => parseDefinitions(text, "f.yaml"));
    expect(problems).toEqual([
      { file: "f.yaml", job: "a", field: "slack", message: expect.stringMatching(/must be a mapping/) },
      { file: "f.yaml", job: "b", field: "slack.token", message: "is required when slack is given" },
      { file: "f.yaml", job: "c", field: "slack.token", message: expect.stringMatching(/non-empty string, got 5/) },
      { file: "f.yaml", job: "c", field: "slack.app_token", message: expect.stringMatching(/non-empty string/) },
      { file: "f.yaml", job: "c", field: "slack.code_injection", message: expect.stringMatching(/must be true or false, got the string "yes"/) },
    ]);
  });

  it("reports a script syntax error with the line and column inside the script", () => {
    const text = "- name: broken\n  topics: [t]\n  script: |\n    const a = 1\n    if (a > 0 {\n      qprint(a)\n    }\n";
    const problems = problemsOf(() => parseDefinitions(text, "broken.yaml"));
    expect(problems).toEqual([
      { file: "broken.yaml", job: "broken", field: "script", line: 2, column: 11, message: expect.stringMatching(/^syntax error: Unexpected token$/) },
    ]);
    const err = (() => {
      try {
        parseDefinitions(text, "broken.yaml");
      } catch (e) {
        return e as JobDefinitionError;
      }
    })();
    expect(err?.message).toBe("broken.yaml: job broken: script: line 2:11: syntax error: Unexpected token");
  });

  it("refuses a script that declares a builtin again with let, const or class", () => {
    const text = "- name: shadow\n  topics: [t]\n  script: |\n    qprint(1)\n    const { a, task } = {}\n";
    const problems = problemsOf(() => parseDefinitions(text, "f.yaml"));
    expect(problems).toEqual([
      { file: "f.yaml", job: "shadow", field: "script", line: 2, column: 12, message: expect.stringMatching(/'task' is a builtin/) },
    ]);
    expect(parseDefinitions("- {name: ok, topics: [t], script: 'var task2 = 1; { let task = 2 }'}", "f.yaml")).toHaveLength(1);
  });

  it("refuses names given twice in one text", () => {
    const text = "- {name: a, topics: [t], script: x}\n- {name: b, topics: [t], script: x}\n- {name: a, topics: [u], script: y}\n";
    const problems = problemsOf(() => parseDefinitions(text, "f.yaml"));
    expect(problems).toEqual([{ file: "f.yaml", job: "a", field: "name", message: "duplicate name: job a is also job #1 of this file" }]);
  });

  it("collects every problem of every job, not just the first", () => {
    const text = [
      "- {name: a, topics: [], script: 'x(', color: red}",
      "- {name: b, topics: [t], script: ok}",
      "- {topics: [t]}",
    ].join("\n");
    const problems = problemsOf(() => parseDefinitions(text, "many.yaml"));
    expect(problems.map((p) => `${p.job} ${p.field}`)).toEqual(["a color", "a topics", "a script", "#3 name", "#3 script"]);
  });
});

describe("loadDefinitionFiles", () => {
  let dir: string;
  const good = (name: string, topic = "t") => `- name: ${name}\n  topics: [${topic}]\n  script: qprint("${name}")\n`;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), "jobshell-definitions-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function folder(name: string, files: Record<string, string>): Promise<string> {
    const at = path.join(dir, name);
    await mkdir(at, { recursive: true });
    for (const [file, text] of Object.entries(files)) await writeFile(path.join(at, file), text);
    return at;
  }

  it("loads the *.yaml and *.yml files of a folder in name order, ignoring others and sub-folders", async () => {
    const at = await folder("ok", { "b.yml": good("second"), "a.yaml": good("first"), "notes.txt": "not yaml", "c.YAML": good("third") });
    await folder("ok/nested", { "x.yaml": good("nested") });
    const defs = await loadDefinitionFiles([at]);
    expect(defs.map((d) => d.name)).toEqual(["first", "second", "third"]);
    expect(defs[0].source).toBe(path.join(at, "a.yaml"));
  });

  it("loads files and folders given together, a file named twice once", async () => {
    const at = await folder("mixed", { "a.yaml": good("a"), "b.yaml": good("b") });
    const defs = await loadDefinitionFiles([path.join(at, "b.yaml"), at]);
    expect(defs.map((d) => d.name)).toEqual(["b", "a"]);
  });

  it("reports a missing path as a problem", async () => {
    const missing = path.join(dir, "nope.yaml");
    const problems = await problemsOfAsync(() => loadDefinitionFiles([missing]));
    expect(problems).toEqual([{ file: missing, message: "no such file or folder" }]);
  });

  it("refuses a name defined in two files, naming both", async () => {
    const at = await folder("dups", { "one.yaml": good("same"), "two.yaml": good("same", "u") });
    const problems = await problemsOfAsync(() => loadDefinitionFiles([at]));
    expect(problems).toEqual([
      {
        file: path.join(at, "two.yaml"),
        job: "same",
        field: "name",
        message: `duplicate name: job same is also defined in ${path.join(at, "one.yaml")}`,
      },
    ]);
  });

  it("collects the problems of every file and loads nothing when any is wrong", async () => {
    const at = await folder("bad", {
      "1-good.yaml": good("fine"),
      "2-syntax.yaml": "- name: x\n  topics: [t\n",
      "3-script.yaml": "- name: s\n  topics: [t]\n  script: 'return )'\n",
    });
    const missing = path.join(dir, "absent");
    const problems = await problemsOfAsync(() => loadDefinitionFiles([at, missing]));
    expect(problems.map((p) => path.basename(p.file))).toEqual(["absent", "2-syntax.yaml", "3-script.yaml"]);
    expect(problems[2]).toMatchObject({ job: "s", field: "script", line: 1, column: 8 });
  });

  it("loads an empty folder as no jobs", async () => {
    const at = await folder("empty", {});
    expect(await loadDefinitionFiles([at])).toEqual([]);
  });
});

describe("mergeDefinitions", () => {
  const def = (name: string, source: string, topic = "t"): JobDefinition => ({ name, topics: [topic], script: "return 1", source });

  it("adds new jobs after the existing ones", () => {
    const merged = mergeDefinitions([def("a", "one.yaml")], [def("b", "<upload>")], false);
    expect(merged.map((d) => d.name)).toEqual(["a", "b"]);
  });

  it("refuses a name that exists already unless asked to replace, and changes nothing", () => {
    const existing = [def("a", "one.yaml"), def("b", "one.yaml")];
    const problems = problemsOf(() => mergeDefinitions(existing, [def("c", "<upload>"), def("a", "<upload>", "u")], false));
    expect(problems).toEqual([
      { file: "<upload>", job: "a", field: "name", message: "job a already exists, different (from one.yaml); to replace it, pass replace: true (replace=True in the shell, ?replace=true on POST /jobs)" },
    ]);
    expect(existing.map((d) => d.name)).toEqual(["a", "b"]);
  });

  it("replaces by name in place when asked to", () => {
    const existing = [def("a", "one.yaml"), def("b", "one.yaml")];
    const merged = mergeDefinitions(existing, [def("a", "<upload>", "u"), def("c", "<upload>")], true);
    expect(merged.map((d) => `${d.name}:${d.topics[0]}:${d.source}`)).toEqual(["a:u:<upload>", "b:t:one.yaml", "c:t:<upload>"]);
    expect(existing[0].source).toBe("one.yaml");
  });

  it("refuses the same name twice in what is added", () => {
    const problems = problemsOf(() => mergeDefinitions([], [def("a", "x.yaml"), def("a", "y.yaml")], true));
    expect(problems).toEqual([{ file: "y.yaml", job: "a", field: "name", message: "duplicate name: job a is given twice" }]);
  });
});

describe("definitionsToYaml", () => {
  it("writes YAML that reads back to the same definitions, with tokens masked", () => {
    const defs = parseDefinitions(
      example + "- name: bot\n  topics: [amuro]\n  slack: {token: xoxb-secret, app_token: '${APP}', code_injection: true}\n",
      "<upload>",
    );
    const text = definitionsToYaml(defs);
    expect(text).not.toContain("xoxb-secret");
    expect(text).toContain("${APP}");
    const again = parseDefinitions(definitionsToYaml(defs, { secrets: "keep" }), "<upload>");
    expect(again).toEqual(defs);
  });
});
