// `npx tsx lab/cli.ts smoke`: proves on a running lab that two VMs form a swarm
// and that what the lab stack relies on works across them (no IPVS, no IPsec
// here): an unencrypted overlay network and a dnsrr service with host-mode
// published ports. Leaves the VMs as it found them (out of any swarm).
import { containerState, copyImages, log, ssh } from "./lab";
import { VmSpec, planVms } from "./plan";
import { run, runOk, sleep } from "./shell";

const SMOKE_IMAGE = "ai-swarm-base/python:3.11";
const NETWORK = "lab-smoke-net";
const SERVICE = "lab-smoke-web";
const PUBLISHED_PORT = 18080;

interface Check {
  name: string;
  ok: boolean;
  detail: string;
}

const onVm = (vm: VmSpec, command: string[]) => runOk("ssh", ssh(vm, command));

export async function smoke(): Promise<void> {
  const [manager, worker] = planVms(2) as [VmSpec, VmSpec];
  await requireOutsideAnySwarm(manager);
  await requireOutsideAnySwarm(worker);
  const checks: Check[] = [];
  const loaded = await copyImages(worker, [SMOKE_IMAGE]);
  await copyImages(manager, [SMOKE_IMAGE]);
  const start = Date.now();
  try {
    await formSwarm(manager, worker, checks);
    await runDnsrrService(manager, checks);
    const viaPorts = await fetchThroughPublishedPorts([manager, worker], checks);
    await fetchOverOverlay(manager, viaPorts, checks);
  } finally {
    await cleanUp(manager, worker, loaded);
  }
  for (const check of checks) log(`${check.ok ? "PASS" : "FAIL"} ${check.name}: ${check.detail}`);
  const failed = checks.filter((c) => !c.ok).length;
  log(`swarm smoke test took ${Math.round((Date.now() - start) / 1000)}s`);
  console.log(`${checks.length - failed} passed, ${failed} failed`);
  if (failed > 0) process.exitCode = 1;
}

async function requireOutsideAnySwarm(vm: VmSpec): Promise<void> {
  if ((await containerState(vm.name)) !== "running") throw new Error(`${vm.name} is not running; run the lab's up first`);
  const state = await onVm(vm, ["docker", "info", "--format", "'{{.Swarm.LocalNodeState}}'"]);
  if (state !== "inactive") {
    throw new Error(`${vm.name} is already in a swarm (${state}); the smoke test only runs on a fresh lab (down, then up)`);
  }
}

async function formSwarm(manager: VmSpec, worker: VmSpec, checks: Check[]): Promise<void> {
  log(`swarm init on ${manager.name}, join from ${worker.name}`);
  await onVm(manager, ["docker", "swarm", "init", "--advertise-addr", manager.address]);
  // The token goes from one ssh session's stdout to the next one's arguments, never to the log.
  const token = await onVm(manager, ["docker", "swarm", "join-token", "-q", "worker"]);
  await runOk("ssh", ssh(worker, ["docker", "swarm", "join", "--token", token, `${manager.address}:2377`]));
  const nodes = (await onVm(manager, ["docker", "node", "ls", "--format", "'{{.Hostname}} {{.Status}}'"])).split("\n");
  const ready = nodes.filter((line) => line.endsWith(" Ready")).map((line) => line.split(" ")[0]).sort();
  checks.push({
    name: "two-node swarm",
    ok: ready.length === 2 && ready.includes(manager.name) && ready.includes(worker.name),
    detail: `Ready nodes: ${ready.join(", ") || "none"}`,
  });
}

async function runDnsrrService(manager: VmSpec, checks: Check[]): Promise<void> {
  // Overlay networks are unencrypted unless `--opt encrypted` is given: this kernel has no IPsec ESP.
  await onVm(manager, ["docker", "network", "create", "--driver", "overlay", "--attachable", NETWORK]);
  const options = await onVm(manager, ["docker", "network", "inspect", "--format", "'{{json .Options}}'", NETWORK]);
  checks.push({ name: "unencrypted overlay", ok: !options.includes("encrypted"), detail: `options ${options}` });
  // Each task serves a page naming its container, so answers show which task replied.
  // Single quotes: the VM's login shell passes the script through untouched; the task's sh expands $(hostname).
  const serve = `'echo served-by-$(hostname) > /tmp/index.html && cd /tmp && exec python3 -m http.server 8000'`;
  await onVm(manager, [
    "docker", "service", "create", "--detach", "--name", SERVICE, "--network", NETWORK,
    "--endpoint-mode", "dnsrr", "--replicas", "2", "--replicas-max-per-node", "1",
    "--publish", `mode=host,target=8000,published=${PUBLISHED_PORT}`, SMOKE_IMAGE, "sh", "-c", serve,
  ]);
  const nodes = await waitForTasks(manager);
  checks.push({ name: "dnsrr service spread over two VMs", ok: nodes.length === 2, detail: `tasks running on ${nodes.join(", ") || "nothing"}` });
}

