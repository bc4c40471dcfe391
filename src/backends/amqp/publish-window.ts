// At most `size` publishes waiting for the broker's confirm. A burst of task() beyond it waits its
// turn here instead of flooding the task queue's process in the broker, whose mailbox would then
// hold the workers' acks behind every publish: with the window, workers consume while producers
// publish, and a burst costs the broker no more memory than the window.
export class PublishWindow {
  private inUse = 0;
  private waiting: (() => void)[] = [];
  /** the first of `waiting` not resumed yet (shift() would copy a long array each time) */
  private next = 0;

  constructor(readonly size: number) {}

  /** Resolves once a slot is this caller's; every acquire() is followed by one release(). */
  acquire(): Promise<void> | undefined {
    if (this.inUse < this.size) {
      this.inUse++;
      return undefined;
    }
    return new Promise<void>((resolve) => this.waiting.push(resolve));
  }

  /** The slot goes to the longest waiting caller, or back to the window. */
  release(): void {
    const resume = this.waiting[this.next];
    if (!resume) {
      this.inUse--;
      return;
    }
    this.next += 1;
    // Under a steady overload the list is never empty: drop the resumed ones from time to time.
    if (this.next === this.waiting.length || (this.next > 1024 && this.next * 2 > this.waiting.length)) {
      this.waiting = this.waiting.slice(this.next);
      this.next = 0;
    }
    resume();
  }
}
