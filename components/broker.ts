// The MQTT broker (Mosquitto): a password per broker user (the master and one
// user per worker language), its config and ACL as Docker configs, the
// password file as a Docker secret, and the service on a manager.
import { posix } from "node:path";
import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import { formerlyInApp } from "./aliases";
import { childOf } from "./options";
import { WORKER_LANGUAGES, type WorkerLanguage } from "./config";
import { mosquittoPasswordLine } from "./credentials";
import { CONTAINER_PATHS, MASTER_MQTT_USER, mosquittoAcl, mosquittoConf, workerMqttUser } from "./mosquitto";
import { MOSQUITTO_UID, mosquittoServiceArgs, type StackServiceSettings } from "./specs";
import { generatedPassword, swarmConfig, swarmSecret } from "./swarmObjects";

export type BrokerUser = "master" | WorkerLanguage;

export interface BrokerArgs {
  /** Stack name, endpoint and publish modes, topic prefix. */
  settings: StackServiceSettings;
  /** The broker image, pinned by digest where a registry served it. */
  image: pulumi.Input<string>;
  networkId: pulumi.Input<string>;
  /** Publish MQTT on this port of the swarm (unset: reachable on the overlay only). */
  publishedPort?: number;
}

export class Broker extends pulumi.ComponentResource {
  /** Each broker user's password (secrets): the master's and one per worker language. */
  readonly passwords: Record<BrokerUser, pulumi.Output<string>>;
  readonly service: docker.Service;

  /** The docker provider of the manager goes in `provider`/`providers`; the swarm in `dependsOn`. */
  constructor(name: string, args: BrokerArgs, opts?: pulumi.ComponentResourceOptions) {
    super("ai-swarm:index:Broker", name, {}, opts);
    const { settings } = args;
    const child = childOf(this, opts);
    const users: BrokerUser[] = ["master", ...WORKER_LANGUAGES];
    this.passwords = Object.fromEntries(
      users.map((user) => [user, generatedPassword(`${name}-password-${user}`, 32, { ...child, aliases: [formerlyInApp(`mqtt-password-${user}`)] })]),
    ) as Record<BrokerUser, pulumi.Output<string>>;

    const stackName = settings.stackName;
    const configFile = swarmConfig(`${name}-conf`, { stackName, objectName: "mosquitto-conf", content: mosquittoConf() }, { ...child, aliases: [formerlyInApp("mosquitto-conf")] });
    const aclFile = swarmConfig(
      `${name}-acl`,
      { stackName, objectName: "mosquitto-acl", content: mosquittoAcl(settings.topicPrefix) },
      { ...child, aliases: [formerlyInApp("mosquitto-acl")] },
    );
    const passwordFile = {
      // Secrets are mounted under /run/secrets/ by name: the file the broker config names.
      ...swarmSecret(
        `${name}-passwd`,
        { stackName, objectName: "mosquitto-passwd", fileName: posix.basename(CONTAINER_PATHS.passwordFile), value: this.passwordFile() },
        { ...child, aliases: [formerlyInApp("mosquitto-passwd")] },
      ),
      // Readable by the broker's user only (mosquitto reads it after dropping root).
      fileUid: MOSQUITTO_UID,
      fileGid: MOSQUITTO_UID,
      fileMode: 0o400,
    };

    this.service = new docker.Service(
      `${name}-service`,
      mosquittoServiceArgs(settings, {
        networkId: args.networkId,
        image: args.image,
        configFile,
        aclFile,
        passwordFile,
        ...(args.publishedPort !== undefined && { publishedPort: args.publishedPort }),
      }),
      // A service has a fixed name: a replacement must remove the old one first.
      { ...child, aliases: [formerlyInApp("mosquitto")], deleteBeforeReplace: true },
    );
    this.registerOutputs({ serviceId: this.service.id });
  }

  /** The broker's password file: one PBKDF2 line per user (the master and one user per worker language). */
  private passwordFile(): pulumi.Output<string> {
    const lines = [
      this.passwords.master.apply((plain) => mosquittoPasswordLine(MASTER_MQTT_USER, plain)),
      ...WORKER_LANGUAGES.map((language) => this.passwords[language].apply((plain) => mosquittoPasswordLine(workerMqttUser(language), plain))),
    ];
    return pulumi.all(lines).apply((all) => all.join("\n") + "\n");
  }
}