/** Waits until both tasks run; returns the nodes they run on. */
async function waitForTasks(manager: VmSpec): Promise<string[]> {
  const deadline = Date.now() + 90_000;
  let lastReported = "";
  for (;;) {
    const tasks = await onVm(manager, ["docker", "service", "ps", "--format", "'{{.Node}} {{.DesiredState}} {{.CurrentState}} {{.Error}}'", SERVICE]);
    const current = tasks.split("\n").filter((line) => / Running /.test(line));
    const running = current.filter((line) => / Running Running /.test(line)).map((line) => line.split(" ")[0]!);
    const distinct = [...new Set(running)].sort();
    if (distinct.length === 2) return distinct;
    if (Date.now() > deadline) {
      log(`${SERVICE} tasks did not all start:\n${tasks}`);
      return distinct;
    }
    const summary = current.map((line) => line.split(" ").slice(0, 3).join(" ")).join("; ");
    if (summary !== lastReported) log(`waiting for ${SERVICE} tasks… (${summary})`);
    lastReported = summary;
    await sleep(1000);
  }
}

/** Host-mode ports: each VM's own address answers with the task running on that VM. */
async function fetchThroughPublishedPorts(vms: VmSpec[], checks: Check[]): Promise<string[]> {
  const answers: string[] = [];
  for (const vm of vms) {
    const url = `http://${vm.address}:${PUBLISHED_PORT}/index.html`;
    const answer = await fetchText(url);
    answers.push(answer);
    checks.push({ name: `host-mode port on ${vm.name}`, ok: answer.startsWith("served-by-"), detail: `${url} -> ${answer}` });
  }
  checks.push({ name: "the two VMs answer with different tasks", ok: new Set(answers).size === vms.length, detail: answers.join(", ") });
  return answers;
}

async function fetchText(url: string): Promise<string> {
  for (let attempt = 1; ; attempt++) {
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(5000) });
      return (await response.text()).trim();
    } catch (err) {
      if (attempt >= 10) return `no answer (${err instanceof Error ? err.message : String(err)})`;
      await sleep(1000);
    }
  }
}

/** A container on the manager resolves the dnsrr name and reaches every task over the overlay (VXLAN). */
async function fetchOverOverlay(manager: VmSpec, expected: string[], checks: Check[]): Promise<void> {
  const script = [
    "import socket, urllib.request",
    `ips = sorted({a[4][0] for a in socket.getaddrinfo("${SERVICE}", 8000)})`,
    `print(" ".join(urllib.request.urlopen(f"http://{ip}:8000/index.html", timeout=5).read().decode().strip() for ip in ips))`,
  ].join("\n");
  const result = await run("ssh", ssh(manager, ["docker", "run", "--rm", "--network", NETWORK, SMOKE_IMAGE, "python3", "-c", `'${script}'`]));
  const answers = result.stdout.trim().split(" ").filter(Boolean).sort();
  checks.push({
    name: "dnsrr name over the overlay reaches both VMs' tasks",
    ok: result.code === 0 && JSON.stringify(answers) === JSON.stringify([...expected].sort()),
    detail: result.code === 0 ? answers.join(", ") : result.stderr.trim().split("\n").slice(-1)[0] ?? "",
  });
}

async function cleanUp(manager: VmSpec, worker: VmSpec, loaded: string[]): Promise<void> {
  log("cleaning up: service, network, swarm");
  await run("ssh", ssh(manager, ["docker", "service", "rm", SERVICE]));
  await sleep(3000); // tasks must be gone before their network can be removed
  await run("ssh", ssh(manager, ["docker", "network", "rm", NETWORK]));
  await run("ssh", ssh(worker, ["docker", "swarm", "leave"]));
  await run("ssh", ssh(manager, ["docker", "swarm", "leave", "--force"]));
  if (loaded.length > 0) await run("ssh", ssh(worker, ["docker", "image", "rm", ...loaded]));
}
