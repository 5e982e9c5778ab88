// The stack's etcd cluster (a stack with more than one manager): one member per
// manager, each a service pinned to its node with its own volume
// (components/specs.ts etcdServiceArgs, images/etcd), peer and client TLS with
// certificates signed by the stack CA on the primary manager and delivered as
// Docker secrets, and the master's client certificate. Members are created and
// updated one at a time: each member's service depends on the one before it.
import type * as command from "@pulumi/command";
import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import { childOf } from "./options";
import { remoteCommand } from "./remoteCommand";
import { asRoot, etcdTlsScript } from "./scripts";
import { etcdClientUrl, etcdMemberName, etcdServiceArgs, type MasterEtcdRefs, type RegistryAuth, type SecretMount, type StackServiceSettings } from "./specs";
import { swarmSecret } from "./swarmObjects";
import { splitCertificateAndKey } from "./webAccess";

export interface EtcdClusterArgs {
  settings: StackServiceSettings;
  /** The managers' node names, primary first: one member each. */
  members: readonly string[];
  /** images/etcd, pinned by the digest its build pushed. */
  image: pulumi.Input<string>;
  registryAuth: RegistryAuth;
  networkId: pulumi.Input<string>;
  /** The primary manager, where the stack CA is and the certificates are made. */
  connection: command.types.input.remote.ConnectionArgs;
  user: string;
  /** The stack CA's certificate (public). */
  caCert: pulumi.Input<string>;
  /** Makes the CA on the primary: certificates are issued after it. */
  caReady: pulumi.Resource;
}

export class EtcdCluster extends pulumi.ComponentResource {
  /** What the master needs for STORE=etcd: every member's client URL, the CA, its client certificate and key. */
  readonly client: MasterEtcdRefs;
  /** The members' services, in config order (each depends on the one before). */
  readonly services: docker.Service[];
  /** The members' image. */
  readonly image: pulumi.Output<string>;

  /** The docker provider of the primary manager goes in `provider`/`providers`; the swarm, the network and the image in `dependsOn`. */
  constructor(name: string, args: EtcdClusterArgs, opts?: pulumi.ComponentResourceOptions) {
    super("ai-swarm:index:EtcdCluster", name, {}, opts);
    const { settings } = args;
    const stackName = settings.stackName;
    const child = childOf(this, opts);
    const secret = (resource: string, objectName: string, fileName: string, value: pulumi.Output<string>): SecretMount =>
      swarmSecret(`${name}-${resource}`, { stackName, objectName, fileName, value }, child);

    // One certificate at a time on the primary (the CA's serial file is shared).
    let previous: pulumi.Resource = args.caReady;
    const issue = (suffix: string, certName: string, subjectAltNames: string): { certificate: SecretMount; privateKey: SecretMount } => {
      const issued = remoteCommand(
        `${name}-tls-${suffix}`,
        { connection: args.connection, create: asRoot(etcdTlsScript(certName, subjectAltNames), args.user), logging: "none" },
        { parent: this, dependsOn: [previous], additionalSecretOutputs: ["stdout"] },
      );
      previous = issued;
      const { certificate, privateKey } = splitCertificateAndKey(issued.stdout, `the etcd certificate command for ${certName}`);
      return {
        certificate: secret(`${suffix}-cert`, `${certName}-cert`, `${certName}.crt`, pulumi.unsecret(certificate)),
        privateKey: secret(`${suffix}-key`, `${certName}-key`, `${certName}.key`, pulumi.secret(privateKey)),
      };
    };

    const ca = secret("ca", "etcd-ca", "etcd-ca.crt", pulumi.output(args.caCert));
    const services: docker.Service[] = [];
    for (const node of args.members) {
      const member = etcdMemberName(node);
      // The member's DNS alias on the stack network, by which its peer and client URLs reach it.
      const tls = issue(node, member, `DNS:${member}`);
      const before = services[services.length - 1];
      services.push(
        new docker.Service(
          `${name}-${node}`,
          etcdServiceArgs(settings, node, args.members, {
            networkId: args.networkId,
            image: args.image,
            registryAuth: args.registryAuth,
            ca,
            ...tls,
          }),
          // A service has a fixed name: a replacement must remove the old one first.
          childOf(this, opts, { deleteBeforeReplace: true, dependsOn: before ? [before] : [] }),
        ),
      );
    }
    this.services = services;
    this.image = pulumi.output(args.image);
    const master = issue("client-master", "etcd-client-master", "DNS:master");
    this.client = { endpoints: args.members.map(etcdClientUrl), ca, ...master };
    this.registerOutputs({ services: services.map((service) => service.name) });
  }
}
