// Images on every node: after each push, every node of a multi-manager stack
// pulls the new content tags itself, so a task that Swarm reschedules anywhere
// (after its VM is lost) starts from the node's own image store, without the
// registry, which runs on the primary manager only (components/registry.ts).
//
// One remote command per node: the registry password arrives on stdin, the
// login lands in a throw-away DOCKER_CONFIG (never on a command line, never
// left on the node), then pull, then logout. Triggered by the image refs, so a
// deploy that pushed nothing new re-runs none of them. retainOnDelete: a
// node's pull has nothing to undo, and its node may be gone when it is removed.
//
// A 1-manager stack declares none: losing its only manager loses the swarm
// whatever each node holds, and such a stack keeps today's resources.
import type * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import type { NodeConfig } from "./config";
import type { RegistryLogin } from "./images";
import { remoteCommand } from "./remoteCommand";
import { asRoot, pullImagesScript } from "./scripts";
import { sshConnection } from "./swarm";

export interface NodeImagePullsArgs {
  /** Every node of the stack: each pulls every image. */
  nodes: NodeConfig[];
  /** The SSH private key for every node (a secret). */
  sshPrivateKey: pulumi.Input<string>;
  /** The registry the images were pushed to, and its login. */
  registry: RegistryLogin;
  /** Every pushed image (images/etcd too) as the services declare it (repository@sha256:digest). */
  refs: pulumi.Output<string>[];
  /** Each node's install of the registry's CA, by node name: a node pulls only once it trusts the registry. */
  caInstalls: Record<string, pulumi.Resource>;
}

export class NodeImagePulls extends pulumi.ComponentResource {
  /** One pull per node, in the order of `nodes`: the services depend on all of them. */
  readonly pulls: command.remote.Command[];

  constructor(name: string, args: NodeImagePullsArgs, opts?: pulumi.ComponentResourceOptions) {
    super("ai-swarm:index:NodeImagePulls", name, {}, opts);
    const refs = args.refs;
    const refList = pulumi.all(refs);
    this.pulls = args.nodes.map((node) => {
      const caInstall = args.caInstalls[node.name];
      return remoteCommand(
        `${name}-${node.name}`,
        {
          connection: sshConnection(node, args.sshPrivateKey),
          create: refList.apply((list) => asRoot(pullImagesScript(args.registry.address, args.registry.username, list), node.user)),
          stdin: pulumi.secret(pulumi.output(args.registry.password).apply((value) => `${value}\n`)),
          triggers: refs,
        },
        { parent: this, retainOnDelete: true, ...(caInstall && { dependsOn: [caInstall] }) },
      );
    });
    this.registerOutputs({});
  }
}
