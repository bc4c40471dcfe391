// Copies the web console's assets (ES modules and stylesheet, served as they are) next to the
// compiled console (src/console/assets/ → dist/console/assets/). Run by `npm run build` after tsc.
import { cpSync, rmSync } from "node:fs";

const from = new URL("../src/console/assets/", import.meta.url);
const to = new URL("../dist/console/assets/", import.meta.url);
rmSync(to, { recursive: true, force: true });
cpSync(from, to, { recursive: true });
