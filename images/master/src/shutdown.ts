// Every step of the master's shutdown (web port, gRPC, MQTT) is bounded: it
// gets SHUTDOWN_STEP_MS to close gracefully, then whatever is still open is
// forced shut. The steps run side by side, so SIGTERM to exit takes at most
// about SHUTDOWN_STEP_MS, well inside Docker's default 10 s grace period (the
// stack gives the master 20 s).

/** How long one step of shutdown may take before it is forced. */
export const SHUTDOWN_STEP_MS = 3_000;

/** How a step ended: by itself, or forced after the time limit (or after an error). */
export type StepEnd = "closed" | "timed_out" | "failed";

/**
 * Waits for `graceful` at most `ms`; when it is late or fails, runs `force`.
 * Never rejects, and always resolves within `ms` (plus what `force` takes).
 */
export async function boundedClose(graceful: Promise<unknown>, ms: number, force: () => void): Promise<StepEnd> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<StepEnd>((resolve) => {
    timer = setTimeout(() => resolve("timed_out"), ms);
  });
  const end = await Promise.race([
    graceful.then(
      (): StepEnd => "closed",
      (): StepEnd => "failed",
    ),
    late,
  ]);
  clearTimeout(timer);
  if (end !== "closed") force();
  return end;
}
