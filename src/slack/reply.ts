// What the bot posts back: the script's return value as text, cut to Slack's 4000 characters.
import { inspect } from "node:util";

/** Slack's advice for message text; longer replies are cut. */
export const maxReplyLength = 4000;

const graphemes = new Intl.Segmenter(undefined, { granularity: "grapheme" });

/**
 * At most `max` characters (code points), never splitting one: a surrogate pair, or a character
 * built of several code points (an emoji sequence, a letter with its accents), is kept whole or
 * left out. A cut text ends with `…`.
 */
export function cutText(text: string, max = maxReplyLength): string {
  // UTF-16 length is at least the number of code points: most texts need no counting.
  if (text.length <= max || countCodePoints(text) <= max) return text;
  let count = 0;
  let end = 0;
  for (const { segment, index } of graphemes.segment(text)) {
    count += countCodePoints(segment);
    if (count > max - 1) break;
    end = index + segment.length;
  }
  return `${text.slice(0, end)}…`;
}

function countCodePoints(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    n++;
    const c = s.charCodeAt(i);
    // A high surrogate followed by a low one is one code point.
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) i++;
    }
  }
  return n;
}

/** A returned value as message text: strings as they are, other data as JSON. */
export function valueText(value: unknown): string {
  if (typeof value === "string") return value;
  try {
    const json = JSON.stringify(value, null, 2);
    if (json !== undefined) return json;
  } catch {
    // fall through to inspect
  }
  return inspect(value, { depth: 4, breakLength: 120 });
}

/** A failure as one short message: its first line, at most 500 characters. */
export function errorText(message: string): string {
  const first = message.split("\n")[0];
  return cutText(/^[A-Z]\w*Error: /.test(first) ? first : `Error: ${first}`, 500);
}
