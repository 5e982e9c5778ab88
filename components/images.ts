// Images: the master and the three workers, built by the docker provider from
// images/<name>/Dockerfile with the repository root as build context (so every
// Dockerfile can COPY proto/), and pushed to the private registry as
// <registry>/ai-swarm/<name>:<content tag>. By default the build runs on the
// manager's engine over SSH, so the operator needs no local Docker.
//
// Each image's context is narrowed by images/<name>/Dockerfile.dockerignore, which the
// provider finds as "<dockerfile>.dockerignore" (relative to the working directory, as
// `dockerfile` is given here); the content tag hashes the same files the provider hashes
// into build.contextDigest (components/buildContext.ts), so an edit under one image's folder
// changes only that image's build inputs.
import * as path from "node:path";
import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import type { StackConfig, WorkerLanguage } from "./config";
import { contentTag, dockerfileOf } from "./buildContext";
import { FORMER } from "./aliases";
import { childOf } from "./options";

export const IMAGE_NAMES = ["master", "worker-python", "worker-go", "worker-java"] as const;
export type ImageName = (typeof IMAGE_NAMES)[number];
/** images/etcd: built only in a stack with more than one manager (components/etcd.ts). */
export const ETCD_IMAGE_NAME = "etcd";
export type BuiltImageName = ImageName | typeof ETCD_IMAGE_NAME;

export function workerImageName(language: WorkerLanguage): ImageName {
  return `worker-${language}`;
}

/** The Dockerfile ARGs that choose each image's base images (see images/<name>/Dockerfile). */
export function buildArgsFor(name: BuiltImageName, baseImages: StackConfig["baseImages"]): Record<string, string> {
  const args: Record<string, string | undefined> =
    name === ETCD_IMAGE_NAME
      ? { ETCD_IMAGE: baseImages.etcd, RUNTIME_IMAGE: baseImages.runtime }
      : name === "master"
      ? { NODE_IMAGE: baseImages.node }
      : name === "worker-python"
        ? { PYTHON_IMAGE: baseImages.python }
        : name === "worker-go"
          ? { GO_IMAGE: baseImages.go }
          : { MAVEN_IMAGE: baseImages.maven, RUNTIME_IMAGE: baseImages.runtime };
  // An unset base image keeps the Dockerfile's default (the official image).
  return Object.fromEntries(Object.entries(args).filter((entry): entry is [string, string] => entry[1] !== undefined));
}

export function imageRef(registryAddress: string, name: BuiltImageName, tag: string): string {
  return `${registryAddress}/ai-swarm/${name}:${tag}`;
}

/** Where the images are pushed, and the login for it. */
export interface RegistryLogin {
  /** host:port of the private registry. */
  address: string;
  username: string;
  password: pulumi.Input<string>;
}

export interface AppImagesArgs {
  registry: RegistryLogin;
  /** The base images the Dockerfiles build from (config baseImages; unset keeps each Dockerfile's default). */
  baseImages: StackConfig["baseImages"];
  /** The platform every image is built for, e.g. linux/amd64. */
  platform: string;
  /** The repository root: the build context. */
  repoRoot: string;
  /** Also build images/etcd (a stack with more than one manager). */
  etcd?: boolean;
}

export class AppImages extends pulumi.ComponentResource {
  /**
   * Each image as the services declare it: repository@sha256:digest of the pushed
   * content (the image's repoDigest). Docker keeps a digest as it is given, so the
   * state matches the declaration, and a service rolls exactly when its image's
   * content changed (a new tag over the same content changes nothing).
   */
  readonly refs: Record<ImageName, pulumi.Output<string>>;
  readonly images: Record<ImageName, docker.Image>;
  /** images/etcd, when `etcd` was asked for. */
  readonly etcdRef?: pulumi.Output<string>;

  /** The engine that builds and pushes (the manager's, or the operator's local one) goes in `provider`/`providers`; the registry's readiness in `dependsOn`. */
  constructor(name: string, args: AppImagesArgs, opts?: pulumi.ComponentResourceOptions) {
    super("ai-swarm:index:AppImages", name, {}, { ...opts, aliases: [...(opts?.aliases ?? []), { type: FORMER.images.type }] });
    const { registry, repoRoot } = args;
    // Relative to where `pulumi` runs (the project directory), so state does not depend on the operator's paths.
    const context = path.relative(process.cwd(), repoRoot) || ".";
    const build = (imageName: BuiltImageName): docker.Image => {
      const buildArgs = buildArgsFor(imageName, args.baseImages);
      const tag = contentTag(repoRoot, imageName, buildArgs);
      return new docker.Image(
        `${name}-${imageName}`,
        {
          imageName: imageRef(registry.address, imageName, tag),
          build: {
            context,
            dockerfile: path.join(context, dockerfileOf(imageName)),
            args: buildArgs,
            // Always named: the provider warns on every preview when it has to guess.
            platform: args.platform,
          },
          registry: { server: registry.address, username: registry.username, password: registry.password },
        },
        childOf(this, opts, { aliases: [{ name: imageName }] }),
      );
    };
    const images = {} as Record<ImageName, docker.Image>;
    const refs = {} as Record<ImageName, pulumi.Output<string>>;
    for (const imageName of IMAGE_NAMES) {
      const image = build(imageName);
      images[imageName] = image;
      refs[imageName] = image.repoDigest;
    }
    this.images = images;
    this.refs = refs;
    if (args.etcd === true) this.etcdRef = build(ETCD_IMAGE_NAME).repoDigest;
    this.registerOutputs({ refs, ...(this.etcdRef && { etcdRef: this.etcdRef }) });
  }
}
