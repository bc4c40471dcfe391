// Many waits may share one AbortSignal: every waitfor() of a shell block that issues tens of thousands
// of tasks, every look of a worker until it stops. EventTarget's addEventListener looks through the
// listeners already added, so a listener each would make such waits quadratic. Here a signal gets one
// listener, which calls the callbacks added through it; removing one is constant time.
const callbacks = new WeakMap<AbortSignal, Set<() => void>>();

/** Call `fn` once when `signal` aborts (never, if it has already: as addEventListener does); returns a
 *  function that cancels it. */
export function onAbort(signal: AbortSignal, fn: () => void): () => void {
  let set = callbacks.get(signal);
  if (set === undefined) {
    const added = new Set<() => void>();
    set = added;
    callbacks.set(signal, added);
    signal.addEventListener(
      "abort",
      () => {
        callbacks.delete(signal);
        for (const call of added) call();
      },
      { once: true },
    );
  }
  const own = set;
  own.add(fn);
  return () => own.delete(fn);
}
