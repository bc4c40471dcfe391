// The names a shell block can use: the builtins of job scripts (from the same list, so the
// two never drift apart), the shell's commands, and the source's Python-isms (`dict`, `print`,
// `True`/`False`/`None`, keyword arguments).
import { AsyncLocalStorage } from "node:async_hooks";
import { Console } from "node:console";
import { createRequire } from "node:module";
import path from "node:path";
import { inspect, types } from "node:util";
import vm from "node:vm";
import { json, sharedBuiltinNames, TaskLogger, type LogSink } from "../builtins.js";
import { callout, type CalloutRequest } from "../callout.js";
import { describe } from "../describe.js";
import { internals } from "../internals.js";
import type { JobShell } from "../jobshell.js";
import { isMU, isPlainObject, MU } from "../mu.js";
import { exitStatus, type ShellCommands } from "./commands.js";
import { keywords, namedParameters, recordArguments, splitArguments } from "./keywords.js";
import { showValue, type Colors, type ShellOutput } from "./output.js";
import { onAbort } from "../abort.js";
import { sameJob } from "../definitions.js";
import { unhandledTopic } from "../registry.js";
import { transactionEventsOff } from "../transaction.js";

/** The global function the transform wraps keyword arguments in. */
export const keywordsFunction = "__keywords__";

/** The reason a block's wait is abandoned when the user presses Ctrl-C. */
export class BlockCancelled extends Error {
  readonly code = "CANCELLED";
  constructor() {
    super("cancelled");
    this.name = "BlockCancelled";
  }
}

/**
 * The signal of the block whose code runs, also in what it runs later (after an await, in a timer).
 * Ctrl-C aborts it: the shell stops waiting, and the rest of that block must not go on acting.
 */
export const runningBlock = new AsyncLocalStorage<AbortSignal>();

function interrupted(): boolean {
  return runningBlock.getStore()?.aborted === true;
}

/**
 * A builtin that ends what is left of an interrupted block instead of acting or printing for it.
 * The promise it returns says "did you forget await?" when used as its value (see awaitablePrototype).
 */
function guarded<F extends (...args: any[]) => unknown>(name: string, fn: F, realmPromise: PromiseConstructor): F {
  const prototype = awaitablePrototype(name, realmPromise);
  // Own properties too: the text a command shows when typed without parentheses.
  return Object.assign((...args: unknown[]) => {
    if (interrupted()) throw new BlockCancelled();
    const result = fn(...args);
    // The builtins' promises are their own, made for this call: changed in place, not wrapped.
    if (result instanceof Promise) Object.setPrototypeOf(result, prototype);
    return result;
  }, fn) as unknown as F;
}

/** The builtin that returned a promise, by the prototype it was given (see forgotAwait). */
const builtinPrototypes = new WeakMap<object, string>();

/** What a promise and every object have: the rest is a field of the value it will resolve with. */
const promiseMembers = new Set([...Object.getOwnPropertyNames(Promise.prototype), ...Object.getOwnPropertyNames(Object.prototype)]);

/**
 * The prototype of a builtin's promises, one per builtin and shell context, so that a call costs no
 * wrapper. Still a promise (to util.inspect and instanceof), but:
 * - its constructor is the Promise of the shell's context, so that `await` and `Promise.all` there
 *   take it as one of their own, where a promise of this realm would first be adopted by a new one;
 * - a lookup of anything a promise does not have throws "did you forget await?" (`record(id).status`),
 *   where a plain promise would give undefined in silence. The Proxy that throws it comes after the
 *   methods, so that the lookups of `await` and `Promise.all` go through no trap.
 */
function awaitablePrototype(name: string, realmPromise: PromiseConstructor): object {
  const forgotAwait = new Proxy(Object.create(Promise.prototype) as object, {
    get(target, key, receiver) {
      if (typeof key === "symbol" || promiseMembers.has(key)) return Reflect.get(target, key, receiver);
      throw new TypeError(`${name}() returns a promise: did you forget await? (await ${name}(...)).${key}`);
    },
  });
  const own = (value: unknown) => ({ value, writable: true, configurable: true });
  const prototype = Object.create(forgotAwait, {
    constructor: own(realmPromise),
    then: own(Promise.prototype.then),
    catch: own(Promise.prototype.catch),
    finally: own(Promise.prototype.finally),
  }) as object;
  builtinPrototypes.set(prototype, name);
  return prototype;
}

