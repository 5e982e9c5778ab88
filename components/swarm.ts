// Swarm: turns the configured VMs into one Docker Swarm with remote commands
// over SSH (@pulumi/command). Every command reads the node's swarm state
// first, so `pulumi up` on a running swarm changes nothing.
//
// Per worker node there are two resources (children are named
// `<component>-…`, e.g. swarm-join-vm2), ordered so that removing the node
// from config does the right thing in the right order (Pulumi deletes
// dependents first):
//   …-join-<node>   on the node:    create = join (token from stdin);  delete = swarm leave
//   …-node-<node>   on the manager: create = labels;                   delete = drain, wait, node rm
// …-node-<node> depends on …-join-<node>, so on removal the manager drains and
// removes the node before the node itself leaves.
//
// Pulumi runs deletes last, after every service has been updated; so that the
// services (and the placement the program reports) already avoid a node being
// removed, …-members on the manager drains, before anything else, every node
// this program labelled that is no longer in the config.
import type * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { FORMER } from "./aliases";
import type { NodeConfig } from "./config";
import { remoteCommand } from "./remoteCommand";
import {
  type AddressPool,
  asRoot,
  drainAndRemoveScript,
  drainRemovedNodesScript,
  NODE_NAME_LABEL,
  joinTokenScript,
  nodeLabelScript,
  swarmInitScript,
  swarmJoinScript,
  swarmLeaveScript,
} from "./scripts";

export interface SwarmArgs {
  /** Every VM of the stack; exactly one is the manager. */
  nodes: NodeConfig[];
  /** The SSH private key for every node (a secret). */
  sshPrivateKey: pulumi.Input<string>;
  /** Where Swarm takes overlay subnets from (read only when the swarm is created). */
  addressPool?: AddressPool;
}

export interface SwarmNodeInfo {
  name: string;
  host: string;
  role: "manager" | "worker";
  /** The swarm node id, known after the node joined. */
  nodeId: pulumi.Output<string>;
}

/** How @pulumi/command reaches a node. The private key stays a secret. */
export function sshConnection(node: NodeConfig, privateKey: pulumi.Input<string>): command.types.input.remote.ConnectionArgs {
  return { host: node.host, port: node.sshPort, user: node.user, privateKey, dialErrorLimit: 20, perDialTimeout: 15 };
}

/** The overlay address pool from config, if one is set. */
export function addressPoolOf(config: { network: { addressPool?: string; addressPoolMaskLength?: number } }): AddressPool | undefined {
  const { addressPool, addressPoolMaskLength } = config.network;
  return addressPool === undefined ? undefined : { cidr: addressPool, maskLength: addressPoolMaskLength };
}

export class SwarmCluster extends pulumi.ComponentResource {
  /** Every node with its role and swarm id. */
  readonly nodes: SwarmNodeInfo[];
  /** The init command on the manager: everything that needs a swarm depends on it. */
  readonly init: command.remote.Command;
  /** Resources that must exist before services are scheduled (all joins and labels). */
  readonly ready: pulumi.Resource[];
  readonly managerConnection: command.types.input.remote.ConnectionArgs;
  private readonly manager: NodeConfig;
  /** Children are named `<component name>-…`. */
  private readonly prefix: string;

  constructor(name: string, args: SwarmArgs, opts?: pulumi.ComponentResourceOptions) {
    super("ai-swarm:index:SwarmCluster", name, {}, { ...opts, aliases: [...(opts?.aliases ?? []), { type: FORMER.swarm.type }] });
    const manager = args.nodes.find((node) => node.role === "manager");
    if (!manager) throw new pulumi.RunError("SwarmCluster: no node has role manager");
    this.manager = manager;
    this.prefix = name;
    this.managerConnection = sshConnection(manager, args.sshPrivateKey);

    this.init = remoteCommand(
      `${name}-init`,
      { connection: this.managerConnection, create: asRoot(swarmInitScript(manager.host, args.addressPool), manager.user) },
      { parent: this, aliases: [{ name: "swarm-init" }] },
    );
    const managerLabels = this.labelNode(manager, this.init.stdout, [this.init]);

    const workerToken = remoteCommand(
      `${name}-join-token-worker`,
      {
        connection: this.managerConnection,
        create: asRoot(joinTokenScript("worker"), manager.user),
        // The token must never show in logs or in plain state, nor travel back to
        // the manager as PULUMI_COMMAND_STDOUT when the command is updated.
        logging: "none",
      },
      { parent: this, dependsOn: [this.init], additionalSecretOutputs: ["stdout"], aliases: [{ name: "join-token-worker" }] },
    );

    this.nodes = [{ name: manager.name, host: manager.host, role: "manager", nodeId: managerLabels.stdout }];
    this.ready = [this.init, managerLabels];
    for (const node of args.nodes.filter((candidate) => candidate !== manager)) {
      const join = this.joinNode(node, manager, workerToken.stdout, args.sshPrivateKey);
      const labels = this.labelNode(node, join.stdout, [join]);
      this.nodes.push({ name: node.name, host: node.host, role: node.role, nodeId: labels.stdout });
      this.ready.push(join, labels);
    }
    const members = remoteCommand(
      `${name}-members`,
      {
        connection: this.managerConnection,
        create: asRoot(drainRemovedNodesScript(args.nodes.map((node) => node.name)), manager.user),
      },
      { parent: this, dependsOn: [...this.ready], aliases: [{ name: "members" }] },
    );
    this.ready.push(members);

    this.registerOutputs({
      nodes: this.nodes.map(({ name, host, role }) => ({ name, host, role })),
    });
  }

  private joinNode(
    node: NodeConfig,
    manager: NodeConfig,
    token: pulumi.Output<string>,
    privateKey: pulumi.Input<string>,
  ): command.remote.Command {
    return remoteCommand(
      `${this.prefix}-join-${node.name}`,
      {
        connection: sshConnection(node, privateKey),
        create: asRoot(swarmJoinScript(node.host, manager.host), node.user),
        delete: asRoot(swarmLeaveScript(), node.user),
        stdin: pulumi.secret(token.apply((value) => `${value.trim()}\n`)),
        logging: "stderr",
      },
      // Leaving and re-joining is the only safe order if this ever has to be replaced.
      { parent: this, dependsOn: [this.init], deleteBeforeReplace: true, aliases: [{ name: `join-${node.name}` }] },
    );
  }

  /** Labels a node from the manager; for workers its delete drains and removes the node. */
  private labelNode(node: NodeConfig, nodeIdOutput: pulumi.Output<string>, dependsOn: pulumi.Resource[]): command.remote.Command {
    const user = this.manager.user;
    const nodeId = nodeIdOutput.apply((value) => value.trim());
    const labels = { [NODE_NAME_LABEL]: node.name, ...node.labels };
    return remoteCommand(
      `${this.prefix}-node-${node.name}`,
      {
        connection: this.managerConnection,
        create: nodeId.apply((id) => asRoot(nodeLabelScript(id, labels, node.name), user)),
        ...(node.role === "worker" && { delete: nodeId.apply((id) => asRoot(drainAndRemoveScript(id), user)) }),
      },
      { parent: this, dependsOn, deleteBeforeReplace: true, aliases: [{ name: `node-${node.name}` }] },
    );
  }
}
