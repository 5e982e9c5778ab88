// The stack's overlay network: every service attaches to it; the broker and
// the master are reached on it by their network aliases.
import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import { formerlyInApp } from "./aliases";
import { childOf } from "./options";
import { serviceName, stackLabels } from "./specs";

export interface StackNetworkArgs {
  /** Prefix of the network's name: <stackName>_net. */
  stackName: string;
  /** Encrypt the overlay (IPsec; needs ESP between the VMs). */
  encrypted: boolean;
}

export class StackNetwork extends pulumi.ComponentResource {
  readonly id: pulumi.Output<string>;

  /** Needs the swarm: pass it in `dependsOn`; the docker provider of the manager in `provider`/`providers`. */
  constructor(name: string, args: StackNetworkArgs, opts?: pulumi.ComponentResourceOptions) {
    super("ai-swarm:index:StackNetwork", name, {}, opts);
    const network = new docker.Network(
      `${name}-overlay`,
      {
        name: serviceName(args.stackName, "net"),
        driver: "overlay",
        attachable: true,
        // Docker encrypts an overlay when the "encrypted" option is present (needs IPsec ESP in the kernel).
        ...(args.encrypted && { options: { encrypted: "true" } }),
        labels: stackLabels(args.stackName),
      },
      childOf(this, opts, { aliases: [formerlyInApp("network")] }),
    );
    this.id = network.id;
    this.registerOutputs({ id: this.id });
  }
}
