import { inspect } from "node:util";
import vm from "node:vm";
import { describe, expect, it } from "vitest";
import YAML from "yaml";
import { MU, isMU } from "../src/mu.js";

describe("MU", () => {
  it("reads and writes by attribute and by subscript", () => {
    const m = MU({ name: "Amuro Ray", age: 18 });
    expect(m.name).toBe("Amuro Ray");
    expect(m["age"]).toBe(18);
    m.age = 19;
    m["unit"] = "RX-78-2";
    expect(m.age).toBe(19);
    expect(m.unit).toBe("RX-78-2");
    expect(m.missing).toBeUndefined();
  });

  it("iterates over its keys, counts them and answers has() and in", () => {
    const m = MU({ name: "Amuro Ray", age: 18 });
    expect([...m]).toEqual(["name", "age"]);
    expect(Object.keys(m)).toEqual(["name", "age"]);
    const keys: string[] = [];
    for (const key of m) keys.push(key);
    expect(keys).toEqual(["name", "age"]);
    expect(m.length).toBe(2);
    expect(m.has("age")).toBe(true);
    expect(m.has("rank")).toBe(false);
    expect("name" in m).toBe(true);
    expect("merge" in m).toBe(false);
    delete m.age;
    expect(m.length).toBe(1);
  });

  it("reads nested plain objects as MU, arrays as arrays with MU elements", () => {
    const m = MU({ pilot: { unit: { model: "RX-78-2" } }, crew: [{ name: "Bright" }, 7, [{ deep: true }]] });
    expect(isMU(m.pilot)).toBe(true);
    expect(m.pilot.unit.model).toBe("RX-78-2");
    expect(m.pilot).toEqual(m.pilot);
    expect(Array.isArray(m.crew)).toBe(true);
    expect(m.crew[0].name).toBe("Bright");
    expect(isMU(m.crew[0])).toBe(true);
    expect(m.crew[1]).toBe(7);
    expect(m.crew[2][0].deep).toBe(true);
    expect(m.crew.map((c: unknown) => (isMU(c) ? c.name : c))).toEqual(["Bright", 7, [{ deep: true }]]);
    m.pilot.unit.model = "RX-78-3";
    expect(m.dictionary.pilot.unit.model).toBe("RX-78-3");
  });

  it("wraps the given object without copying it", () => {
    const data: Record<string, unknown> = { a: 1, nested: { b: 2 } };
    const m = MU(data);
    m.c = 3;
    m.nested.b = 4;
    expect(data).toEqual({ a: 1, c: 3, nested: { b: 4 } });
    expect(MU(m)).toBe(m);
  });

  it("stores an MU assigned into it as plain data", () => {
    const m = MU({});
    m.inner = MU({ x: 1 });
    expect(m.dictionary).toEqual({ inner: { x: 1 } });
    expect(isMU(m.dictionary.inner)).toBe(false);
    expect(m.inner.x).toBe(1);
  });

  it("merge() adds the other keys in place and returns the same record", () => {
    const m = MU({ name: "Amuro Ray", age: 18 });
    const same = m.merge({ age: 19, unit: "RX-78-2" });
    expect(same).toBe(m);
    expect(m.dictionary).toEqual({ name: "Amuro Ray", age: 19, unit: "RX-78-2" });
    m.merge(MU({ rank: "Ensign" }));
    expect(m.rank).toBe("Ensign");
  });

  it("plus() returns a new record and leaves both operands alone", () => {
    const a = MU({ name: "Amuro Ray", nested: { x: 1 } });
    const b = MU({ age: 18 });
    const c = a.plus(b);
    expect(c).not.toBe(a);
    expect(c.dictionary).toEqual({ name: "Amuro Ray", nested: { x: 1 }, age: 18 });
    c.nested.x = 2;
    expect(a.nested.x).toBe(1);
    expect(a.has("age")).toBe(false);
    expect(b.length).toBe(1);
  });

  it("takes plain objects of another realm (the shell's context) in MU(), plus() and merge()", () => {
    const foreign = vm.runInNewContext("({ y: 2, inner: { z: 3 }, bare: Object.create(null) })");
    const m = MU({ name: "x" }).plus(foreign);
    expect(m.dictionary).toEqual({ name: "x", y: 2, inner: { z: 3 }, bare: {} });
    expect(m.inner.z).toBe(3);
    expect(MU({}).merge(foreign).y).toBe(2);
    expect(MU(foreign).inner.z).toBe(3);
    expect(() => MU({}).plus(vm.runInNewContext("new (class Point { x = 1 })()"))).toThrow(/got a Point/);
  });

  it("dictionary is a read-only deep plain copy", () => {
    const m = MU({ a: { b: [{ c: 1 }] } });
    const d = m.dictionary;
    expect(isMU(d)).toBe(false);
    expect(isMU(d.a)).toBe(false);
    expect(Object.getPrototypeOf(d.a.b[0])).toBe(Object.prototype);
    d.a.b[0].c = 99;
    expect(m.a.b[0].c).toBe(1);
    expect(() => {
      (m as Record<string, unknown>).dictionary = {};
    }).toThrow(TypeError);
  });

  it("formats as YAML, JSON and base64 YAML", () => {
    const m = MU({ name: "Amuro Ray", age: 18, unit: { model: "RX-78-2" } });
    expect(YAML.parse(m.yaml_format)).toEqual({ name: "Amuro Ray", age: 18, unit: { model: "RX-78-2" } });
    expect(JSON.parse(m.json_format)).toEqual({ name: "Amuro Ray", age: 18, unit: { model: "RX-78-2" } });
    expect(Buffer.from(m.b64, "base64").toString("utf8")).toBe(m.yaml_format);
  });

  it("shows its plain data through JSON.stringify, util.inspect and template strings", () => {
    const m = MU({ name: "Amuro Ray", unit: { model: "RX-78-2" } });
    expect(JSON.stringify(m)).toBe('{"name":"Amuro Ray","unit":{"model":"RX-78-2"}}');
    expect(JSON.stringify({ wrapped: m.unit })).toBe('{"wrapped":{"model":"RX-78-2"}}');
    expect(inspect(m)).toBe(inspect({ name: "Amuro Ray", unit: { model: "RX-78-2" } }));
    expect(`${m.unit}`).toBe('{"model":"RX-78-2"}');
  });

  it("keeps data under member names, reachable with get() and set()", () => {
    const m = MU({ length: 42, merge: "yes" });
    expect(m.length).toBe(2);
    expect(m.get("length")).toBe(42);
    expect(m.get("merge")).toBe("yes");
    expect(Object.keys(m)).toEqual(["length", "merge"]);
    expect(() => {
      // @ts-expect-error: length is read-only in the type too; the assignment must throw at run time
      m.length = 5;
    }).toThrow(/use \.set\("length", value\)/);
    m.set("length", 5);
    expect(m.get("length")).toBe(5);
    expect(m.dictionary).toEqual({ length: 5, merge: "yes" });
  });

  it("builds an empty record from nothing and refuses what is not a plain object", () => {
    expect(MU().length).toBe(0);
    expect(() => MU([1, 2] as unknown as object)).toThrow(TypeError);
    expect(() => MU(new Date())).toThrow(/plain object/);
    expect(() => MU({}).merge([1] as unknown as object)).toThrow(TypeError);
  });

  it("isMU tells records from other values", () => {
    expect(isMU(MU({}))).toBe(true);
    expect(isMU({})).toBe(false);
    expect(isMU(null)).toBe(false);
    expect(isMU("x")).toBe(false);
  });

  it("equals a plain object with the same data in assertions", () => {
    expect(MU({ a: 1, b: { c: [1, 2] } })).toEqual({ a: 1, b: { c: [1, 2] } });
  });
});
