// docker:index:Image — builds the image on the engine its provider points at
// (the manager, over the SSH tunnel) with the docker CLI, then pushes it
// through the Engine API with the registry credentials from its inputs.
// Returns imageName and repoDigest like the provider.
//
// This machine's docker CLI has no buildx plugin, so builds use the classic
// builder (DOCKER_BUILDKIT=0) whatever builderVersion says; a Dockerfile that
// needs BuildKit-only syntax fails loudly here.
import * as fs from "node:fs";
import * as path from "node:path";
import { fieldsOf, InputError, type JsonObject, opt, optBoolean, optString, optStringList, optStringMap, reqString } from "../json";
import { authForRegistry } from "../providers";
import { registryAuthHeader, type RegistryAuth } from "../service-spec";
import { runProcess, tempDir } from "../ssh";
import type { Applied, ApplyContext, ApplyRequest } from "../types";

const IMAGE_FIELDS = ["imageName", "build", "registry", "skipPush", "buildOnPreview"] as const;
const BUILD_FIELDS = ["context", "dockerfile", "args", "platform", "target", "builderVersion", "network", "addHosts", "cacheFrom"] as const;

/** Two builds at a time: the manager VM shares this machine's two cores. */
const MAX_PARALLEL_BUILDS = 2;
let runningBuilds = 0;
const waitingBuilds: (() => void)[] = [];

export interface BuildPlan {
  imageName: string;
  contextDir: string;
  dockerfile: string;
  cliArgs: string[];
  push: boolean;
  registry?: RegistryAuth;
}

/** Pure: the `docker build` arguments for the inputs (paths resolved against projectDir). */
export function planBuild(inputs: JsonObject, projectDir: string, where: string): BuildPlan {
  const image = fieldsOf(inputs, where, IMAGE_FIELDS);
  const imageName = reqString(image, "imageName", where);
  if (/:latest$/.test(imageName) || !/:[\w][\w.-]{0,127}$/.test(imageName.split("/").pop() ?? "")) {
    throw new InputError(`${where}.imageName: "${imageName}" needs an explicit tag other than latest`);
  }
  const build = fieldsOf(opt(image, "build") ?? {}, `${where}.build`, BUILD_FIELDS);
  const at = `${where}.build`;
  const contextDir = path.resolve(projectDir, optString(build, "context", at) ?? ".");
  const dockerfile = path.resolve(projectDir, optString(build, "dockerfile", at) ?? path.join(contextDir, "Dockerfile"));
  const cliArgs = ["build", "-f", dockerfile, "-t", imageName];
  for (const [key, value] of Object.entries(optStringMap(build, "args", at) ?? {}).sort()) cliArgs.push("--build-arg", `${key}=${value}`);
  const platform = optString(build, "platform", at);
  if (platform) cliArgs.push("--platform", platform);
  const target = optString(build, "target", at);
  if (target) cliArgs.push("--target", target);
  const network = optString(build, "network", at);
  if (network) cliArgs.push("--network", network);
  for (const host of optStringList(build, "addHosts", at) ?? []) cliArgs.push("--add-host", host);
  const cacheFrom = opt(build, "cacheFrom");
  if (cacheFrom !== undefined) {
    const images = optStringList(fieldsOf(cacheFrom, `${at}.cacheFrom`, ["images"]), "images", `${at}.cacheFrom`) ?? [];
    for (const from of images) cliArgs.push("--cache-from", from);
  }
  cliArgs.push(contextDir);
  const registryInput = opt(image, "registry");
  const registry = registryInput === undefined ? undefined : registryCredentials(registryInput, `${where}.registry`);
  return { imageName, contextDir, dockerfile, cliArgs, push: !(optBoolean(image, "skipPush", where) ?? false), registry };
}

function registryCredentials(value: JsonObject[keyof JsonObject], where: string): RegistryAuth {
  const f = fieldsOf(value ?? undefined, where, ["server", "username", "password"]);
  return { serverAddress: optString(f, "server", where) ?? "", username: optString(f, "username", where), password: optString(f, "password", where) };
}

