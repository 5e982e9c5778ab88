// Pure helpers for lab/stack.ts, lab/run.ts, lab/evidence.ts and the e2e
// test: checking the dev stack against the lab, parsing `docker service ps`
// and `docker node ls`, and formatting tables. No I/O (tests/lab/stack-plan.test.ts).

/** lab/.state/lab.json as `lab up` writes it. */
export interface LabDescription {
  network: string;
  subnet: string;
  sshUser: string;
  sshPort: number;
  sshKeyPath: string;
  knownHostsPath: string;
  vms: { name: string; role: "manager" | "worker"; address: string }[];
}

/** The parts of a stack node this check needs. */
export interface StackNode {
  name: string;
  host: string;
  role: "manager" | "worker";
  sshPort: number;
  user: string;
}

/** Every way the stack's nodes differ from the running lab's VMs (empty when they match). */
export function labStackProblems(lab: LabDescription, nodes: readonly StackNode[]): string[] {
  const problems: string[] = [];
  const labAddresses = lab.vms.map((vm) => vm.address);
  if (nodes.length !== lab.vms.length) {
    problems.push(`the stack lists ${nodes.length} nodes but the lab runs ${lab.vms.length} VMs (npm run lab:up -- --vms ${nodes.length})`);
  }
  for (const [i, node] of nodes.entries()) {
    const vm = lab.vms.find((candidate) => candidate.address === node.host);
    if (!vm) {
      problems.push(`nodes[${i}] (${node.name}): host ${node.host} is not a lab VM (${labAddresses.join(", ")})`);
      continue;
    }
    if (vm.role !== node.role) problems.push(`nodes[${i}] (${node.name}): role ${node.role}, but ${vm.name} is the lab's ${vm.role}`);
    if (node.sshPort !== lab.sshPort) problems.push(`nodes[${i}] (${node.name}): sshPort ${node.sshPort}, the lab's sshd listens on ${lab.sshPort}`);
    if (node.user !== lab.sshUser) problems.push(`nodes[${i}] (${node.name}): user ${node.user}, the lab's key logs in as ${lab.sshUser}`);
  }
  return problems;
}

/** `docker service ps --format` for one task per line. */
export const RUNNING_TASKS_FORMAT = "{{.Name}}|{{.Node}}|{{.CurrentState}}";

export interface TaskRow {
  service: string;
  /** e.g. ai-system_worker-go.2 */
  task: string;
  /** The swarm node (= the lab VM's hostname). */
  node: string;
  /** e.g. "Running 2 minutes ago" */
  state: string;
}

/** Parses `docker service ps` lines; keeps only tasks that are actually running. */
export function parseTaskLines(service: string, output: string): TaskRow[] {
  const rows: TaskRow[] = [];
  for (const line of output.split("\n")) {
    const [task, node, state] = line.trim().split("|");
    if (!task || !node || !state) continue;
    if (state.startsWith("Running")) rows.push({ service, task, node, state });
  }
  return rows;
}

export interface NodeRow {
  hostname: string;
  status: string;
  availability: string;
  managerStatus: string;
}

export const NODE_LS_FORMAT = "{{.Hostname}}|{{.Status}}|{{.Availability}}|{{.ManagerStatus}}";

export function parseNodeLines(output: string): NodeRow[] {
  return output
    .split("\n")
    .map((line) => line.trim().split("|"))
    .filter((parts) => parts.length === 4 && parts[0] !== "")
    .map(([hostname, status, availability, managerStatus]) => ({
      hostname: hostname as string,
      status: status as string,
      availability: availability as string,
      managerStatus: managerStatus as string,
    }));
}

/** Worker language of a service name ("ai-system_worker-go" → "go"), or undefined. */
export function workerLanguageOf(service: string): string | undefined {
  return /_worker-([a-z]+)$/.exec(service)?.[1];
}

