// command:remote:Command — as @pulumi/command 1.x behaves (provider source:
// commandController.go, commandOutputs.go):
// - create runs `create` over SSH with the resource's connection, environment
//   and stdin; outputs are the inputs plus stdout/stderr (one trailing newline
//   trimmed);
// - a change to `triggers` replaces the resource; any other input change is an
//   update, which runs `update` if set, else `create`, with the new inputs;
// - delete runs the STORED `delete` with the stored connection, environment
//   and stdin;
// - unless addPreviousOutputInEnv is false, update and delete also send the
//   previous stdout/stderr as PULUMI_COMMAND_STDOUT/STDERR; a server that
//   refuses them (AcceptEnv) gets the provider's warning, which a clean deploy
//   must not print.
// A non-zero exit fails with the command's output, secrets masked.
import type { StoredResource } from "../harness-state";
import { fieldsOf, InputError, type JsonObject, opt, optBoolean, optNumber, optString, optStringMap, reqString } from "../json";
import { inputsDiff } from "../steps";
import { assertEnvAccepted, envRefused, isConnectionFailure, runRemote, type RunResult, type SshTarget } from "../ssh";
import type { Applied, ApplyContext, ApplyRequest, ResourceKind } from "../types";

const COMMAND_FIELDS = [
  "connection", "create", "update", "delete", "environment", "stdin", "triggers", "logging", "addPreviousOutputInEnv",
] as const;

/** Connection fields the harness honours. password/agent/proxy logins are not used by this project. */
const CONNECTION_FIELDS = ["host", "port", "user", "privateKey", "hostKey", "dialErrorLimit", "perDialTimeout"] as const;

export const remoteCommand: ResourceKind = {
  diff: (prior, req) => inputsDiff(prior.inputs, req.inputs, { replaceOn: ["triggers"] }),

  async create(req, ctx) {
    return runPhase("create", req.inputs, undefined, `${req.type} ${req.name}`, req.secretInputKeys, ctx);
  },

  async update(req, prior, ctx) {
    const phase = optString(req.inputs, "update", req.type) !== undefined ? "update" : "create";
    return runPhase(phase, req.inputs, prior, `${req.type} ${req.name}`, req.secretInputKeys, ctx);
  },

  async delete(prior, ctx) {
    if (optString(prior.inputs, "delete", prior.type) === undefined) return;
    await runPhase("delete", prior.inputs, prior, `${prior.type} ${prior.name}`, new Set(prior.secretInputKeys), ctx);
  },
};

async function runPhase(
  phase: "create" | "update" | "delete",
  raw: JsonObject,
  previous: StoredResource | undefined,
  path: string,
  secretInputKeys: Set<string>,
  ctx: ApplyContext,
): Promise<Applied> {
  const inputs = fieldsOf(raw, path, COMMAND_FIELDS);
  const target = sshTarget(opt(inputs, "connection"), `${path}.connection`);
  const dialErrorLimit = dialLimit(opt(inputs, "connection"), `${path}.connection`);
  const script = optString(inputs, phase, path);
  const env = { ...(optStringMap(inputs, "environment", path) ?? {}) };
  const stdin = optString(inputs, "stdin", path);
  if (env && Object.keys(env).length > 0) await assertEnvAccepted(target, Object.keys(env));
  if (previous && (optBoolean(inputs, "addPreviousOutputInEnv", path) ?? true)) {
    await addPreviousOutput(env, previous, target, path, ctx);
  }
  let result: RunResult = { code: 0, stdout: "", stderr: "" };
  if (script !== undefined && script !== "") {
    result = await runWithDialRetries(target, script, { env, stdin }, dialErrorLimit, ctx);
    showLogged(optString(inputs, "logging", path) ?? "stdoutAndStderr", result, ctx);
    if (result.code !== 0) {
      throw new Error(
        `${path}: ${phase} command exited ${result.code} on ${target.user}@${target.host}:${target.port}\n` +
          indent(tail(`${result.stderr}\n${result.stdout}`.trim(), 40)),
      );
    }
  }
  return {
    id: `${path.split(" ").pop()}-${Date.now().toString(36)}`,
    outputs: { ...inputs, stdout: trimOneNewline(result.stdout), stderr: trimOneNewline(result.stderr) },
    // The provider marks `connection` secret (it holds the key); secret inputs stay secret.
    secretOutputs: ["connection", ...secretInputKeys],
  };
}

/** PULUMI_COMMAND_STDOUT/STDERR from the stored outputs; a refused variable is the provider's warning, not an error. */
async function addPreviousOutput(env: Record<string, string>, previous: StoredResource, target: SshTarget, path: string, ctx: ApplyContext): Promise<void> {
  const outputs = [
    ["PULUMI_COMMAND_STDOUT", previous.outputs["stdout"]],
    ["PULUMI_COMMAND_STDERR", previous.outputs["stderr"]],
  ] as const;
  for (const [name, value] of outputs) {
    if (typeof value !== "string" || value === "") continue;
    if ((await envRefused(target, [name])).length > 0) {
      ctx.warn(
        `${path}: Unable to set '${name}'. This only works if your SSH server is configured to accept these variables via AcceptEnv ` +
          "(the provider's warning; set addPreviousOutputInEnv: false on commands that do not read it)",
      );
      continue;
    }
    if (ctx.masker.mask(value) !== value) {
      // The harness passes variables on ssh's command line, where `ps` would show a secret: refuse instead.
      throw new InputError(`${path}: addPreviousOutputInEnv would send a secret stdout through the environment; set addPreviousOutputInEnv: false`);
    }
    env[name] = value;
  }
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

/**
 * The provider streams what `logging` names (default stdoutAndStderr; "none" hides all) to the engine,
 * which shows it under the resource: e.g. the members command's "removing vm2 (down)…". Masked.
 */
function showLogged(logging: string, result: RunResult, ctx: ApplyContext): void {
  const streams = { stdout: ["stdout", "stdoutAndStderr"], stderr: ["stderr", "stdoutAndStderr"] };
  const shown = [
    ...(streams.stdout.includes(logging) ? [result.stdout] : []),
    ...(streams.stderr.includes(logging) ? [result.stderr] : []),
  ];
  for (const line of shown.join("\n").split("\n")) if (line.trim() !== "") ctx.progress(`| ${ctx.masker.mask(line)}`);
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