/** For a builtin's promise shown as a block's value: the line that says how to get its value. */
export function forgotAwait(value: unknown): string | undefined {
  const name = types.isPromise(value) ? builtinPrototypes.get(Object.getPrototypeOf(value)) : undefined;
  return name && `${name}() returns a promise: did you forget await? (await ${name}(...) gives its value)`;
}

/** `exit()` / `quit()` called inside a block: the shell ends once the block has unwound. */
export class ShellExit {
  constructor(readonly code: number) {}
}

export interface ShellContextOptions {
  js: JobShell;
  out: ShellOutput;
  commands: ShellCommands;
  colors: Colors;
  /** a command called inside a block (`debug()`) that the block must let finish before it ends */
  track(done: Promise<unknown>): void;
  /** the waitfor() calls not ended yet, for the shell's progress line (on a terminal) */
  progress?: { waiting: number };
}

/** Every name in scope of a job script: the shared builtins, plus `task` and `logger`. */
type ScriptBuiltinName = (typeof sharedBuiltinNames)[number] | "task" | "logger";

/** Host values a block may use besides the builtins (a new context has only the language's own). */
const hostGlobals = [
  "setTimeout", "clearTimeout", "setInterval", "clearInterval", "setImmediate", "clearImmediate", "queueMicrotask",
  "structuredClone", "URL", "URLSearchParams", "TextEncoder", "TextDecoder", "Buffer", "fetch", "AbortController",
  "AbortSignal", "performance", "process", "crypto", "atob", "btoa",
] as const;

/** The builtins; `realmPromise`, the Promise of the context they are for (see awaitablePrototype). */
export function shellBuiltins(options: ShellContextOptions, realmPromise: PromiseConstructor = Promise): Record<string, unknown> {
  const { js, out, commands, colors } = options;

  const print = (...args: unknown[]) => {
    const { positional, named } = splitArguments(args);
    for (const key of Object.keys(named)) {
      if (key !== "sep" && key !== "end") throw new TypeError(`print() got an unexpected keyword argument '${key}' (it takes sep, end)`);
    }
    const sep = named.sep === undefined || named.sep === null ? " " : String(named.sep);
    const end = named.end === undefined || named.end === null ? "\n" : String(named.end);
    out.write(positional.map((v) => (typeof v === "string" ? v : showValue(v, colors))).join(sep) + end);
  };

  const sleep = (seconds: unknown) =>
    new Promise<void>((resolve, reject) => {
      if (typeof seconds !== "number" || !(seconds >= 0)) throw new TypeError(`sleep(): seconds must be a number, got ${describe(seconds)}`);
      const signal = runningBlock.getStore();
      const offAbort = signal && onAbort(signal, () => {
        clearTimeout(timer);
        reject(signal.reason);
      });
      const timer = setTimeout(() => {
        offAbort?.();
        resolve();
      }, seconds * 1000);
    });

  const { progress } = options;
  const waitEnded = () => void progress!.waiting--;

  const logSink: LogSink = ({ level, message }) => {
    if (interrupted()) throw new BlockCancelled();
    out.line(`${level.toUpperCase()} ${message}`);
  };
  // A topic no job handles is said at once: the task is issued all the same, as the source does.
  // Whether one does is known at the call (the common case: no promise more); if none does, the jobs
  // are looked at again once the task is queued.
  const issueAs = (name: string) =>
    namedParameters(name, ["topic", "content", "expire"], (topic, content, expire) => {
      const issued = js.task(topic, content, expire);
      if (typeof topic !== "string" || internals(js).handlesTopic(topic)) return issued;
      return issued.then((taskid) => {
        const unhandled = unhandledTopic(js.jobs(), topic);
        if (unhandled && !interrupted()) out.line(colors.yellow(`warning: ${unhandled}`));
        return taskid;
      });
    });

  const script: Record<ScriptBuiltinName, unknown> = {
    task: issueAs("task"),
    qprint: print,
    logger: new TaskLogger(logSink),
    MU: (...args: unknown[]) => {
      if (args.length === 1 && isMU(args[0])) return args[0];
      return MU(recordArguments("MU", args));
    },
    json: {
      loads: namedParameters("json.loads", ["text"], (text) => json.loads(text)),
      dumps: namedParameters("json.dumps", ["value", "indent"], (value, indent) => json.dumps(value, indent)),
    },
    sleep: namedParameters("sleep", ["seconds"], sleep),
    issue: issueAs("issue"),
    waitfor: namedParameters("waitfor", ["taskid", "timeout"], (taskid, timeout) => {
      // `waitfor(id, {timeout: 5})` too, as job scripts and the library take it.
      const seconds = isPlainObject(timeout) ? timeout.timeout : timeout;
      const waiting = js.waitfor(taskid, { timeout: seconds ?? 60, signal: runningBlock.getStore() });
      if (progress) {
        progress.waiting++;
        waiting.then(waitEnded, waitEnded);
      }
      return waiting;
    }),
    callout: (...args: unknown[]) =>
      callout(recordArguments("callout", args) as CalloutRequest, internals(js).params.apiUrl, process.env.JOBSHELL_API_TOKEN),
    transaction: namedParameters("transaction", ["name", "data"], (name, data) => js.transaction(name, data)),
  };

  // Jobs just added (or changed) on Transaction.* topics that no transaction will reach are said at once.
  const adding = async (add: () => Promise<string[]>) => {
    const before = new Map(js.jobs().map((d) => [d.name, d]));
    const names = await add();
    const added = js.jobs().filter((d) => names.includes(d.name) && !(before.has(d.name) && sameJob(before.get(d.name)!, d)));
    const notice = transactionEventsOff(added, internals(js).params.jobTransactionEvent);
    if (notice && !interrupted()) out.line(colors.yellow(`warning: ${notice}`));
    return names;
  };

  // A command called inside a block prints when it has finished, before the block ends.
  const command = (name: string, run: () => void | Promise<void>) =>
    Object.assign(
      () => {
        const done = run();
        if (done) options.track(done);
      },
      // The name typed without parentheses says how to call it.
      { [inspect.custom]: () => `Type ${name}() to run it` },
    );
  const exit = Object.assign(
    namedParameters("exit", ["code"], (code) => {
      throw new ShellExit(exitStatus(code));
    }),
    // Typing `exit` without the parentheses, as in Python.
    { [inspect.custom]: () => "Use exit() or Ctrl-D (i.e. EOF) to exit" },
  );

  const builtins: Record<string, unknown> = {
    ...script,
    dict: (...args: unknown[]) => recordArguments("dict", args),
    print,
    True: true,
    False: false,
    None: null,
    debug: command("debug", () => commands.debug()),
    help: command("help", () => commands.help()),
    commands: command("commands", () => commands.commands()),
    jobs: command("jobs", () => commands.jobs()),
    stats: Object.assign(() => commands.stats(), { [inspect.custom]: () => "Type stats() to show them" }),
    exit,
    quit: exit,
    upload: namedParameters("upload", ["yaml", "replace"], (yaml, replace) => adding(() => js.upload(yaml, { replace: Boolean(replace) }))),
    load: namedParameters("load", ["path", "replace"], (path, replace) => adding(() => js.load(path, { replace: Boolean(replace) }))),
    record: namedParameters("record", ["taskid"], (taskid) => js.record(taskid)),
  };
  for (const [name, value] of Object.entries(builtins)) {
    if (typeof value === "function") builtins[name] = guarded(name, value as (...args: unknown[]) => unknown, realmPromise);
  }
  return builtins;
}