/** "host:5000/ai-swarm/master:abc" → repository "host:5000/ai-swarm/master", tag "abc". */
export function splitImageName(imageName: string): { repository: string; tag: string; registryHost: string } {
  const slash = imageName.lastIndexOf("/");
  const colon = imageName.lastIndexOf(":");
  const hasTag = colon > slash;
  const repository = hasTag ? imageName.slice(0, colon) : imageName;
  const firstPart = repository.split("/")[0] as string;
  const registryHost = repository.includes("/") && /[.:]|^localhost$/.test(firstPart) ? firstPart : "docker.io";
  return { repository, tag: hasTag ? imageName.slice(colon + 1) : "latest", registryHost };
}

export async function applyImage(req: ApplyRequest, ctx: ApplyContext): Promise<Applied> {
  const where = `${req.type} ${req.name}`;
  const plan = planBuild(req.inputs, ctx.projectDir, where);
  if (!fs.existsSync(plan.dockerfile)) throw new InputError(`${where}.build.dockerfile: ${plan.dockerfile} does not exist`);
  const endpoint = await ctx.providers.docker(req.provider, where);
  await withBuildSlot(() => build(plan, endpoint.dockerHost, ctx, where));
  const { repository, tag, registryHost } = splitImageName(plan.imageName);
  let digest = "";
  if (plan.push) {
    const auth = plan.registry?.serverAddress ? plan.registry : authForRegistry(endpoint.registryAuth, registryHost);
    if (!auth) throw new InputError(`${where}.registry: no credentials for ${registryHost} (set registry or the provider's registryAuth)`);
    ctx.progress(`pushing ${plan.imageName}`);
    const started = Date.now();
    await endpoint.engine.stream(
      "POST",
      `/images/${encodeURIComponent(repository)}/push?tag=${encodeURIComponent(tag)}`,
      { "X-Registry-Auth": registryAuthHeader({ ...auth, serverAddress: auth.serverAddress || registryHost }) },
      (line) => {
        if (line.aux?.Digest) digest = line.aux.Digest;
      },
    );
    if (!digest) throw new Error(`${where}: push of ${plan.imageName} reported no digest`);
    ctx.progress(`pushed ${repository}@${digest} in ${((Date.now() - started) / 1000).toFixed(1)}s`);
  }
  return {
    id: digest ? `${repository}@${digest}` : plan.imageName,
    outputs: {
      ...req.inputs,
      imageName: plan.imageName,
      baseImageName: plan.imageName,
      repoDigest: digest ? `${repository}@${digest}` : "",
      registryServer: plan.registry?.serverAddress || registryHost,
      context: path.relative(ctx.projectDir, plan.contextDir) || ".",
      dockerfile: path.relative(plan.contextDir, plan.dockerfile),
    },
    secretOutputs: [...req.secretInputKeys],
    outcome: "created",
  };
}

async function build(plan: BuildPlan, dockerHost: string, ctx: ApplyContext, where: string): Promise<void> {
  ctx.progress(`building ${plan.imageName} (dockerfile ${path.relative(ctx.projectDir, plan.dockerfile)})`);
  const started = Date.now();
  // A private DOCKER_CONFIG keeps the operator's own docker credentials out of the build.
  const env = { ...process.env, DOCKER_HOST: dockerHost, DOCKER_BUILDKIT: "0", DOCKER_CONFIG: tempDir() };
  const result = await runProcess("docker", plan.cliArgs, undefined, (chunk) => {
    for (const line of chunk.split("\n")) if (/^Step \d+\/\d+ :/.test(line)) ctx.progress(line.slice(0, 160));
  }, env);
  if (result.code !== 0) {
    const output = `${result.stdout}\n${result.stderr}`.trim().split("\n").slice(-30).join("\n");
    throw new Error(`${where}: docker build of ${plan.imageName} failed (exit ${result.code}):\n${output}`);
  }
  ctx.progress(`built ${plan.imageName} in ${((Date.now() - started) / 1000).toFixed(1)}s`);
}

async function withBuildSlot<T>(work: () => Promise<T>): Promise<T> {
  if (runningBuilds >= MAX_PARALLEL_BUILDS) await new Promise<void>((resolve) => waitingBuilds.push(resolve));
  runningBuilds++;
  try {
    return await work();
  } finally {
    runningBuilds--;
    waitingBuilds.shift()?.();
  }
}