/** language → the distinct VMs running its worker replicas. */
export function workerSpread(tasks: readonly TaskRow[]): Map<string, Set<string>> {
  const spread = new Map<string, Set<string>>();
  for (const task of tasks) {
    const language = workerLanguageOf(task.service);
    if (language === undefined) continue;
    const nodes = spread.get(language) ?? new Set<string>();
    nodes.add(task.node);
    spread.set(language, nodes);
  }
  return spread;
}

/** A fixed-width text table (for terminals). */
export function textTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] ?? "").length)));
  const line = (cells: readonly string[]) => cells.map((cell, i) => cell.padEnd(widths[i] ?? 0)).join("  ").trimEnd();
  return [line(header), ...rows.map(line)].join("\n");
}

/** A Markdown table; `|` and newlines in cells are escaped so a cell cannot break the table. */
export function markdownTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const cell = (text: string) => text.replace(/\|/g, "\\|").replace(/\r?\n/g, " ");
  const line = (cells: readonly string[]) => `| ${cells.map(cell).join(" | ")} |`;
  return [line(header), line(header.map(() => "---")), ...rows.map(line)].join("\n");
}

/** Placement as table rows: service, replica, VM, state (sorted by service, then task). */
export function placementRows(tasks: readonly TaskRow[]): string[][] {
  return [...tasks]
    .sort((a, b) => a.service.localeCompare(b.service) || a.task.localeCompare(b.task, "en", { numeric: true }))
    .map((task) => [task.service, task.task, task.node, task.state]);
}

export const PLACEMENT_HEADER = ["SERVICE", "REPLICA", "VM", "STATE"] as const;

/** One VM's answer to GET /healthz on the web port (undefined when it did not answer). */
export interface HealthAnswer {
  vm: string;
  body: string | undefined;
}

/**
 * The VM whose master leads: the one whose /healthz says `leader: true`
 * (with two masters the standby says false). Undefined when none does.
 */
export function leaderOf(answers: readonly HealthAnswer[]): string | undefined {
  for (const answer of answers) {
    if (answer.body === undefined) continue;
    try {
      const report = JSON.parse(answer.body) as { leader?: unknown };
      if (report.leader === true) return answer.vm;
    } catch {
      // Not a health report (another server on the port): not a leader.
    }
  }
  return undefined;
}

/**
 * The page's current URL: with host-mode publishing the page is on the VM that
 * runs the leading master (the stack's webUrl names the primary manager);
 * with the routing mesh every node serves it, so the stack's URL holds.
 */
export function currentWebUrl(stackWebUrl: string, publishMode: "host" | "ingress", leaderAddress: string | undefined): string {
  if (publishMode !== "host" || leaderAddress === undefined) return stackWebUrl;
  const url = new URL(stackWebUrl);
  url.hostname = leaderAddress;
  return url.toString().replace(/\/$/, "");
}

/** What runs where, for `npm run lab`: the master (its leader), the broker, the registry, each worker language. */
export function roleLines(tasks: readonly TaskRow[], stackName: string, leaderVm: string | undefined): string[] {
  const vmsOf = (short: string) => [...new Set(tasks.filter((task) => task.service === `${stackName}_${short}`).map((task) => task.node))].sort();
  const masters = vmsOf("master");
  const standbys = masters.filter((vm) => vm !== leaderVm);
  const master =
    masters.length === 0
      ? "not running"
      : leaderVm === undefined
        ? `${masters.join(", ")} (no leader answered /healthz)`
        : `${leaderVm} (leader)${standbys.length > 0 ? `, standby on ${standbys.join(", ")}` : ""}`;
  const lines = [`master:   ${master}`, `broker:   ${vmsOf("mosquitto").join(", ") || "not running"}`, `registry: ${vmsOf("registry").join(", ") || "not running"}`];
  for (const [language, vms] of [...workerSpread(tasks)].sort(([a], [b]) => a.localeCompare(b))) {
    lines.push(`${`worker-${language}:`.padEnd(15)} ${[...vms].sort((a, b) => a.localeCompare(b, "en", { numeric: true })).join(", ")}`);
  }
  return lines;
}
