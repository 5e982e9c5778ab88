/**
 * The simulated fleet (bench/fleet.ts) as a process of its own, so that its
 * CPU and event loop are apart from the load generator's and can be measured
 * on their own: npm run bench:cluster starts it with an IPC channel.
 *
 *   node --import tsx bench/fleet-process.ts '<FleetOptions as JSON>'
 *
 * With an IPC channel it reports on it (FleetReport) and obeys FleetCommand;
 * it stops the fleet and exits when the parent goes away. Run by hand (no
 * IPC) it prints the counters every 10 s until SIGINT or SIGTERM.
 */
import { monitorEventLoopDelay } from "node:perf_hooks";
import { Fleet, type FleetCounters, type FleetOptions } from "./fleet";

export type FleetCommand = { type: "report"; id: number } | { type: "mark" } | { type: "stop"; graceMs: number };

export interface FleetHealth {
  counters: FleetCounters;
  errors: string[];
  /** This process's event-loop delay since the last "mark": max of p99 and max, ms (monitorEventLoopDelay at 10 ms resolution, which it includes). */
  loopP99Ms: number;
  loopMaxMs: number;
}

export type FleetReport =
  | { type: "started"; ms: number; health: FleetHealth }
  | { type: "report"; id: number; health: FleetHealth }
  | { type: "stopped"; health: FleetHealth }
  | { type: "failed"; message: string; health?: FleetHealth };

async function main(): Promise<void> {
  const options = JSON.parse(process.argv[2] ?? "") as FleetOptions;
  const fleet = new Fleet(options);
  const loop = monitorEventLoopDelay({ resolution: 10 });
  loop.enable();
  const health = (): FleetHealth => ({
    counters: fleet.counters(),
    errors: fleet.lastErrors(),
    loopP99Ms: loop.percentile(99) / 1e6,
    loopMaxMs: loop.max / 1e6,
  });
  /** Resolves once the report is handed to the channel (so disconnecting after it loses nothing). */
  const send = (report: FleetReport): Promise<void> =>
    new Promise((resolve) => {
      if (process.send && process.connected) process.send(report, undefined, {}, () => resolve());
      else {
        if (!process.send) console.log(JSON.stringify(report));
        resolve();
      }
    });
  let stopping: Promise<void> | undefined;
  const stop = (graceMs: number): Promise<void> => {
    stopping ??= fleet.stop({ graceMs }).then(async () => {
      loop.disable();
      await send({ type: "stopped", health: health() });
    });
    return stopping;
  };

  if (process.send) {
    process.on("message", (command: FleetCommand) => {
      if (command.type === "report") void send({ type: "report", id: command.id, health: health() });
      else if (command.type === "mark") loop.reset();
      else if (command.type === "stop") void stop(command.graceMs).then(() => process.exit(0));
    });
    // The benchmark went away (crashed, killed): leave the broker cleanly and exit.
    process.on("disconnect", () => void stop(0).then(() => process.exit(0)));
  } else {
    const timer = setInterval(() => console.log(JSON.stringify(health().counters)), 10_000);
    for (const signal of ["SIGINT", "SIGTERM"] as const) {
      process.once(signal, () => {
        clearInterval(timer);
        void stop(5_000).then(() => process.exit(0));
      });
    }
  }

  const started = Date.now();
  try {
    await fleet.start();
  } catch (error) {
    await send({ type: "failed", message: error instanceof Error ? error.message : String(error), health: health() });
    await stop(0);
    process.exit(1);
  }
  loop.reset();
  await send({ type: "started", ms: Date.now() - started, health: health() });
}

main().catch((error: unknown) => {
  const message = error instanceof Error ? error.message : String(error);
  console.error(`fleet: ${message}`);
  if (process.send && process.connected) process.send({ type: "failed", message } satisfies FleetReport, undefined, {}, () => process.exit(1));
  else process.exit(1);
});
