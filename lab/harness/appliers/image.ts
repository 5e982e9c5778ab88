// docker:index:Image — builds the image on the engine its provider points at
// (the manager, over the SSH tunnel) with the docker CLI, then pushes it
// through the Engine API with the registry credentials from its inputs.
// Returns imageName and repoDigest like the provider.
//
// This machine's docker CLI has no buildx plugin, so builds use the classic
// builder (DOCKER_BUILDKIT=0) whatever builderVersion says; a Dockerfile that
// needs BuildKit-only syntax fails loudly here.
//
// The classic builder reads only <context>/.dockerignore, never the
// <dockerfile>.dockerignore that pulumi-docker and BuildKit use. So the context is
// not the directory itself but a tar of exactly the files the provider's walk
// hashes (components/buildContext.ts), piped into `docker build … -`: the engine
// sees precisely what build.contextDigest covers.
import * as fs from "node:fs";
import * as path from "node:path";
import { CONTEXT_TAR_ARGS, contextDigest, providerContextFiles, tarEntries, tarFileList } from "../../../components/buildContext";
import { fieldsOf, InputError, isObject, type JsonObject, opt, optBoolean, optString, optStringList, optStringMap, reqString } from "../json";
import { authForRegistry } from "../providers";
import { registryAuthHeader, type RegistryAuth } from "../service-spec";
import { runPiped, tempDir } from "../ssh";
import { inputsDiff } from "../steps";
import type { Applied, ApplyContext, ApplyRequest, ResourceKind } from "../types";

const IMAGE_FIELDS = ["imageName", "build", "registry", "skipPush", "buildOnPreview"] as const;
// contextDigest is computed, not given: the provider's Check (and `dockerImage.check`) adds it.
const BUILD_FIELDS = ["context", "dockerfile", "args", "platform", "target", "builderVersion", "network", "addHosts", "cacheFrom", "contextDigest"] as const;

/** Two builds at a time: the manager VM shares this machine's two cores. */
const MAX_PARALLEL_BUILDS = 2;
let runningBuilds = 0;
const waitingBuilds: (() => void)[] = [];

export interface BuildPlan {
  imageName: string;
  /** The context directory (absolute): the tar piped into `docker build` holds its files that the provider hashes. */
  contextDir: string;
  /** The Dockerfile (absolute); its `<dockerfile>.dockerignore` chooses the context's files. */
  dockerfile: string;
  /** The Dockerfile's path inside the context (forward slashes), as `-f` takes it with a context on stdin. */
  dockerfileInContext: string;
  /** `docker build` arguments; the last is "-": the context comes on stdin. */
  cliArgs: string[];
  push: boolean;
  registry?: RegistryAuth;
}

/** The context and Dockerfile of a docker.Image's inputs, resolved against projectDir as the provider does. */
function contextPaths(build: JsonObject, projectDir: string, at: string): { contextDir: string; dockerfile: string } {
  const contextDir = path.resolve(projectDir, optString(build, "context", at) ?? ".");
  const dockerfile = path.resolve(projectDir, optString(build, "dockerfile", at) ?? path.join(contextDir, "Dockerfile"));
  return { contextDir, dockerfile };
}

/** Pure: the `docker build` arguments for the inputs (paths resolved against projectDir; context on stdin). */
export function planBuild(inputs: JsonObject, projectDir: string, where: string): BuildPlan {
  const image = fieldsOf(inputs, where, IMAGE_FIELDS);
  const imageName = reqString(image, "imageName", where);
  if (/:latest$/.test(imageName) || !/:[\w][\w.-]{0,127}$/.test(imageName.split("/").pop() ?? "")) {
    throw new InputError(`${where}.imageName: "${imageName}" needs an explicit tag other than latest`);
  }
  const build = fieldsOf(opt(image, "build") ?? {}, `${where}.build`, BUILD_FIELDS);
  const at = `${where}.build`;
  const { contextDir, dockerfile } = contextPaths(build, projectDir, at);
  const dockerfileInContext = path.relative(contextDir, dockerfile).split(path.sep).join("/");
  if (dockerfileInContext === "" || dockerfileInContext.startsWith("../") || path.isAbsolute(dockerfileInContext)) {
    throw new InputError(`${at}.dockerfile: ${dockerfile} is not inside the context ${contextDir} (the harness sends the context as a tar)`);
  }
  const cliArgs = ["build", "-f", dockerfileInContext, "-t", imageName];
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
  cliArgs.push("-");
  const registryInput = opt(image, "registry");
  const registry = registryInput === undefined ? undefined : registryCredentials(registryInput, `${where}.registry`);
  return { imageName, contextDir, dockerfile, dockerfileInContext, cliArgs, push: !(optBoolean(image, "skipPush", where) ?? false), registry };
}

