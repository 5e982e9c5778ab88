// command:remote:Command — runs `create` over SSH with the resource's own
// connection, environment and stdin, like @pulumi/command does on `pulumi up`
// for a new resource. Outputs are the inputs plus stdout/stderr (one trailing
// newline trimmed, as the provider does). A non-zero exit fails with the
// command's output, secrets masked.
import {
  fieldsOf,
  InputError,
  type JsonObject,
  opt,
  optNumber,
  optString,
  optStringMap,
  reqString,
} from "../json";
import { assertEnvAccepted, isConnectionFailure, runRemote, type RunResult, type SshTarget } from "../ssh";
import type { Applied, ApplyContext, ApplyRequest } from "../types";

const COMMAND_FIELDS = [
  "connection", "create", "update", "delete", "environment", "stdin", "triggers", "logging", "addPreviousOutputInEnv",
] as const;

/** Connection fields the harness honours. password/agent/proxy logins are not used by this project. */
const CONNECTION_FIELDS = ["host", "port", "user", "privateKey", "hostKey", "dialErrorLimit", "perDialTimeout"] as const;

export async function applyRemoteCommand(req: ApplyRequest, ctx: ApplyContext): Promise<Applied> {
  const path = `${req.type} ${req.name}`;
  const inputs = fieldsOf(req.inputs, path, COMMAND_FIELDS);
  const target = sshTarget(opt(inputs, "connection"), `${path}.connection`);
  const dialErrorLimit = dialLimit(opt(inputs, "connection"), `${path}.connection`);
  const create = optString(inputs, "create", path);
  const env = optStringMap(inputs, "environment", path) ?? {};
  const stdin = optString(inputs, "stdin", path);
  let result: RunResult = { code: 0, stdout: "", stderr: "" };
  if (create !== undefined && create !== "") {
    await assertEnvAccepted(target, Object.keys(env));
    result = await runWithDialRetries(target, create, { env, stdin }, dialErrorLimit, ctx);
    if (result.code !== 0) {
      throw new Error(
        `${path}: create command exited ${result.code} on ${target.user}@${target.host}:${target.port}\n` +
          indent(tail(`${result.stderr}\n${result.stdout}`.trim(), 40)),
      );
    }
  }
  return {
    id: `${req.name}-${Date.now().toString(36)}`,
    outputs: { ...inputs, stdout: trimOneNewline(result.stdout), stderr: trimOneNewline(result.stderr) },
    // The provider marks `connection` secret (it holds the key); secret inputs stay secret.
    secretOutputs: ["connection", ...req.secretInputKeys],
    outcome: create ? "ran" : "skipped",
  };
}

function sshTarget(value: JsonObject[keyof JsonObject] | undefined, path: string): SshTarget {
  const c = fieldsOf(value ?? undefined, path, CONNECTION_FIELDS);
  const privateKey = optString(c, "privateKey", path);
  if (!privateKey) throw new InputError(`${path}.privateKey: is required by the harness (it logs in with keys only)`);
  const port = optNumber(c, "port", path) ?? 22;
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new InputError(`${path}.port: ${port} is not a TCP port`);
  return {
    host: reqString(c, "host", path),
    port,
    user: optString(c, "user", path) ?? "root",
    privateKey,
    hostKey: optString(c, "hostKey", path),
  };
}

/** The provider retries a failing dial up to dialErrorLimit times (default 10). */
function dialLimit(value: JsonObject[keyof JsonObject] | undefined, path: string): number {
  const c = fieldsOf(value ?? undefined, path, CONNECTION_FIELDS);
  const limit = optNumber(c, "dialErrorLimit", path) ?? 10;
  return limit < 0 ? Number.POSITIVE_INFINITY : Math.max(1, limit);
}

async function runWithDialRetries(
  target: SshTarget,
  command: string,
  options: { env: Record<string, string>; stdin?: string },
  dialErrorLimit: number,
  ctx: ApplyContext,
): Promise<RunResult> {
  for (let attempt = 1; ; attempt++) {
    const result = await runRemote(target, command, options);
    if (!isConnectionFailure(result) || attempt >= dialErrorLimit) return result;
    ctx.progress(`cannot reach ${target.host}:${target.port} yet (${result.stderr.trim().split("\n").pop()}); retry ${attempt}/${dialErrorLimit}`);
    await new Promise((resolve) => setTimeout(resolve, 2000));
  }
}

function trimOneNewline(text: string): string {
  return text.endsWith("\n") ? text.slice(0, -1) : text;
}

function tail(text: string, lines: number): string {
  const all = text.split("\n");
  return all.length <= lines ? text : [`… (${all.length - lines} earlier lines)`, ...all.slice(-lines)].join("\n");
}

function indent(text: string): string {
  return text
    .split("\n")
    .map((line) => `    ${line}`)
    .join("\n");
}
