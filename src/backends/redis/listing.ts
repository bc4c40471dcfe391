// Listing the records of every process's tasks, newest first: the sorted set `index` holds each
// record's taskid scored by its createdAt (push-tasks.lua adds them, sweep-ended-records.lua removes
// them with their records). A page starts at its cursor's score with ZRANGE BYSCORE REV LIMIT, so the
// last page costs what the first does; the records are read in one script call per batch (the same
// reads as record()), and filters are applied here, at most scanLimit records a page.
import type { RecordPage, RecordQuery } from "../../backend.js";
import { compareKeys, filters, PageBuilder, startKey, type RecordKey } from "../../record-query.js";
import type { TaskRecordData } from "../../record.js";
import type { RedisConnection } from "./connection.js";
import type { Layout } from "./layout.js";

/** Taskids read per batch of a filtered page. */
const scanBatch = 1000;

export class Listing {
  constructor(
    private readonly conn: RedisConnection,
    private readonly layout: Layout,
    private readonly read: (taskid: string) => Promise<TaskRecordData | undefined>,
  ) {}

  async list(query: RecordQuery): Promise<RecordPage> {
    const { client } = this.conn;
    const key = this.layout.index;
    const builder = new PageBuilder(query);
    const start = startKey(query);
    const min = query.since === undefined ? "-inf" : String(query.since);
    // One more than the page, and the cursor's own entry, which the range holds: so a page that ends
    // the listing says so without another look.
    const batch = filters(query) ? scanBatch : query.limit + (start ? 2 : 1);
    // The range is (max, offset): the entries of score `max` that earlier batches had are skipped.
    let max = start ? String(start.createdAt) : "+inf";
    let offset = 0;
    let more = true;
    const total = this.conn.answered(client.zcard(key));
    const gone: string[] = [];
    for (;;) {
      const flat = await this.conn.answered(client.zrange(key, max, min, "BYSCORE", "REV", "LIMIT", offset, batch, "WITHSCORES"));
      const entries: (RecordKey & { score: string })[] = [];
      for (let i = 0; i < flat.length; i += 2) entries.push({ taskid: flat[i], score: flat[i + 1], createdAt: Number(flat[i + 1]) });
      const records = await Promise.all(entries.map((e) => this.read(e.taskid)));
      let full = false;
      let i = 0;
      for (; i < entries.length && !full; i++) {
        // The cursor's own record and those beside it at the same time that sort above it came before.
        if (start && compareKeys(entries[i], start) >= 0) continue;
        const rec = records[i];
        if (!rec) gone.push(entries[i].taskid);
        else full = !builder.offer(rec);
      }
      if (!full && entries.length < batch) {
        more = false;
        break;
      }
      if (entries.length > 0) {
        const last = entries[entries.length - 1].score;
        if (last === max) offset += entries.length;
        else {
          max = last;
          offset = entries.filter((e) => e.score === last).length;
        }
      }
      if (full) {
        // Filled on the batch's last entry: whether any is older, one more entry says.
        more = i < entries.length || (entries.length === batch && (await this.conn.answered(client.zrange(key, max, min, "BYSCORE", "REV", "LIMIT", offset, 1))).length > 0);
        break;
      }
    }
    // Taskids whose record went otherwise than by the sweep (deleted by hand, say) leave the index.
    if (gone.length > 0) client.zrem(key, ...gone).catch(() => {});
    return builder.page(await total, more);
  }
}
