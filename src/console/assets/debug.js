// The debug tail: lines from GET /events?types=debug, at most data-max kept in the page, filtered by
// text, paused (new lines still kept, the view stays where it is) or following the end, downloadable.
import { formatTime, live } from "./live.js";

const tail = document.getElementById("tail");
const max = Number(tail.dataset.max) || 5000;
const followButton = document.getElementById("follow");
const filter = document.getElementById("filter");
const count = document.getElementById("count");
const dropped = document.getElementById("dropped");
const lines = [];
let following = true;
let droppedCount = 0;
let trimmed = 0;

const shown = (line) => filter.value === "" || line.toLowerCase().includes(filter.value.toLowerCase());

function redraw() {
  const kept = lines.filter(shown);
  tail.textContent = kept.length ? `${kept.join("\n")}\n` : "";
  if (following) tail.scrollTop = tail.scrollHeight;
}

function showCount() {
  count.textContent = `${lines.length} lines${trimmed ? `, ${trimmed} older ones let go` : ""}`;
}

function add(line) {
  lines.push(line);
  if (lines.length > max) {
    lines.splice(0, lines.length - max);
    trimmed++;
    if (following) redraw();
  } else if (shown(line)) {
    tail.append(`${line}\n`);
    if (following) tail.scrollTop = tail.scrollHeight;
  }
  showCount();
}

followButton.addEventListener("click", () => {
  following = !following;
  followButton.setAttribute("aria-pressed", String(following));
  followButton.textContent = following ? "Following" : "Paused";
  if (following) redraw();
});
tail.addEventListener("scroll", () => {
  const atEnd = tail.scrollTop + tail.clientHeight >= tail.scrollHeight - 4;
  if (following && !atEnd && document.activeElement === tail) followButton.click();
});
filter.addEventListener("input", redraw);
document.getElementById("clear").addEventListener("click", () => {
  lines.length = 0;
  trimmed = 0;
  redraw();
  showCount();
});
document.getElementById("download").addEventListener("click", () => {
  const url = URL.createObjectURL(new Blob([lines.join("\n") + "\n"], { type: "text/plain" }));
  const a = Object.assign(document.createElement("a"), { href: url, download: `jobshell-debug-${new Date().toISOString().replace(/[:.]/g, "-")}.log` });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
});

live(["debug"], {
  // Each line with the time it arrived, as the download keeps it too.
  debug: (data) => add(`${formatTime(Date.now()).slice(11)}  ${data.line}${data.truncated ? " …(cut)" : ""}`),
  dropped(data) {
    droppedCount += Number(data.count) || 0;
    dropped.hidden = false;
    dropped.textContent = `${droppedCount} lines dropped: this browser did not keep up with the debug channel.`;
  },
  reset() {
    dropped.hidden = false;
    dropped.textContent = "Lines were missed while this page was disconnected: the server no longer had them.";
  },
});
