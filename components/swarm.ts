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
//
// A multi-manager stack (3 or 5 managers, issue 14) differs: the primary (the
// first listed manager) inits the swarm; the other managers join with the
// manager token (…-join-token-manager), and a worker whose role became manager
// joins again as one; …-node-ids on the primary first demotes the managers
// whose VM was lost, so none still counts in Raft while a manager joins;
// …-heartbeat on the primary shortens how long Swarm takes to see a VM is gone
// (DISPATCHER_HEARTBEAT_S); …-roles on the primary demotes nodes whose role
// became worker; and …-members
// on the primary removes nodes that left the config itself (demote, drain,
// node rm --force), since their VM may be gone for good. So every per-node
// resource is kept on delete (retainOnDelete): its delete would dial the
// removed node. A 1-manager stack keeps the resources and inputs it had before.
import type * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { FORMER } from "./aliases";
import { isMultiManager, managersOf, type NodeConfig, quorumProblem } from "./config";
import { remoteCommand } from "./remoteCommand";
import {
  type AddressPool,
  asRoot,
  dispatcherHeartbeatScript,
  drainAndRemoveScript,
  drainRemovedNodesScript,
  knownNodeIdsScript,
  NODE_NAME_LABEL,
  joinTokenScript,
  nodeRolesScript,
  removeNodesScript,
  nodeLabelScript,
  swarmInitScript,
  swarmJoinScript,
  swarmLeaveScript,
  swarmRejoinScript,
} from "./scripts";

/**
 * How often each node of a multi-manager swarm reports to the swarm's leader,
 * in seconds. Swarm marks a node Down when it misses three reports (plus
 * 0.5 s), and only then starts its tasks elsewhere; a new leader (after the
 * leader's VM is lost) first gives every node that long to report again.
 * Docker's default is 5 s; the cost of 2 s is one small RPC per node every
 * 2 s. What it changed on the lab: docs/pulumi.md, "How fast Swarm sees a VM
 * is gone".
 */
export const DISPATCHER_HEARTBEAT_S = 2;

export interface SwarmArgs {
  /** Every VM of the stack; 1, 3 or 5 are managers, the first of them the primary. */
  nodes: NodeConfig[];
  /**
   * The managers deployed last time (the stack's `managers` output, undefined on the first deploy).
   * The swarm's first command waits for it and fails, with the reason, if this change would cost
   * the swarm its Raft quorum (quorumProblem), so nothing on the nodes changes.
   */
  previousManagers?: pulumi.Input<string[] | undefined>;
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
  /** The init command on the primary manager: everything that needs a swarm depends on it. */
  readonly init: command.remote.Command;
  /** Resources that must exist before services are scheduled (all joins and labels). */
  readonly ready: pulumi.Resource[];
  /** How to reach the primary manager. */
  readonly managerConnection: command.types.input.remote.ConnectionArgs;
  private readonly manager: NodeConfig;
  /** Children are named `<component name>-…`. */
  private readonly prefix: string;
  /** 3 or 5 managers: manager joins, roles, removal by the primary, per-node resources kept on delete. */
  private readonly multiManager: boolean;

