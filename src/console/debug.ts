// View 6, `/console/debug`: a live tail of the debug channel (the qprint lines of every process on the
// queue), drawn by debug.js from GET /events?types=debug: pause and follow, a text filter, download,
// at most 5,000 lines kept, and "N lines dropped" when the server had to drop lines for this browser.
import { html, type SafeHtml } from "./html.js";
import type { View } from "./view.js";

export function debugView(view: View): SafeHtml {
  const body = html`
<div class="toolbar" role="toolbar" aria-label="Debug tail">
  <button type="button" id="follow" aria-pressed="true">Following</button>
  <label>Filter <input type="search" id="filter" autocomplete="off"></label>
  <button type="button" id="clear">Clear</button>
  <button type="button" id="download">Download</button>
  <span id="count" class="note" role="status">0 lines</span>
</div>
<p id="dropped" class="warn" role="alert" hidden></p>
<pre id="tail" class="tail" role="log" aria-label="Debug lines" tabindex="0" data-max="5000"></pre>
<noscript><p>The live tail needs JavaScript. <code>jobshell debug</code> shows the same lines in a terminal.</p></noscript>`;
  return view.page({ title: "Debug", current: "/console/debug", module: "debug.js" }, body);
}
