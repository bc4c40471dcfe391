// How a message names a value it was given where it wanted another: `nothing`, `an empty string`,
// `the string "x"`, `42`, `true`, `a list`, `an object`, `a Date`. One wording for every message,
// from the library, the shell and job definitions alike.

/** The value as the end of "must be ..., got ___". */
export function describe(value: unknown): string {
  if (value === undefined || value === null) return "nothing";
  switch (typeof value) {
    case "string":
      return value.trim() === "" ? "an empty string" : `the string ${JSON.stringify(value)}`;
    case "number":
    case "boolean":
      return String(value);
    case "bigint":
      return `${value}n`;
    case "function":
      return "a function";
    case "symbol":
      return "a symbol";
  }
  if (Array.isArray(value)) return "a list";
  // A plain object of any realm (the shell's values come from a context of their own) is an object.
  const name: unknown = Object.getPrototypeOf(value)?.constructor?.name;
  if (typeof name !== "string" || name === "" || name === "Object") return "an object";
  return `${/^[AEIOU]/i.test(name) ? "an" : "a"} ${name}`;
}
