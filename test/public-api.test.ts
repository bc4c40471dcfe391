// The published types (dist/*.d.ts, built by `npm run build`) hold the library's API and nothing of
// its inside: what JobShell and the package's entry export is exactly what the README documents.
import { existsSync, readFileSync } from "node:fs";
import ts from "typescript";
import { describe, expect, it } from "vitest";

function declarations(file: string): ts.SourceFile {
  if (!existsSync(file)) throw new Error(`${file} is missing: run npm run build first`);
  return ts.createSourceFile(file, readFileSync(file, "utf8"), ts.ScriptTarget.Latest, true);
}

/** The names of JobShell's members a user can reach (ES private fields aside). */
function jobShellMembers(): string[] {
  const source = declarations("dist/jobshell.d.ts");
  const jobShell = source.statements.find((s): s is ts.ClassDeclaration => ts.isClassDeclaration(s) && s.name?.text === "JobShell");
  if (!jobShell) throw new Error("no class JobShell in dist/jobshell.d.ts");
  return jobShell.members
    .filter((m) => !(m.name && ts.isPrivateIdentifier(m.name)))
    .filter((m) => !ts.getModifiers(m as ts.HasModifiers)?.some((k) => k.kind === ts.SyntaxKind.PrivateKeyword || k.kind === ts.SyntaxKind.ProtectedKeyword))
    .map((m) => (ts.isConstructorDeclaration(m) ? "constructor" : m.name!.getText(source)));
}

function packageExports(): string[] {
  const source = declarations("dist/index.d.ts");
  return source.statements.flatMap((s) =>
    ts.isExportDeclaration(s) && s.exportClause && ts.isNamedExports(s.exportClause) ? s.exportClause.elements.map((e) => e.name.text) : [],
  );
}

describe("the published types", () => {
  it("JobShell offers the library's API and nothing of its inside", () => {
    const members = jobShellMembers();
    expect(new Set(members)).toEqual(
      new Set(["mode", "location", "task", "waitfor", "record", "transaction", "tasks", "onTask", "onDebug", "upload", "load", "jobs", "stats", "close"]),
    );
    for (const inside of ["constructor", "backend", "params", "options", "metrics", "issued", "trackIssued", "shared", "taskForJob", "refreshJobs", "startWorker", "startWatchingJobs", "removeJob", "hasWorker", "transactions", "recordWhenEnded"]) {
      expect(members, inside).not.toContain(inside);
    }
  });

  it("open()'s options leave out what only the command line passes", () => {
    const text = readFileSync("dist/jobshell.d.ts", "utf8");
    const options = /export interface OpenOptions[^{]*\{([^}]*)\}/.exec(text)?.[1] ?? "";
    expect(options).toContain("backend?: Backend;");
    expect(options).not.toMatch(/\bparams\?:/);
  });

  it("the package's entry exports open(), its types, MU and the errors, and no internals", () => {
    const names = packageExports();
    for (const name of ["open", "JobShell", "OpenOptions", "Stats", "RecordMU", "MU", "isMU", "JobshellError", "QueueFullError", "TimeoutError", "UnknownTaskError", "JobDefinitionError", "ParameterError", "ConnectionError", "ClosedError", "IllegalTransitionError", "Backend", "RecordQuery", "RecordPage", "TaskEvent"]) {
      expect(names, name).toContain(name);
    }
    for (const name of ["recordMU", "DebugSubscription", "paramSpecs", "resolveParams", "Params", "internals", "JobShellInternals", "errorReplies", "serve", "HttpError"]) {
      expect(names, name).not.toContain(name);
    }
  });

  it("a program that reaches into JobShell's inside does not compile against the published types", () => {
    const program = ts.createProgram({
      rootNames: ["user.ts"],
      options: { strict: true, noEmit: true, module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext, target: ts.ScriptTarget.ES2022, types: [], skipLibCheck: true },
      host: userHost(`
        import { open } from "./dist/index.js";
        const js = await open();
        const stop = await js.onDebug((line: string) => console.log(line));
        await stop();
        js.backend; js.params; js.metrics; js.trackIssued();
      `),
    });
    const errors = ts.getPreEmitDiagnostics(program).filter((d) => d.file?.fileName === "user.ts");
    const missing = errors.map((d) => /Property '(\w+)' does not exist/.exec(ts.flattenDiagnosticMessageText(d.messageText, "\n"))?.[1]);
    expect(missing).toEqual(["backend", "params", "metrics", "trackIssued"]);
  });
});

/** A compiler host that reads the real files and one user file from memory. */
function userHost(text: string): ts.CompilerHost {
  const host = ts.createCompilerHost({});
  const getSourceFile = host.getSourceFile;
  host.getSourceFile = (name, version, ...rest) =>
    name === "user.ts" ? ts.createSourceFile(name, text, version) : getSourceFile.call(host, name, version, ...rest);
  const fileExists = host.fileExists;
  host.fileExists = (name) => name === "user.ts" || fileExists.call(host, name);
  return host;
}