  constructor(name: string, args: SwarmArgs, opts?: pulumi.ComponentResourceOptions) {
    super("ai-swarm:index:SwarmCluster", name, {}, { ...opts, aliases: [...(opts?.aliases ?? []), { type: FORMER.swarm.type }] });
    const managers = managersOf(args.nodes);
    const manager = managers[0];
    if (!manager) throw new pulumi.RunError("SwarmCluster: no node has role manager");
    this.manager = manager;
    this.prefix = name;
    this.multiManager = isMultiManager(args.nodes);
    this.managerConnection = sshConnection(manager, args.sshPrivateKey);

    const managerNames = managers.map((node) => node.name);
    const initScript = asRoot(swarmInitScript(manager.host, args.addressPool), manager.user);
    this.init = remoteCommand(
      `${name}-init`,
      {
        connection: this.managerConnection,
        // The same script; it only waits for the quorum guard, which fails the deploy before anything runs.
        create:
          args.previousManagers === undefined
            ? initScript
            : pulumi.output(args.previousManagers).apply((previous) => {
                const problem = quorumProblem(previous, managerNames);
                if (problem !== undefined) throw new pulumi.RunError(problem);
                return initScript;
              }),
      },
      { parent: this, aliases: [{ name: "swarm-init" }] },
    );
    const managerLabels = this.labelNode(manager, this.init.stdout, [this.init]);

    const workerToken = this.joinToken("worker", { aliases: [{ name: "join-token-worker" }] });
    const managerToken = this.multiManager ? this.joinToken("manager", {}) : undefined;

    // Multi-manager: the node ids the swarm knows, read on the primary whenever the configured nodes change, so a
    // node removed earlier while it was up (it still believes it is a member) sees that and joins afresh. A lost
    // manager is demoted first, so no node joins Raft while a dead member still counts in it.
    const configuredNames = args.nodes.map((node) => node.name).sort();
    const knownIds = this.multiManager
      ? remoteCommand(
          `${name}-node-ids`,
          { connection: this.managerConnection, create: asRoot(knownNodeIdsScript(configuredNames), manager.user), triggers: configuredNames },
          { parent: this, dependsOn: [this.init] },
        ).stdout
      : undefined;

    this.nodes = [{ name: manager.name, host: manager.host, role: "manager", nodeId: managerLabels.stdout }];
    this.ready = [this.init, managerLabels];
    for (const node of args.nodes.filter((candidate) => candidate !== manager)) {
      const token = node.role === "manager" && managerToken ? managerToken.stdout : workerToken.stdout;
      const join = this.joinNode(node, manager, knownIds ? pulumi.all([token, knownIds]).apply(([value, ids]) => `${value.trim()}\n${ids.trim()}`) : token, args.sshPrivateKey);
      const labels = this.labelNode(node, join.stdout, [join]);
      this.nodes.push({ name: node.name, host: node.host, role: node.role, nodeId: labels.stdout });
      this.ready.push(join, labels);
    }
    if (this.multiManager) {
      // A swarm-wide setting the swarm keeps in its Raft store: set when this is created (and checked again
      // on a new primary); services need not wait for it.
      remoteCommand(
        `${name}-heartbeat`,
        { connection: this.managerConnection, create: asRoot(dispatcherHeartbeatScript(DISPATCHER_HEARTBEAT_S), manager.user) },
        { parent: this, dependsOn: [this.init] },
      );
      // A node configured as a worker that is still a manager is demoted from the primary (promotions are the joins').
      const roles = remoteCommand(
        `${name}-roles`,
        { connection: this.managerConnection, create: asRoot(nodeRolesScript(args.nodes), manager.user) },
        { parent: this, dependsOn: [...this.ready] },
      );
      this.ready.push(roles);
    }
    const configured = args.nodes.map((node) => node.name);
    const members = remoteCommand(
      `${name}-members`,
      {
        connection: this.managerConnection,
        create: asRoot(this.multiManager ? removeNodesScript(configured) : drainRemovedNodesScript(configured), manager.user),
        // `pulumi destroy` of a multi-manager stack: the per-node resources are kept on delete, so the
        // primary removes every other node here (demoted, drained, removed), as the workers' leave did before.
        ...(this.multiManager && { delete: asRoot(removeNodesScript([manager.name]), manager.user) }),
      },
      { parent: this, dependsOn: [...this.ready], aliases: [{ name: "members" }] },
    );
    this.ready.push(members);

    this.registerOutputs({
      nodes: this.nodes.map(({ name, host, role }) => ({ name, host, role })),
    });
  }

  /** Per-node resources of a multi-manager stack are kept on delete: the primary removes the node (members). */
  private get perNode(): { retainOnDelete?: boolean } {
    return this.multiManager ? { retainOnDelete: true } : {};
  }

  /** The join token for a role, read on the primary: a secret that never shows in logs or plain state. */
  private joinToken(role: "worker" | "manager", options: { aliases?: pulumi.Input<pulumi.Alias>[] }): command.remote.Command {
    return remoteCommand(
      `${this.prefix}-join-token-${role}`,
      {
        connection: this.managerConnection,
        create: asRoot(joinTokenScript(role), this.manager.user),
        // The token must never show in logs or in plain state, nor travel back to
        // the manager as PULUMI_COMMAND_STDOUT when the command is updated.
        logging: "none",
      },
      { parent: this, dependsOn: [this.init], additionalSecretOutputs: ["stdout"], ...options },
    );
  }

  private joinNode(
    node: NodeConfig,
    manager: NodeConfig,
    /** The join token (multi-manager: then the node ids the swarm knows, one a line). */
    token: pulumi.Output<string>,
    privateKey: pulumi.Input<string>,
  ): command.remote.Command {
    const script = this.multiManager ? swarmRejoinScript(node.host, manager.host, node) : swarmJoinScript(node.host, manager.host);
    return remoteCommand(
      `${this.prefix}-join-${node.name}`,
      {
        connection: sshConnection(node, privateKey),
        create: asRoot(script, node.user),
        delete: asRoot(swarmLeaveScript(), node.user),
        stdin: pulumi.secret(token.apply((value) => `${value.trim()}\n`)),
        logging: "stderr",
      },
      // Leaving and re-joining is the only safe order if this ever has to be replaced.
      { parent: this, dependsOn: [this.init], deleteBeforeReplace: true, aliases: [{ name: `join-${node.name}` }], ...this.perNode },
    );
  }

  /** Labels a node from the manager; for workers of a 1-manager stack its delete drains and removes the node. */
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
      { parent: this, dependsOn, deleteBeforeReplace: true, aliases: [{ name: `node-${node.name}` }], ...this.perNode },
    );
  }
}
