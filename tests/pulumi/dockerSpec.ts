// The rules the Docker engine (and the docker provider) apply to a service
// spec, for the parts this program sets. No Docker engine runs here, so the
// tests check the specs against these rules; the live lab harness applies
// them to a real swarm.
export interface KnownObjects {
  secretIds: Set<string>;
  networkIds: Set<string>;
}

const DURATION = /^\d+(ns|us|ms|s|m|h)$/;

function durationMs(value: string): number {
  const match = /^(\d+)(ns|us|ms|s|m|h)$/.exec(value);
  if (!match) return NaN;
  const unit = { ns: 1e-6, us: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[match[2] as "ns" | "us" | "ms" | "s" | "m" | "h"];
  return Number(match[1]) * unit;
}

type Json = Record<string, unknown>;
const obj = (value: unknown): Json => (typeof value === "object" && value !== null ? (value as Json) : {});

export function dockerSpecProblems(inputs: Json, known: KnownObjects): string[] {
  const problems: string[] = [];
  const name = String(inputs["name"] ?? "");
  if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$/.test(name)) problems.push(`bad service name ${name}`);

  const taskSpec = obj(inputs["taskSpec"]);
  const container = obj(taskSpec["containerSpec"]);
  const image = String(container["image"] ?? "");
  if (!image) problems.push("no image");
  if (/:latest$/.test(image) || !/:[A-Za-z0-9_.-]+$/.test(image)) problems.push(`image ${image} has no explicit tag (or :latest)`);

  const endpoint = obj(inputs["endpointSpec"]);
  const mode = endpoint["mode"] ?? "vip";
  if (mode !== "vip" && mode !== "dnsrr") problems.push(`endpoint mode ${String(mode)}`);
  const ports = Array.isArray(endpoint["ports"]) ? (endpoint["ports"] as Json[]) : [];
  const published = new Set<number>();
  for (const port of ports) {
    const publishMode = port["publishMode"] ?? "ingress";
    if (publishMode !== "ingress" && publishMode !== "host") problems.push(`publish mode ${String(publishMode)}`);
    // The engine's own rule: "port published with ingress mode can't be used with dnsrr mode".
    if (mode === "dnsrr" && publishMode === "ingress") problems.push("dnsrr with an ingress-published port");
    const number = Number(port["publishedPort"]);
    if (published.has(number)) problems.push(`port ${number} published twice`);
    published.add(number);
    if (!(Number(port["targetPort"]) > 0)) problems.push("port without target");
  }

  const replicas = obj(obj(inputs["mode"])["replicated"])["replicas"];
  if (typeof replicas !== "number" || replicas < 0) problems.push(`replicas ${String(replicas)}`);

  const update = obj(inputs["updateConfig"]);
  if (!["pause", "continue", "rollback"].includes(String(update["failureAction"]))) problems.push("update failureAction");
  const rollback = obj(inputs["rollbackConfig"]);
  if (!["pause", "continue"].includes(String(rollback["failureAction"]))) problems.push("rollback failureAction");
  for (const [key, value] of [
    ["update.delay", update["delay"]], ["update.monitor", update["monitor"]],
    ["rollback.monitor", rollback["monitor"]], ["stopGracePeriod", container["stopGracePeriod"]],
  ] as const) {
    if (value !== undefined && !DURATION.test(String(value))) problems.push(`${key} is not a duration: ${String(value)}`);
  }

  const env = obj(container["env"]);
  const grace = env["SHUTDOWN_GRACE_MS"];
  if (grace !== undefined && !(durationMs(String(container["stopGracePeriod"])) >= Number(grace))) {
    problems.push("stop grace period shorter than SHUTDOWN_GRACE_MS");
  }

  const placement = obj(taskSpec["placement"]);
  if (placement["maxReplicas"] !== undefined && !(Number(placement["maxReplicas"]) >= 1)) problems.push("maxReplicas < 1");

  const targets = new Set<string>();
  for (const secret of (container["secrets"] as Json[] | undefined) ?? []) {
    if (!known.secretIds.has(String(secret["secretId"]))) problems.push(`unknown secret ${String(secret["secretId"])}`);
    const target = String(secret["fileName"]);
    if (targets.has(target)) problems.push(`two secrets at ${target}`);
    targets.add(target);
  }
  for (const network of (taskSpec["networksAdvanceds"] as Json[] | undefined) ?? []) {
    if (!known.networkIds.has(String(network["id"]))) problems.push(`unknown network ${String(network["id"])}`);
  }
  for (const mount of (container["mounts"] as Json[] | undefined) ?? []) {
    if (!["bind", "volume", "tmpfs"].includes(String(mount["type"]))) problems.push(`mount type ${String(mount["type"])}`);
    if (!String(mount["target"]).startsWith("/")) problems.push("mount target not absolute");
  }
  const limits = obj(obj(taskSpec["resources"])["limits"]);
  if (limits["nanoCpus"] !== undefined && Number(limits["nanoCpus"]) < 1_000_000) problems.push("nanoCpus below 0.001 CPU");
  return problems;
}
