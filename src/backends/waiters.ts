// Callers waiting for a task's record to change, woken by whoever changes it. Used by the backends
// that learn of changes in this process (memory, and AMQP's record stream).

export class TaskWaiters {
  private waiting = new Map<string, Set<() => void>>();

  /** Resolve after `ms`, when `signal` aborts, or when `wake(taskid)` is called, whichever comes first. */
  waitFor(taskid: string, ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      let set = this.waiting.get(taskid);
      if (!set) this.waiting.set(taskid, (set = new Set()));
      const wake = () => {
        clearTimeout(timer);
        set.delete(wake);
        if (set.size === 0 && this.waiting.get(taskid) === set) this.waiting.delete(taskid);
        signal?.removeEventListener("abort", wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      set.add(wake);
      signal?.addEventListener("abort", wake, { once: true });
    });
  }

  wake(taskid: string): void {
    const set = this.waiting.get(taskid);
    if (!set) return;
    this.waiting.delete(taskid);
    for (const wake of set) wake();
  }

  wakeAll(): void {
    for (const taskid of [...this.waiting.keys()]) this.wake(taskid);
  }
}
