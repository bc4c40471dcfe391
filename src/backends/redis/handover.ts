// The handover between a worker that found nothing to take and the pushes that bring it tasks.
// A worker whose take finds nothing is listed as idle (in the idle hash, `<free slots>:<listing n>`)
// and waits. A push in its own process hands tasks straight to it (started, in its Backup), so they
// start without a take round trip: either claimed before the push is even answered (the push's
// script must be known to the server, see Scripts.known), or handed over in the push's reply. A push
// elsewhere, a give-back or a rescue only wakes it (`[n]` on its inbox channel) to take the tasks: a
// worker of another process may have died since it listed itself.
//
//                 take finds nothing: listed as n, `free` = max − unheard slots
//                 (ended at once if a wake-up [n] came before the take's answer,
//                 or `free` is 0 and a handover has come)
//     LOOKING ───────────────────────────────────────────────────────▶ LISTED n
//        ▲                                                              │ a claim or handover under n:
//        │   its slots filled, a wake-up [n], idleLookMs passed,        │ `handed` += tasks,
//        │   or (`free` 0) a handover under an older listing            │ `received` += their count
//        └──────────────────────────────────────────────────────────────┘
//
//     A take is told how many tasks of Backup this worker knows of (held, minus those whose finish,
//     retry or give-back went before it): the others, `unheard`, were handed over by a push of this
//     process whose reply is on its way (the push went first on the connection, so its reply comes
//     before the take's answer, though after the take was sent). They fill slots: the take moves at
//     most max − unheard, so a worker never holds more than it asked for: more would wait behind its
//     full slots, started, and could no longer expire.
//
//     any state ── needsReclaim ──▶ RECLAIM ──▶ LOOKING
//       RECLAIM: `staleBelow` = listings + 1, the listing and `handed` dropped, then every taskid in
//       Backup that the worker does not hold goes to Recovery (lua/release-orphans.lua, which also
//       unlists the worker).
//
// Why no task is lost or run twice: a task handed over is in this worker's Backup from the push's
// atomic step on; it reaches take() through `handed`, or it is in Backup unheld. needsReclaim is set
// whenever a handover may be missing: a connection came back (a reply or an inbox message lost with
// it), a push that claimed tasks was resent after NOSCRIPT (its finishes may have overtaken it), or a
// take found its listing gone (`listed` 0) while the listing had not ended here. The reclaim sends the
// unheld tasks to Recovery and unlists the worker in one step, so no push hands over under an older
// listing after it, and whatever arrives late under a number below `staleBelow` is ignored: those
// tasks are in Recovery already.
import { expiresAt, type QueuedTask } from "../../record.js";
import { untilWoken } from "../waiters.js";
import type { RedisClient } from "./connection.js";
import { takenRows, type TakenRow } from "./tasks.js";

/** How long an idle worker waits for a handover before it looks again (ms): a wake-up lost with a
 *  connection, or tasks rescued to Recovery, are found by then. */
const idleLookMs = 1000;

/** An idle listing of this worker: its number, the slots it offered, the tasks received under it. It has
 *  ended once they fill its slots, or a wake-up came (offering none: once a handover came). */
export interface Listing {
  n: number;
  free: number;
  received: number;
  ended: boolean;
}

export class Handover {
  /** the idle listing this worker believes it holds */
  listing?: Listing;
  /** tasks handed over (started, in Backup) that take() has not returned yet */
  handed: TakenRow[] = [];
  /** taskids claimed by this process's pushes and not yet finished (or given back) */
  readonly claimedHere = new Set<string>();
  /** a handover may have been lost: Backup may hold a task this worker will never be told of */
  needsReclaim = false;
  /** the idle wait timed out: look again even though still listed, to renew the listing */
  lookNow = false;
  /** subscribed to this worker's inbox channel */
  hearing = false;
  /** wakes a take() waiting as an idle worker */
  private readonly takers = new Set<() => void>();
  /** Listings are numbered, and so are handovers: the last number given, and the first one not made
   *  stale by a reclaim (which gave back the tasks of those before it). */
  private listings = 0;
  private staleBelow = 0;
  /** the highest listing number a wake-up came for: it may come before the take that made that
   *  listing has answered (the inbox is another connection), and then ends the listing at once */
  private wokenFor = 0;
  private subscription?: Promise<unknown>;
  private closed = false;

