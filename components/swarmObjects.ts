// Docker secrets and configs, named after their content. Both are immutable in
// Swarm, so each is named `<stack>_<object>-<8 hex of sha256 of its content>`:
// a changed value becomes a new object, the services using it move to it in a
// rolling update, and the old one is deleted afterwards. The hash of a long
// random or operator secret reveals nothing, so the name is not secret and
// stays readable in diffs.
import { createHash } from "node:crypto";
import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { serviceName, stackLabels, type ConfigMount, type SecretMount } from "./specs";

function shortHash(content: string): string {
  return createHash("sha256").update(content).digest("hex").slice(0, 8);
}

export interface SwarmSecretArgs {
  /** Prefix of the Docker object's name (the stack name). */
  stackName: string;
  /** The object's own part of its name, e.g. "grpc-token" → ai-system_grpc-token-1a2b3c4d. */
  objectName: string;
  /** The file it is mounted as under /run/secrets/. */
  fileName: string;
  value: pulumi.Output<string>;
}

/** A Docker secret named after its content, and how a service mounts it (/run/secrets/<fileName>). */
export function swarmSecret(resourceName: string, args: SwarmSecretArgs, opts: pulumi.CustomResourceOptions): SecretMount {
  const name = pulumi.unsecret(args.value.apply((plain) => `${serviceName(args.stackName, args.objectName)}-${shortHash(plain)}`));
  const secret = new docker.Secret(
    resourceName,
    {
      name,
      data: pulumi.secret(args.value.apply((plain) => Buffer.from(plain, "utf8").toString("base64"))),
      labels: stackLabels(args.stackName),
    },
    opts,
  );
  return { secretId: secret.id, secretName: secret.name, fileName: args.fileName };
}

/** A Docker config (a non-secret file) named after its content. */
export function swarmConfig(
  resourceName: string,
  args: { stackName: string; objectName: string; content: string },
  opts: pulumi.CustomResourceOptions,
): ConfigMount {
  const config = new docker.ServiceConfig(
    resourceName,
    {
      name: `${serviceName(args.stackName, args.objectName)}-${shortHash(args.content)}`,
      data: Buffer.from(args.content, "utf8").toString("base64"),
      labels: stackLabels(args.stackName),
    },
    opts,
  );
  return { configId: config.id, configName: config.name };
}

/** A generated password: a secret kept in the stack state, so it is stable across deploys. */
export function generatedPassword(name: string, length: number, opts: pulumi.CustomResourceOptions): pulumi.Output<string> {
  return new random.RandomPassword(name, { length, special: false }, opts).result;
}
