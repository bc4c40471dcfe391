// Copies the Lua scripts of Redis mode next to the compiled backend, where it reads them
// (src/backends/redis/lua/ → dist/backends/redis/lua/). Run by `npm run build` after tsc.
import { cpSync, rmSync } from "node:fs";

const from = new URL("../src/backends/redis/lua/", import.meta.url);
const to = new URL("../dist/backends/redis/lua/", import.meta.url);
rmSync(to, { recursive: true, force: true });
cpSync(from, to, { recursive: true });