  constructor(
    private readonly subscriber: RedisClient,
    private readonly inbox: string,
  ) {}

  /** Listening before the first take: a take lists this worker as idle, and a push may hand over at once. */
  async listen(): Promise<void> {
    await (this.subscription ??= this.subscriber.subscribe(this.inbox));
    this.hearing = true;
  }

  /** Whether take() should look (run the take script): not while listed, as there is nothing to find
   *  then (a push hands tasks over, or wakes it). */
  get mustLook(): boolean {
    return !this.listing || this.listing.ended || this.lookNow;
  }

  /** The number of the listing the take about to run makes if it finds nothing. */
  nextListing(): number {
    return ++this.listings;
  }

  /** A take ran as listing `n`: `listed` is 0 if its previous listing (`before`) was taken by a push or
   *  a wake-up. Not all of their handovers came if `before` had not ended: a reclaim gives them back.
   *  Finding nothing, it listed this worker with `free` slots: fewer than asked for while handovers
   *  were on their way here, none if they fill them all. With none, the worker waits only for those
   *  (come already, or to come), then looks again. */
  took(n: number, before: Listing | undefined, listed: number, found: number, free: number): void {
    if (before && !before.ended && listed === 0) this.needsReclaim = true;
    const ended = this.wokenFor >= n || (free === 0 && this.handed.length > 0);
    this.listing = found === 0 ? { n, free, received: 0, ended } : undefined;
  }

  /** How many of the first tasks of a push this process's worker claims, idle as it is: as many as its
   *  listing has slots left for, fresh ones only. It runs them without waiting for the push's answer,
   *  the longest part of a round trip within one process. */
  claimable(listing: Listing, batch: { task: QueuedTask }[], now: number, pushKnown: boolean): number {
    if (listing.ended || this.closed || !pushKnown) return 0;
    const room = Math.min(batch.length, listing.free - listing.received);
    let claimed = 0;
    while (claimed < room && now <= expiresAt(batch[claimed].task)) claimed++;
    return claimed;
  }

  /** Tasks this process's push claimed under listing `n`, sent to Redis. */
  claimed(n: number, rows: TakenRow[]): void {
    for (const row of rows) this.claimedHere.add(row[0]);
    this.receive(n, rows);
  }

  /** A handover in a push's reply, or a wake-up on the inbox channel (no tasks). */
  received(text: string): void {
    const { header, rows } = takenRows(text);
    this.receive(header, rows);
  }

  /** Tasks given to this worker under listing `n`: kept for take(), unless a reclaim gave them back. */
  private receive(n: number, rows: TakenRow[]): void {
    if (n < this.staleBelow) return;
    if (rows.length === 0 && n > this.wokenFor) this.wokenFor = n;
    const listing = this.listing;
    if (listing?.n === n) {
      listing.received += rows.length;
      if (rows.length === 0 || listing.received >= listing.free) listing.ended = true;
    }
    // Listed with no free slot, the worker awaited a handover under an older listing.
    if (listing?.free === 0 && rows.length > 0) listing.ended = true;
    for (const row of rows) this.handed.push(row);
    this.wake();
  }

  /** Whether the task was handed over and not yet returned by take(). */
  has(taskid: string): boolean {
    for (const row of this.handed) if (row[0] === taskid) return true;
    return false;
  }

  /** Before Backup's unheld tasks go to Recovery: every handover made so far is stale. */
  reclaim(held: Set<string>): void {
    this.staleBelow = this.listings + 1;
    this.listing = undefined;
    this.handed = [];
    for (const taskid of this.claimedHere) if (!held.has(taskid)) this.claimedHere.delete(taskid);
  }

  /** A handover may have been lost: the waiting take() reclaims. */
  requestReclaim(): void {
    this.needsReclaim = true;
    this.wake();
  }

  /** Listed as idle: wait for a handover, a reconnection or a stop, or idleLookMs (then true: look
   *  again anyway, which renews the listing). No blocking command: nothing to hang on a failover. */
  idle(signal: AbortSignal): Promise<boolean> {
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      this.wake();
    }, idleLookMs);
    return untilWoken(this.takers, signal).then(() => {
      clearTimeout(timer);
      return timedOut;
    });
  }

  wake(): void {
    for (const wake of this.takers) wake();
  }

  close(): void {
    this.closed = true;
    this.wake();
  }
}
