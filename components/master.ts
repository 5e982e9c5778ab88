// The master: the gRPC token it shares with the workers (generated, a Docker
// secret), its own broker password and the front door's certificate, key and
// token as Docker secrets, and the service on a manager.
import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import { formerlyInApp } from "./aliases";
import { childOf } from "./options";
import { masterServiceArgs, type MasterEtcdRefs, type MasterTimings, type RegistryAuth, type SecretMount, type StackServiceSettings, type WebRefs } from "./specs";
import { generatedPassword, swarmSecret } from "./swarmObjects";
import type { WebTls } from "./webAccess";

export interface MasterArgs {
  /** Stack name, endpoint and publish modes, topic prefix. */
  settings: StackServiceSettings;
  /** The master's image, pinned by the digest its build pushed. */
  image: pulumi.Input<string>;
  /** Credentials for pulling it from the private registry. */
  registryAuth: RegistryAuth;
  networkId: pulumi.Input<string>;
  /** The master's broker password (a secret, from the Broker). */
  mqttPassword: pulumi.Output<string>;
  /** The page's certificate and key (absent when web.tls is off) and access token (absent when web.auth is off). */
  web: { tls?: WebTls; token?: pulumi.Output<string>; metricsOpen: boolean };
  /** The published port of the page and the REST API. */
  webPort: number;
  /** Heartbeat timeout, lease and task timeout, as far as the stack config sets them. */
  timings: MasterTimings;
  /** A stack with more than one manager: STORE=etcd on these members (components/etcd.ts); absent, SQLite. */
  etcd?: MasterEtcdRefs;
}

export class Master extends pulumi.ComponentResource {
  /** The Docker secret with the token every worker presents on gRPC. */
  readonly grpcToken: SecretMount;
  readonly service: docker.Service;

  /** The docker provider of the manager goes in `provider`/`providers`; the swarm, the broker and the image in `dependsOn`. */
  constructor(name: string, args: MasterArgs, opts?: pulumi.ComponentResourceOptions) {
    super("ai-swarm:index:Master", name, {}, opts);
    const { settings } = args;
    const stackName = settings.stackName;
    const child = childOf(this, opts);
    const secret = (resource: string, former: string, objectName: string, fileName: string, value: pulumi.Output<string>): SecretMount =>
      swarmSecret(`${name}-${resource}`, { stackName, objectName, fileName, value }, { ...child, aliases: [formerlyInApp(former)] });

    const token = generatedPassword(`${name}-grpc-token`, 48, { ...child, aliases: [formerlyInApp("grpc-token")] });
    this.grpcToken = secret("grpc-token-secret", "grpc-token", "grpc-token", "grpc_token", token);
    const web: WebRefs = {
      ...(args.web.tls && {
        certificate: secret("web-tls-cert", "web-tls-cert", "web-tls-cert", "web_tls_cert", args.web.tls.certificate),
        privateKey: secret("web-tls-key", "web-tls-key", "web-tls-key", "web_tls_key", args.web.tls.privateKey),
      }),
      ...(args.web.token && { token: secret("web-token", "web-token", "web-token", "web_token", args.web.token) }),
      metricsOpen: args.web.metricsOpen,
    };

    this.service = new docker.Service(
      `${name}-service`,
      masterServiceArgs(settings, {
        networkId: args.networkId,
        image: args.image,
        registryAuth: args.registryAuth,
        grpcToken: this.grpcToken,
        mqttPassword: secret("mqtt-password-secret", "mqtt-password-master", "mqtt-password-master", "mqtt_password", args.mqttPassword),
        web,
        webPort: args.webPort,
        timings: args.timings,
        ...(args.etcd && { etcd: args.etcd }),
      }),
      // A service has a fixed name: a replacement must remove the old one first.
      { ...child, aliases: [formerlyInApp("master")], deleteBeforeReplace: true },
    );
    this.registerOutputs({ serviceId: this.service.id });
  }
}
