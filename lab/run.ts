// `npm run lab`: the README's main command. Lab up (5 VMs), then deploy the
// dev stack — with the Pulumi CLI through the Automation API where it is
// installed, else with the live harness — then print which VM runs the master
// (the leader), the broker, the registry and each worker, the page's current
// URL, and which VM runs each replica. Every step is idempotent: on a running lab this
// redeploys (unchanged resources stay as they are).
import { describeCounts } from "./harness/deploy";
import { formatDuration, parseVmCount } from "./plan";
import { log, up } from "./lab";
import { deployDevStack, labRoles, prepareDeploy, webAccessLines } from "./stack";
import { PLACEMENT_HEADER, placementRows, textTable } from "./stack-plan";

async function main(): Promise<void> {
  const started = Date.now();
  await up(parseVmCount(process.env["LAB_VMS"], "LAB_VMS"));
  const labUp = Date.now();
  const { lab, config } = prepareDeploy();
  const summary = await deployDevStack();
  const deployed = Date.now();
  const roles = await labRoles(lab, config);
  console.log(`\n${[...roles.lines, ...webAccessLines(roles.webUrl)].join("\n")}\n`);
  console.log(textTable(PLACEMENT_HEADER, placementRows(roles.tasks)));
  console.log();
  const outcome = summary ? ` (${describeCounts(summary.counts)}${summary.warnings.length > 0 ? `, ${summary.warnings.length} warning(s)` : ""})` : "";
  log(`lab up ${seconds(labUp - started)}, deploy ${seconds(deployed - labUp)}${outcome}, total ${seconds(Date.now() - started)}`);
}

const seconds = (ms: number) => formatDuration(ms / 1000);


main().catch((error: unknown) => {
  log(`error: ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = 1;
});
