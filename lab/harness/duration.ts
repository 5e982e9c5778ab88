// Go duration strings ("10s", "1m30s", "500ms") as used by @pulumi/docker
// inputs, turned into the nanosecond integers the Docker Engine API expects.
// Same grammar as Go's time.ParseDuration, which the docker provider uses.

const NANOS_PER_UNIT: Record<string, number> = {
  ns: 1,
  us: 1e3,
  "µs": 1e3,
  "μs": 1e3,
  ms: 1e6,
  s: 1e9,
  m: 60e9,
  h: 3600e9,
};

const SEGMENT = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/y;

/** "1m30s" → 90_000_000_000. Throws naming `field` on anything Go would reject. */
export function parseDurationNs(text: string, field: string): number {
  const bad = () => new Error(`${field}: "${text}" is not a duration (expected e.g. 10s, 500ms, 1m30s)`);
  let rest = text.trim();
  let sign = 1;
  if (rest.startsWith("-") || rest.startsWith("+")) {
    sign = rest.startsWith("-") ? -1 : 1;
    rest = rest.slice(1);
  }
  if (rest === "0") return 0;
  if (rest === "") throw bad();
  let total = 0;
  SEGMENT.lastIndex = 0;
  while (SEGMENT.lastIndex < rest.length) {
    const match = SEGMENT.exec(rest);
    if (!match) throw bad();
    const [, amount, unit] = match;
    total += Number(amount) * (NANOS_PER_UNIT[unit as string] ?? Number.NaN);
  }
  if (!Number.isFinite(total)) throw bad();
  return sign * Math.round(total);
}
