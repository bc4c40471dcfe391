// The records of a process's view in creation order, for listRecords() in memory and AMQP modes: an
// array sorted by (createdAt, taskid) whose start a page finds by binary search, so that the last
// page of 100,000 records costs what the first does. Records arrive nearly in that order (a task is
// recorded as it is issued); the odd one late (another process's clock, a tie) is put in place.
// A record dropped from the view stays here until the head passes it or a compaction drops it.
import type { RecordPage, RecordQuery } from "../backend.js";
import { compareKeys, PageBuilder, startKey, type RecordKey } from "../record-query.js";
import type { TaskRecordData } from "../record.js";

export class CreationOrder<R extends RecordKey> {
  private items: R[] = [];
  private head = 0;

  constructor(
    /** whether the view still holds this record */
    private readonly live: (rec: R) => boolean,
  ) {}

  add(rec: R): void {
    const items = this.items;
    let i = items.length;
    while (i > this.head && compareKeys(items[i - 1], rec) > 0) i--;
    if (i === items.length) items.push(rec);
    else items.splice(i, 0, rec);
  }

  /** A page of the live records, newest first, each as `show` makes it (undefined: left out). */
  page(query: RecordQuery, total: number, show: (rec: R) => TaskRecordData | undefined): RecordPage {
    const builder = new PageBuilder(query);
    const start = startKey(query);
    let i = start ? this.below(start) : this.items.length - 1;
    for (; i >= this.head; i--) {
      const rec = this.items[i];
      if (!this.live(rec)) continue;
      const shown = show(rec);
      if (shown && !builder.offer(shown)) break;
    }
    return builder.page(total, i > this.head);
  }

  /** After the view dropped records: drop their entries at the head at once, the others (behind a
   *  record still kept) once they are half of what is held. */
  trim(liveCount: number): void {
    const items = this.items;
    while (this.head < items.length && !this.live(items[this.head])) this.head++;
    const held = items.length - this.head;
    if (held > 1024 && held > 2 * liveCount) {
      this.items = items.slice(this.head).filter(this.live);
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > items.length) {
      this.items = items.slice(this.head);
      this.head = 0;
    }
  }

  /** The position of the newest record older than `key`, or head - 1 when none is. */
  private below(key: RecordKey): number {
    let lo = this.head;
    let hi = this.items.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (compareKeys(this.items[mid], key) < 0) lo = mid + 1;
      else hi = mid;
    }
    return lo - 1;
  }
}
