// The transactions view, live: a transaction event redraws the table from the server, at most once a second.
import { live, refreshPart } from "./live.js";

let due;
live(["transaction"], {
  transaction() {
    due ??= setTimeout(() => refreshPart("transactions").finally(() => (due = undefined)), 1000);
  },
});