/**
 * The digest pulumi-docker's Check puts in `build.contextDigest` for these docker.Image
 * inputs (same inputs, same changes; not the same bytes): the Dockerfile's content and the
 * context files under `<dockerfile>.dockerignore`, else `<context>/.dockerignore`.
 */
export function imageContextDigest(inputs: JsonObject, projectDir: string): string {
  const where = "docker:index/image:Image";
  const build = fieldsOf(opt(inputs, "build") ?? {}, `${where}.build`, BUILD_FIELDS);
  const { contextDir, dockerfile } = contextPaths(build, projectDir, `${where}.build`);
  if (!fs.existsSync(dockerfile)) throw new InputError(`${where}.build.dockerfile: ${dockerfile} does not exist`);
  return contextDigest(providerContextFiles(contextDir, dockerfile).files, fs.readFileSync(dockerfile));
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

/**
 * docker:index/image:Image as pulumi-docker behaves: Check adds `build.contextDigest`
 * (so an edit in the context is a change of inputs) and, with a warning, the host's
 * platform when none is named; any input change is an in-place update (`~build`:
 * rebuild and push) except a change of registry credentials alone, which the
 * provider leaves out of its diff; Delete leaves the pushed image alone.
 */
export const dockerImage: ResourceKind = {
  check(req, ctx) {
    const build = isObject(req.inputs["build"]) ? req.inputs["build"] : {};
    const platform = typeof build["platform"] === "string" ? build["platform"] : undefined;
    if (platform === undefined) {
      ctx.warn(
        `${req.type} ${req.name}: Building your image for linux/amd64 architecture. To ensure you are building for the correct platform, ` +
          "consider explicitly setting the `platform` field on ImageBuildOptions. (the provider's warning)",
      );
    }
    return { ...req.inputs, build: { ...build, platform: platform ?? "linux/amd64", contextDigest: imageContextDigest(req.inputs, ctx.projectDir) } };
  },
  diff: (prior, req) => inputsDiff(prior.inputs, req.inputs, { ignore: (field) => field === "registry.username" || field === "registry.password" }),
  create: applyImage,
};

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
  };
}

async function build(plan: BuildPlan, dockerHost: string, ctx: ApplyContext, where: string): Promise<void> {
  const { files, ignoreFile } = providerContextFiles(plan.contextDir, plan.dockerfile);
  // `-f` names a file inside the tar: the Dockerfile goes in even if the ignore file leaves it out.
  const entries = tarEntries([...files, { path: plan.dockerfileInContext }]);
  const ignoreNote = ignoreFile ? `, context by ${path.relative(ctx.projectDir, ignoreFile)}` : "";
  ctx.progress(`building ${plan.imageName} (dockerfile ${path.relative(ctx.projectDir, plan.dockerfile)}, ${files.length} context files${ignoreNote})`);
  const started = Date.now();
  // A private DOCKER_CONFIG keeps the operator's own docker credentials out of the build.
  const env = { ...process.env, DOCKER_HOST: dockerHost, DOCKER_BUILDKIT: "0", DOCKER_CONFIG: tempDir() };
  const result = await runPiped(
    { file: "tar", args: [...CONTEXT_TAR_ARGS], cwd: plan.contextDir, stdin: tarFileList(entries) },
    { file: "docker", args: plan.cliArgs, env },
    (chunk) => {
      for (const line of chunk.split("\n")) if (/^Step \d+\/\d+ :/.test(line)) ctx.progress(line.slice(0, 160));
    },
  );
  if (result.producer.code !== 0) {
    throw new Error(`${where}: tar of the build context of ${plan.imageName} failed (exit ${result.producer.code}): ${result.producer.stderr.trim()}`);
  }
  if (result.code !== 0) {
    const output = `${result.stdout}\n${result.stderr}`.trim().split("\n").slice(-30).join("\n");
    throw new Error(`${where}: docker build of ${plan.imageName} failed (exit ${result.code}):\n${output}`);
  }
  ctx.progress(`built ${plan.imageName} in ${((Date.now() - started) / 1000).toFixed(1)}s (context ${(result.bytes / 1e6).toFixed(1)} MB)`);
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
