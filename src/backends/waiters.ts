// Callers waiting for a task's record to change, woken by whoever changes it, with what it changed
// to when the waker has it (`T`). One map and one timer for every waiter of a backend.
//
// Tens of thousands may wait at once (every task issued and then awaited): rather than a timer
// each, their deadlines sit in one binary heap behind a single timer set for the earliest.
import { onAbort } from "../abort.js";

/** A waiter; a caller may bring its own (a class of its own with these fields), so that waiting
 *  costs one object. */
export interface Waiter<T> {
  readonly taskid: string;
  /** performance.now() by which it resolves anyway (set by TaskWaiters) */
  deadline: number;
  wake(value?: T): void;
  /** cancels its wake-up on the caller's signal */
  offAbort?: () => void;
  done: boolean;
  /** its place in the heap */
  index: number;
}

export class TaskWaiters<T = void> {
  /** by taskid: one waiter, or several when more than one caller waits for the same task */
  private waiting = new Map<string, Waiter<T> | Waiter<T>[]>();
  /** min-heap on deadline */
  private heap: Waiter<T>[] = [];
  private timer?: NodeJS.Timeout;
  private timerAt = Number.POSITIVE_INFINITY;
  /** the map and heap have held many waiters: their storage is let go once they are empty */
  private grown = false;

  /** Resolve after `ms`, when `signal` aborts, or when `wake(taskid)` is called, whichever comes first. */
  waitFor(taskid: string, ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => this.add(taskid, ms, signal, () => resolve()));
  }

  /** As waitFor(), calling `onWake` instead: no promise for a caller that has one of its own to settle.
   *  It gets the value wake() was given; nothing when its time ran out or it was aborted. */
  add(taskid: string, ms: number, signal: AbortSignal | undefined, onWake: (value?: T) => void): void {
    this.addWaiter({ taskid, deadline: 0, wake: onWake, offAbort: undefined, done: false, index: 0 }, ms, signal);
  }

  /** As add(), with a waiter the caller made (again, after it was woken, if it waits on). */
  addWaiter(waiter: Waiter<T>, ms: number, signal: AbortSignal | undefined): void {
    const { taskid } = waiter;
    waiter.deadline = performance.now() + ms;
    waiter.done = false;
    waiter.offAbort = undefined;
    const others = this.waiting.get(taskid);
    if (others === undefined) this.waiting.set(taskid, waiter);
    else if (Array.isArray(others)) others.push(waiter);
    else this.waiting.set(taskid, [others, waiter]);
    this.pushDeadline(waiter);
    if (signal) waiter.offAbort = onAbort(signal, () => this.settle(waiter, true));
  }

  /** Wake every waiter of the task, with `value`; false if none waited. */
  wake(taskid: string, value?: T): boolean {
    const entry = this.waiting.get(taskid);
    if (entry === undefined) return false;
    this.waiting.delete(taskid);
    if (Array.isArray(entry)) for (const waiter of entry) this.settle(waiter, false, value);
    else this.settle(entry, false, value);
    return true;
  }

  has(taskid: string): boolean {
    return this.waiting.has(taskid);
  }

  get size(): number {
    return this.waiting.size;
  }

  wakeAll(): void {
    for (const taskid of [...this.waiting.keys()]) this.wake(taskid);
  }

  /** Wake one waiter; `unlist` when it is still in `waiting` (its time ran out, or it was aborted). */
  private settle(waiter: Waiter<T>, unlist: boolean, value?: T): void {
    if (waiter.done) return;
    waiter.done = true;
    if (unlist) {
      const entry = this.waiting.get(waiter.taskid);
      if (entry === waiter) this.waiting.delete(waiter.taskid);
      else if (Array.isArray(entry)) {
        entry.splice(entry.indexOf(waiter), 1);
        if (entry.length === 0) this.waiting.delete(waiter.taskid);
      }
    }
    this.removeDeadline(waiter);
    waiter.offAbort?.();
    waiter.wake(value);
  }

  private pushDeadline(waiter: Waiter<T>): void {
    waiter.index = this.heap.length;
    this.heap.push(waiter);
    if (waiter.index >= 1024) this.grown = true;
    this.siftUp(waiter.index);
    if (waiter.deadline < this.timerAt) this.arm(waiter.deadline);
  }

  private removeDeadline(waiter: Waiter<T>): void {
    const heap = this.heap;
    const last = heap.pop()!;
    if (last !== waiter) {
      heap[waiter.index] = last;
      last.index = waiter.index;
      this.siftDown(this.siftUp(last.index));
    }
    // An empty heap needs no timer; a later one is simply left to fire early and re-arm.
    if (heap.length === 0) {
      clearTimeout(this.timer);
      this.timer = undefined;
      this.timerAt = Number.POSITIVE_INFINITY;
      // Neither an array nor a map gives back the room it grew to: nothing of a crowd stays behind it.
      if (this.grown) {
        this.grown = false;
        this.heap = [];
        this.waiting = new Map();
      }
    }
  }

  private siftUp(at: number): number {
    const heap = this.heap;
    const waiter = heap[at];
    while (at > 0) {
      const up = (at - 1) >> 1;
      if (heap[up].deadline <= waiter.deadline) break;
      heap[at] = heap[up];
      heap[at].index = at;
      at = up;
    }
    heap[at] = waiter;
    waiter.index = at;
    return at;
  }

  private siftDown(at: number): void {
    const heap = this.heap;
    const waiter = heap[at];
    for (;;) {
      const left = 2 * at + 1;
      if (left >= heap.length) break;
      const child = left + 1 < heap.length && heap[left + 1].deadline < heap[left].deadline ? left + 1 : left;
      if (heap[child].deadline >= waiter.deadline) break;
      heap[at] = heap[child];
      heap[at].index = at;
      at = child;
    }
    heap[at] = waiter;
    waiter.index = at;
  }

  private arm(deadline: number): void {
    clearTimeout(this.timer);
    this.timerAt = deadline;
    this.timer = setTimeout(this.expire, Math.max(0, deadline - performance.now()));
  }

  /** The timer: wake every waiter whose deadline has passed, then re-arm for the next. */
  private readonly expire = () => {
    this.timer = undefined;
    this.timerAt = Number.POSITIVE_INFINITY;
    const now = performance.now();
    while (this.heap.length > 0 && this.heap[0].deadline <= now) this.settle(this.heap[0], true);
    if (this.heap.length > 0) this.arm(this.heap[0].deadline);
  };
}

/** Resolves when a function it adds to `wakers` is called, or when `signal` aborts: a taker that
 *  found nothing to take sleeps so, and whoever brings tasks calls every waker in the set. */
export function untilWoken(wakers: Set<() => void>, signal: AbortSignal): Promise<void> {
  return new Promise<void>((resolve) => {
    const wake = () => {
      wakers.delete(wake);
      offAbort();
      resolve();
    };
    wakers.add(wake);
    const offAbort = onAbort(signal, wake);
  });
}
