// The debug channel: `qprint` lines go to the plain pub/sub channel debug_channel
// (`xaas.hotspot.channel` by default, as in the source), which every shell may subscribe to.
import type { RedisConnection } from "./connection.js";

export class DebugChannel {
  private readonly listeners = new Set<(line: string) => void>();
  private closed = false;

  constructor(
    private readonly conn: RedisConnection,
    readonly channel: string,
    /** the queue's cluster slot: its lines go out in order with its ends (see RedisConnection.publish) */
    private readonly slot: number,
  ) {}

  async publish(line: string): Promise<void> {
    await this.conn.publish(this.channel, line, this.slot);
  }

  async subscribe(onLine: (line: string) => void): Promise<() => Promise<void>> {
    const listener = (line: string) => onLine(line);
    if (this.listeners.size === 0) await this.conn.subscriber.subscribe(this.channel);
    this.listeners.add(listener);
    return async () => {
      if (!this.listeners.delete(listener)) return;
      if (this.listeners.size === 0 && !this.closed) await this.conn.subscriber.unsubscribe(this.channel);
    };
  }

  /** A line published on the channel. */
  heard(line: string): void {
    for (const listener of this.listeners) listener(line);
  }

  close(): void {
    this.closed = true;
  }
}
