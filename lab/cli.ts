// The lab's command line: `npx tsx lab/cli.ts up [--vms N] | status | down | smoke | token | rebalance`.
// The VM count also comes from LAB_VMS (default 5). `rebalance` force-updates, one at a
// time, the worker services whose spread is uneven (after a VM came back), printing
// the tasks per VM before and after. `token` prints the deployed
// page's access token (a secret: only when asked, like `pulumi stack output --show-secrets`).
import { down, log, status, up } from "./lab";
import { parseVmCount } from "./plan";
import { smoke } from "./smoke";
import { rebalanceLab, stackOutput } from "./stack";

const USAGE = "usage: npx tsx lab/cli.ts up [--vms N] | status | down | smoke | token | rebalance";

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  switch (command) {
    case "up":
      return up(vmCountFrom(rest));
    case "status":
      return noExtraArguments(rest, status);
    case "down":
      return noExtraArguments(rest, down);
    case "smoke":
      return noExtraArguments(rest, smoke);
    case "rebalance":
      return noExtraArguments(rest, rebalanceLab);
    case "token":
      return noExtraArguments(rest, async () => {
        process.stdout.write(`${String(stackOutput("webToken"))}\n`);
      });
    default:
      throw new Error(`unknown command '${command ?? ""}'; ${USAGE}`);
  }
}

function vmCountFrom(args: string[]): number {
  if (args.length === 0) return parseVmCount(process.env.LAB_VMS, "LAB_VMS");
  if (args.length === 2 && args[0] === "--vms") return parseVmCount(args[1], "--vms");
  throw new Error(`unexpected arguments '${args.join(" ")}'; ${USAGE}`);
}

function noExtraArguments(args: string[], action: () => Promise<void>): Promise<void> {
  if (args.length > 0) throw new Error(`unexpected arguments '${args.join(" ")}'; ${USAGE}`);
  return action();
}

// `lab status | head` closes stdout early: that is not an error.
process.stdout.on("error", (err: NodeJS.ErrnoException) => {
  if (err.code === "EPIPE") process.exit(0);
  throw err;
});

main(process.argv.slice(2)).catch((err: unknown) => {
  log(`error: ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = 1;
});