/** The callees whose `name=value` arguments are keyword arguments (see transform.ts). */
export function keywordCallees(builtins: Record<string, unknown>): Set<string> {
  const names = new Set<string>();
  for (const [name, value] of Object.entries(builtins)) {
    if (typeof value === "function") names.add(name);
    else if (value && typeof value === "object" && !isMU(value)) {
      for (const [member, fn] of Object.entries(value)) if (typeof fn === "function") names.add(`${name}.${member}`);
    }
  }
  return names;
}

/** A fresh context holding the builtins, a console that prints through the shell, and the host's timers and web APIs. */
export function createShellContext(options: ShellContextOptions): { context: vm.Context; keywordCallees: Set<string> } {
  // console.log of an interrupted block prints nothing (a throw here would not reach it).
  const sink = options.out.printer(() => !interrupted());
  const sandbox: Record<string, unknown> = {
    console: new Console({ stdout: sink, stderr: sink, colorMode: options.colors.isColorSupported }),
    // Node's modules and packages, resolved from the working directory.
    require: createRequire(path.join(process.cwd(), "<shell>")),
  };
  for (const name of hostGlobals) {
    if (name in globalThis) sandbox[name] = (globalThis as Record<string, unknown>)[name];
  }
  const context = vm.createContext(sandbox, { name: "jobshell" });
  // The builtins come once the context is there: their promises take its Promise as constructor.
  const builtins = shellBuiltins(options, vm.runInContext("Promise", context) as PromiseConstructor);
  Object.assign(sandbox, builtins);
  Object.defineProperty(sandbox, keywordsFunction, { value: keywords, enumerable: false, writable: false });
  return { context, keywordCallees: keywordCallees(builtins) };
}
