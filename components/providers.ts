// The docker provider(s): one talking to the manager's engine over SSH (for
// swarm objects, and for builds by default), and, when build.onManager is
// false, one for the operator's local engine.
//
// The docker provider's ssh:// transport runs the system `ssh` client, which
// cannot take a key as a string: it uses the operator's ssh-agent or
// ~/.ssh config, or the file named by the sshPrivateKeyPath setting.
import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import type { StackConfig } from "./config";

export function managerDockerHost(config: Pick<StackConfig, "manager">): string {
  const { user, host, sshPort } = config.manager;
  return `ssh://${user}@${host}:${sshPort}`;
}

export function managerSshOpts(config: Pick<StackConfig, "sshPrivateKeyPath">): string[] {
  const opts = ["-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=accept-new"];
  if (config.sshPrivateKeyPath !== undefined) opts.push("-o", "IdentitiesOnly=yes", "-i", config.sshPrivateKeyPath);
  return opts;
}

export interface DockerProviders {
  manager: docker.Provider;
  build: docker.Provider;
}

export function createDockerProviders(config: StackConfig, opts?: pulumi.CustomResourceOptions): DockerProviders {
  const manager = new docker.Provider(
    "manager-docker",
    { host: managerDockerHost(config), sshOpts: managerSshOpts(config) },
    opts,
  );
  // No host: the local engine from DOCKER_HOST or the default socket.
  const build = config.build.onManager ? manager : new docker.Provider("local-docker", {}, opts);
  return { manager, build };
}
