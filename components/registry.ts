// Registry: a private image registry on the manager, with TLS from a CA made
// at deploy time on the manager and htpasswd (bcrypt) auth. The CA certificate
// is installed on every node under /etc/docker/certs.d/<host:port>/ so every
// engine trusts the registry. With one manager the CA's key never leaves it.
// With several, every manager keeps a copy of the CA (the key passes through
// the stack state as a secret), so the manager that becomes the primary when
// the primary is lost signs with the same CA.
import { createHash } from "node:crypto";
import type * as command from "@pulumi/command";
import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { FORMER } from "./aliases";
import { childOf } from "./options";
import { isIpAddress, managersOf, type NodeConfig } from "./config";
import { htpasswdLine } from "./credentials";
import { remoteCommand } from "./remoteCommand";
import {
  asRoot,
  installCaScript,
  readCaScript,
  REGISTRY_DIR,
  registryCaPath,
  registryReadyScript,
  registryTlsScript,
  removeRegistryCaScript,
  writeStdinToFileScript,
} from "./scripts";
import { registryServiceArgs, type StackServiceSettings } from "./specs";
import { sshConnection } from "./swarm";

export interface RegistryArgs {
  /** Stack name, endpoint and publish modes. */
  settings: StackServiceSettings;
  /** The manager: the registry runs there, and its CA and certificate are made there. */
  manager: NodeConfig;
  /** Every node of the stack: each installs the CA, so each engine trusts the registry. */
  nodes: NodeConfig[];
  /** The SSH private key for every node (a secret). */
  sshPrivateKey: pulumi.Input<string>;
  /** The port the registry is published on, on the manager. */
  port: number;
  username: string;
  /** The registry password from config (a secret); generated and kept in the stack state when absent. */
  password?: pulumi.Output<string>;
  /** The registry's image, pinned by digest where a registry served it. */
  image: pulumi.Input<string>;
  /**
   * Several managers (3 or 5): the registry is pinned to `manager` (the primary), where its address, CA key
   * and files are; each node's CA install is kept on delete, since a removed node's VM may be gone. With one
   * manager it runs on any manager (that one) and a removed node's CA is deleted, as before.
   */
  severalManagers?: boolean;
}

/** The certificate's subject alternative name: IP:… for an address, DNS:… for a name. */
export function subjectAltName(host: string): string {
  return isIpAddress(host) ? `IP:${host}` : `DNS:${host}`;
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

  /** The docker provider of the manager goes in `provider`/`providers`; the swarm's init in `dependsOn`. */
  constructor(name: string, args: RegistryArgs, opts?: pulumi.ComponentResourceOptions) {
    super("ai-swarm:index:PrivateRegistry", name, {}, { ...opts, aliases: [...(opts?.aliases ?? []), { type: FORMER.registry.type }] });
    const manager = args.manager;
    const managerConnection = sshConnection(manager, args.sshPrivateKey);
    this.address = `${manager.host}:${args.port}`;
    this.username = args.username;
    const password =
      args.password ??
      new random.RandomPassword(`${name}-password`, { length: 32, special: false }, childOf(this, opts, { aliases: [{ name: "registry-password" }] })).result;
    this.password = password;
    const san = subjectAltName(manager.host);

    const tls = remoteCommand(
      `${name}-tls`,
      { connection: managerConnection, create: asRoot(registryTlsScript(san, manager.host), manager.user) },
      childOf(this, opts, { aliases: [{ name: "registry-tls" }] }),
    );
    this.caCert = tls.stdout;
    this.tls = tls;

    const htpasswd = password.apply((value) => htpasswdLine(this.username, value));
    const auth = remoteCommand(
      `${name}-htpasswd`,
      {
        connection: managerConnection,
        create: asRoot(writeStdinToFileScript(`${REGISTRY_DIR}/auth/htpasswd`, "644"), manager.user),
        stdin: pulumi.secret(htpasswd.apply((line) => `${line}\n`)),
      },
      childOf(this, opts, { dependsOn: [tls], aliases: [{ name: "registry-htpasswd" }] }),
    );

    // Every engine (the manager's included: it builds and pushes) trusts the registry's CA.
    const caInstalls = args.nodes.map(
      (node) =>
        remoteCommand(
          `${name}-ca-${node.name}`,
          {
            connection: sshConnection(node, args.sshPrivateKey),
            create: asRoot(writeStdinToFileScript(registryCaPath(this.address), "644"), node.user),
            delete: asRoot(removeRegistryCaScript(this.address), node.user),
            stdin: tls.stdout,
          },
          // Kept on delete when asked (multi-manager stacks): the node may be gone for good when it leaves the config.
          childOf(this, opts, { aliases: [{ name: `registry-ca-${node.name}` }], ...(args.severalManagers && { retainOnDelete: true }) }),
        ),
    );

    // A hash (never the content) of what the registry reads at start, so a new certificate or password restarts it.
    const revision = pulumi.unsecret(
      pulumi.all([tls.stdout, htpasswd]).apply(([ca, line]) =>
        createHash("sha256").update(`${ca}\n${san}\n${line}`).digest("hex").slice(0, 12),
      ),
    );
    this.service = new docker.Service(
      `${name}-service`,
      registryServiceArgs(args.settings, { image: args.image, revision, port: args.port, ...(args.severalManagers && { pinnedTo: manager.name }) }),
      // A service has a fixed name: a replacement must remove the old one first.
      childOf(this, opts, { dependsOn: [tls, auth], deleteBeforeReplace: true, aliases: [{ name: "registry" }] }),
    );

    this.caInstalls = caInstalls;
    // Several managers: every manager keeps the CA, so the next primary (the next manager listed, once this one is
    // lost) signs with it and every engine, etcd member and browser that trusts it keeps trusting what it signs.
    // Kept on delete: a removed manager's VM may be gone.
    if (args.severalManagers) {
      const caKey = remoteCommand(
        `${name}-shared-ca`,
        { connection: managerConnection, create: asRoot(readCaScript(), manager.user), logging: "none" },
        childOf(this, opts, { dependsOn: [tls], additionalSecretOutputs: ["stdout"] }),
      );
      for (const node of managersOf(args.nodes)) {
        remoteCommand(
          `${name}-shared-ca-${node.name}`,
          { connection: sshConnection(node, args.sshPrivateKey), create: asRoot(installCaScript(), node.user), stdin: caKey.stdout, logging: "none" },
          childOf(this, opts, { retainOnDelete: true }),
        );
      }
    }
    const managerCa = caInstalls[args.nodes.indexOf(manager)];
    this.ready = remoteCommand(
      `${name}-ready`,
      {
        connection: managerConnection,
        create: asRoot(registryReadyScript(this.address, this.username), manager.user),
        stdin: pulumi.secret(password.apply((value) => `${value}\n`)),
        // Re-check whenever the registry service changes.
        triggers: [this.service.id, revision],
      },
      childOf(this, opts, { dependsOn: [this.service, ...(managerCa ? [managerCa] : [])], aliases: [{ name: "registry-ready" }] }),
    );

    this.registerOutputs({ address: this.address, caCert: this.caCert });
  }
}
