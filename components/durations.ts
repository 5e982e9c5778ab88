// Durations in the one form the docker provider reads back from Docker. The
// provider parses any Go duration ("60s") but stores what Docker returns,
// formatted by its `shortDur` (Go's time.Duration.String() with a trailing
// "0s"/"0m" trimmed): 60 s reads back as "1m", 90 s as "1m30s". A spec that
// declares "60s" therefore differs from the state on every `pulumi up` and
// restarts every task (recorded under the real engine; docs/harness.md).
// Specs declare durations through `durationText`, so they are already in
// that form.

/** Go's time.Duration.String() trimmed like the provider's shortDur: 60e9 → "1m", 1.5e9 → "1.5s". */
export function shortDuration(nanoseconds: number): string {
  let text = goDurationString(nanoseconds);
  if (text.endsWith("m0s")) text = text.slice(0, -2);
  if (text.endsWith("h0m")) text = text.slice(0, -2);
  return text;
}

/** A duration of this many seconds, in the form the provider reads back. */
export function durationText(seconds: number): string {
  return shortDuration(Math.round(seconds * 1e9));
}

function goDurationString(ns: number): string {
  if (ns === 0) return "0s";
  const sign = ns < 0 ? "-" : "";
  let rest = Math.abs(ns);
  if (rest < 1e9) {
    const [unit, size] = rest < 1e3 ? ["ns", 1] : rest < 1e6 ? ["µs", 1e3] : ["ms", 1e6];
    return `${sign}${trimFraction(rest / (size as number))}${unit}`;
  }
  const hours = Math.floor(rest / 3600e9);
  rest -= hours * 3600e9;
  const minutes = Math.floor(rest / 60e9);
  rest -= minutes * 60e9;
  const seconds = `${trimFraction(rest / 1e9)}s`;
  if (hours > 0) return `${sign}${hours}h${minutes}m${seconds}`;
  if (minutes > 0) return `${sign}${minutes}m${seconds}`;
  return `${sign}${seconds}`;
}

/** Up to nine decimals, no trailing zeros: Go prints 1.5s, not 1.500000000s. */
function trimFraction(value: number): string {
  return Number(value.toFixed(9)).toString();
}
