// Injected code runs in a V8 context of its own, so that its time limit can interrupt it: code that
// never yields (a loop built with `Function`, an endless chain of `await`s on resolved promises)
// would otherwise hold the whole process, bot included, for ever. The context keeps its own
// microtask queue (`microtaskMode: "afterEvaluate"`), which runs only inside vm calls that carry a
// timeout: the first run, and a "drain" each time a builtin settles a promise the code awaits.
// This bounds the time; it is not a security boundary (the builtins lead back to this process).
import vm from "node:vm";
import type { ScriptBuiltins, SharedBuiltins } from "../builtins.js";
import { ScriptTimeoutError } from "../errors.js";
import { isMU } from "../mu.js";
import { scriptHeader, scriptPosition } from "../script.js";
import type { Transaction, TransactionStatus } from "../transaction.js";

/** The code is wrapped as a job script is (so line numbers are its own), then called with the builtins. */
const trailer = `\n}).apply(undefined, globalThis[Symbol.for("jobshell.args")])`;

/**
 * Run `code` (the body of an async function) with the job builtins; reject with ScriptTimeoutError
 * once `seconds` have passed, whatever the code is doing. Errors come back as errors of this realm
 * with the code's line:col in their message.
 */
export function runInOwnContext(name: string, code: string, builtins: ScriptBuiltins, seconds: number): Promise<unknown> {
  const deadline = performance.now() + seconds * 1000;
  const remaining = () => Math.max(1, Math.ceil(deadline - performance.now()));
  const filename = `slack:${name}`;
  const context = vm.createContext({}, { name: filename, microtaskMode: "afterEvaluate" });
  // V8 gives every context a console that prints nowhere (only to an inspector): none, as the
  // documentation says, so that console.log fails aloud rather than doing nothing.
  vm.runInContext("delete globalThis.console", context);
  const drainer = new vm.Script("undefined");
  const ContextPromise = vm.runInContext("Promise", context) as PromiseConstructor;

  return new Promise<unknown>((resolve, reject) => {
    let over = false;
    const sleeping = new Set<NodeJS.Timeout>();
    const end = (settle: () => void) => {
      if (over) return;
      over = true;
      clearTimeout(timer);
      // Code that is cut off leaves no timers behind to keep the process up.
      for (const t of sleeping) clearTimeout(t);
      settle();
    };
    const timer = setTimeout(() => end(() => reject(new ScriptTimeoutError(seconds))), remaining());
    /** Run what the code queued; the watchdog ends it at the deadline. */
    const drain = () => {
      if (over) return;
      try {
        drainer.runInContext(context, { timeout: remaining() });
      } catch (err) {
        end(() => reject(fromContext(err, filename, seconds)));
      }
    };
    /** An asynchronous builtin as the code sees it: it returns a promise of the context and drains after settling it. */
    const bridge = <A extends unknown[]>(fn: (...args: A) => unknown) =>
      (...args: A): Promise<unknown> =>
        new ContextPromise((settleOk, settleErr) => {
          Promise.resolve()
            .then(() => fn(...(args.map(toThisRealm) as A)))
            .then(
              (value) => {
                settleOk(value);
                drain();
              },
              (err) => {
                settleErr(err);
                drain();
              },
            );
        });
    const shared: SharedBuiltins = {
      qprint: builtins.qprint,
      MU: ((data?: object | null) => builtins.MU(toThisRealm(data) as object | null | undefined)) as SharedBuiltins["MU"],
      json: builtins.json,
      sleep: (seconds: number) =>
        new ContextPromise<void>((wake) => {
          const t = setTimeout(() => {
            sleeping.delete(t);
            wake();
            drain();
          }, seconds * 1000);
          sleeping.add(t);
        }),
      issue: bridge(builtins.issue) as SharedBuiltins["issue"],
      waitfor: bridge(builtins.waitfor) as SharedBuiltins["waitfor"],
      callout: bridge(builtins.callout) as SharedBuiltins["callout"],
    };
    const { transaction } = builtins;
    if (transaction) {
      // The transaction as the code sees it: its one asynchronous method goes through the bridge too.
      const inContext = (tx: Transaction) =>
        ({
          get xid() { return tx.xid; },
          get xname() { return tx.xname; },
          get status() { return tx.status; },
          get previousStatus() { return tx.previousStatus; },
          get data() { return tx.data; },
          get next() { return tx.next; },
          to: bridge((status: TransactionStatus, data?: Record<string, unknown>) => tx.to(status, data)),
          event: () => tx.event(),
          toJSON: () => tx.toJSON(),
        }) as unknown as Transaction;
      shared.transaction = bridge(async (what?: unknown, data?: Record<string, unknown>) =>
        inContext(await transaction(what, data)),
      ) as SharedBuiltins["transaction"];
    }
    (context as Record<symbol, unknown>)[Symbol.for("jobshell.args")] = [builtins.task, builtins.logger, shared];

    let running: Promise<unknown>;
    try {
      running = new vm.Script(`${scriptHeader}${code}${trailer}`, { filename }).runInContext(context, { timeout: remaining() }) as Promise<unknown>;
    } catch (err) {
      end(() => reject(fromContext(err, filename, seconds)));
      return;
    }
    running.then(
      (value) => end(() => resolve(value)),
      (err) => end(() => reject(fromContext(err, filename, seconds))),
    );
    // The first run may have left work queued behind promises that are already settled.
    drain();
  });
}

/** Objects the code makes belong to its context: copy plain data into this realm for the builtins. */
function toThisRealm(value: unknown): unknown {
  if (typeof value !== "object" || value === null || isMU(value)) return value;
  try {
    return structuredClone(value);
  } catch {
    return value;
  }
}

/** An error of the context, or the watchdog's timeout, as an error of this realm. */
function fromContext(err: unknown, filename: string, seconds: number): Error {
  if ((err as { code?: string })?.code === "ERR_SCRIPT_EXECUTION_TIMEOUT") return new ScriptTimeoutError(seconds);
  if (err instanceof Error) return err;
  const e = err as { name?: unknown; message?: unknown; stack?: unknown } | undefined;
  if (typeof e !== "object" || e === null || typeof e.message !== "string") return new Error(String(err));
  const at = scriptPosition(String(e.stack ?? ""), filename);
  const kind = typeof e.name === "string" && e.name !== "Error" ? `${e.name}: ` : "";
  return new Error(`${kind}${e.message}${at ? ` (line ${at.line}:${at.column})` : ""}`);
}
