// A gate between the terminal and readline. While a block runs, what the user types (or pastes) is
// held back, and given to readline line by line once the prompt is back, so that it is echoed after
// the right prompt (`>>> `, `... `) and a pasted tutorial looks as it does in the source document.
// Ctrl-C is never held: it interrupts the running block at once and drops what was typed ahead.
import { EventEmitter } from "node:events";
import { StringDecoder } from "node:string_decoder";

/** The parts of a terminal input stream readline uses. */
export interface TerminalInput extends NodeJS.ReadableStream {
  isTTY?: boolean;
  setRawMode?(mode: boolean): unknown;
}

const CTRL_C = "\x03";

export class InputGate extends EventEmitter {
  readonly isTTY = true;
  private open = true;
  private held = "";
  /** a character split between two chunks of a paste is put together again */
  private readonly decoder = new StringDecoder("utf8");
  private readonly onData = (chunk: Buffer | string) => this.receive(typeof chunk === "string" ? chunk : this.decoder.write(chunk));
  private readonly onEnd = () => this.emit("end");

  constructor(
    private readonly source: TerminalInput,
    /** Ctrl-C typed while the gate is shut */
    private readonly interrupt: () => void,
  ) {
    super();
    source.on("data", this.onData);
    source.on("end", this.onEnd);
  }

  setRawMode(mode: boolean): this {
    this.source.setRawMode?.(mode);
    return this;
  }

  resume(): this {
    this.source.resume();
    return this;
  }

  pause(): this {
    this.source.pause();
    return this;
  }

  /** Hold what is typed from now on. */
  shut(): void {
    this.open = false;
  }

  /** Give readline what was held, one line at a time, until the gate is shut again. */
  release(): void {
    this.open = true;
    const held = this.held;
    this.held = "";
    if (held) this.feed(held);
  }

  /** What was typed while the gate was shut, not given to readline yet. */
  get typedAhead(): string {
    return this.held;
  }

  /** Stop reading the terminal. */
  detach(): void {
    this.source.off("data", this.onData);
    this.source.off("end", this.onEnd);
  }

  private receive(text: string): void {
    if (this.open) {
      this.feed(text);
      return;
    }
    const interrupt = text.indexOf(CTRL_C);
    if (interrupt < 0) {
      this.held += text;
      this.emit("held");
      return;
    }
    this.held = "";
    this.interrupt();
  }

  /** Readline handles each line synchronously; a line that starts a block shuts the gate. */
  private feed(text: string): void {
    let rest = text;
    while (rest && this.open) {
      const end = rest.search(/[\r\n]/);
      const piece = end < 0 ? rest : rest.slice(0, end + 1);
      rest = rest.slice(piece.length);
      this.emit("data", piece);
    }
    if (rest) this.held = rest + this.held;
  }
}
