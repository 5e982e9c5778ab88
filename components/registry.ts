// Registry: a private image registry on the manager, with TLS from a CA made
// at deploy time on the manager (its key never leaves that machine) and
// htpasswd (bcrypt) auth. The CA certificate is installed on every node under
// /etc/docker/certs.d/<host:port>/ so every engine trusts the registry.
import { createHash } from "node:crypto";
import type * as command from "@pulumi/command";
import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { isIpAddress, type StackConfig } from "./config";
import { htpasswdLine } from "./credentials";
import { registryServiceArgs } from "./specs";
import {
  asRoot,
  REGISTRY_DIR,
  registryCaPath,
  registryReadyScript,
  registryTlsScript,
  removeRegistryCaScript,
  writeStdinToFileScript,
} from "./scripts";
import { sshConnection, type SwarmCluster } from "./swarm";
import { remoteCommand } from "./remoteCommand";

export interface RegistryArgs {
  config: StackConfig;
  swarm: SwarmCluster;
  /** Docker provider talking to the manager's engine. */
  managerDocker: docker.Provider;
  /** The registry password from config (a secret); generated and kept in the stack state when absent. */
  password?: pulumi.Output<string>;
  /** The registry's image, pinned by digest where a registry served it. */
  image: pulumi.Input<string>;
}

/** The certificate's subject alternative name: IP:… for an address, DNS:… for a name. */
export function subjectAltName(host: string): string {
  return isIpAddress(host) ? `IP:${host}` : `DNS:${host}`;
}

export function registryAddress(config: Pick<StackConfig, "manager" | "registry">): string {
  return `${config.manager.host}:${config.registry.port}`;
}

export class PrivateRegistry extends pulumi.ComponentResource {
  /** host:port, the prefix of every application image. */
  readonly address: string;
  readonly username: string;
  readonly password: pulumi.Output<string>;
  /** The CA certificate (public) that signs the registry's certificate. */
  readonly caCert: pulumi.Output<string>;
  /** The CA installed on each node: services pull only after every node trusts the registry. */
  readonly caInstalls: command.remote.Command[];
  /** Makes the stack's CA (and the registry's certificate) on the manager. */
  readonly tls: command.remote.Command;
  /** Completes once the registry accepts a login over TLS: images push after this. */
  readonly ready: command.remote.Command;
  readonly service: docker.Service;

  constructor(name: string, args: RegistryArgs, opts?: pulumi.ComponentResourceOptions) {
    super("ai-swarm:index:Registry", name, {}, opts);
    const { config, swarm } = args;
    const manager = config.manager;
    this.address = registryAddress(config);
    this.username = config.registry.username;
    const password =
      args.password ?? new random.RandomPassword("registry-password", { length: 32, special: false }, { parent: this }).result;
    this.password = password;
    const san = subjectAltName(manager.host);

    const tls = remoteCommand(
      "registry-tls",
      { connection: swarm.managerConnection, create: asRoot(registryTlsScript(san, manager.host), manager.user) },
      { parent: this },
    );
    this.caCert = tls.stdout;
    this.tls = tls;

    const htpasswd = password.apply((value) => htpasswdLine(this.username, value));
    const auth = remoteCommand(
      "registry-htpasswd",
      {
        connection: swarm.managerConnection,
        create: asRoot(writeStdinToFileScript(`${REGISTRY_DIR}/auth/htpasswd`, "644"), manager.user),
        stdin: pulumi.secret(htpasswd.apply((line) => `${line}\n`)),
      },
      { parent: this, dependsOn: [tls] },
    );

    // Every engine (the manager's included: it builds and pushes) trusts the registry's CA.
    const caInstalls = config.nodes.map(
      (node) =>
        remoteCommand(
          `registry-ca-${node.name}`,
          {
            connection: sshConnection(node, config.sshPrivateKey),
            create: asRoot(writeStdinToFileScript(registryCaPath(this.address), "644"), node.user),
            delete: asRoot(removeRegistryCaScript(this.address), node.user),
            stdin: tls.stdout,
          },
          { parent: this },
        ),
    );

    // A hash (never the content) of what the registry reads at start, so a new certificate or password restarts it.
    const revision = pulumi.unsecret(
      pulumi.all([tls.stdout, htpasswd]).apply(([ca, line]) =>
        createHash("sha256").update(`${ca}\n${san}\n${line}`).digest("hex").slice(0, 12),
      ),
    );
    this.service = new docker.Service("registry", registryServiceArgs(config, args.image, revision), {
      parent: this,
      provider: args.managerDocker,
      dependsOn: [swarm.init, tls, auth],
      // A service has a fixed name: a replacement must remove the old one first.
      deleteBeforeReplace: true,
    });

    this.caInstalls = caInstalls;
    const managerCa = caInstalls[config.nodes.indexOf(manager)];
    this.ready = remoteCommand(
      "registry-ready",
      {
        connection: swarm.managerConnection,
        create: asRoot(registryReadyScript(this.address, this.username), manager.user),
        stdin: pulumi.secret(password.apply((value) => `${value}\n`)),
        // Re-check whenever the registry service changes.
        triggers: [this.service.id, revision],
      },
      { parent: this, dependsOn: [this.service, ...(managerCa ? [managerCa] : [])] },
    );

    this.registerOutputs({ address: this.address, caCert: this.caCert });
  }
}
