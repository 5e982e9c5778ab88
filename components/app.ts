// App: what runs on the swarm. One overlay network; Docker secrets for the
// gRPC token, the broker passwords and the LLM key; Mosquitto with password
// file and ACLs; the master; one service per worker language.
//
// Docker secrets and configs are immutable, so their names carry a short hash
// of their content: a changed value becomes a new object, the services move to
// it in a rolling update, and the old one is deleted afterwards.
import { createHash } from "node:crypto";
import { posix } from "node:path";
import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { WORKER_LANGUAGES, type StackConfig, type WorkerLanguage } from "./config";
import { mosquittoPasswordLine } from "./credentials";
import { workerImageName, type AppImages } from "./images";
import { CONTAINER_PATHS as MOSQUITTO_PATHS, MASTER_MQTT_USER, mosquittoAcl, mosquittoConf, workerMqttUser } from "./mosquitto";
import type { PrivateRegistry } from "./registry";
import { asRoot, placementCommand, placementScript } from "./scripts";
import {
  masterServiceArgs,
  MOSQUITTO_UID,
  mosquittoServiceArgs,
  serviceName,
  stackLabels,
  workerServiceArgs,
  type RegistryAuth,
  type SecretMount,
} from "./specs";
import type { SwarmCluster } from "./swarm";
import type { WebAccess } from "./webAccess";
import { remoteCommand } from "./remoteCommand";

export interface AppArgs {
  config: StackConfig;
  swarm: SwarmCluster;
  registry: PrivateRegistry;
  images: AppImages;
  /** The broker's image, pinned by digest where a registry served it. */
  mosquittoImage: pulumi.Input<string>;
  /** The page's certificate and access token (each absent when off). */
  web: Pick<WebAccess, "tls" | "token">;
  managerDocker: docker.Provider;
}

export interface ServiceSummary {
  name: string;
  image: pulumi.Output<string>;
  replicas: number;
}

function shortHash(content: string): string {
  return createHash("sha256").update(content).digest("hex").slice(0, 8);
}

/** A generated password: a secret kept in the stack state, so it is stable across deploys. */
function generatedPassword(name: string, length: number, parent: pulumi.Resource): pulumi.Output<string> {
  return new random.RandomPassword(name, { length, special: false }, { parent }).result;
}

export class SwarmApp extends pulumi.ComponentResource {
  readonly network: docker.Network;
  readonly services: ServiceSummary[] = [];
  /** "<task> <node> <state>" per worker replica, read on the manager once every worker service has converged. */
  readonly placement: pulumi.Output<string>;
  /** Run this on the manager to see live where every replica runs. */
  readonly placementCommand: string;

  private readonly config: StackConfig;
  private readonly provider: docker.Provider;
  /** Secrets and configs are swarm objects: they need the swarm first. */
  private readonly swarmReady: pulumi.Resource[];

  constructor(name: string, args: AppArgs, opts?: pulumi.ComponentResourceOptions) {
    super("ai-swarm:index:App", name, {}, opts);
    const { config, swarm, registry, images } = args;
    this.config = config;
    this.provider = args.managerDocker;
    this.swarmReady = swarm.ready;
    const stack = config.stackName;
    const afterSwarm = { parent: this, provider: this.provider, dependsOn: swarm.ready };

    this.network = new docker.Network(
      "network",
      {
        name: serviceName(stack, "net"),
        driver: "overlay",
        attachable: true,
        // Docker encrypts an overlay when the "encrypted" option is present (needs IPsec ESP in the kernel).
        ...(config.network.encrypted && { options: { encrypted: "true" } }),
        labels: stackLabels(stack),
      },
      afterSwarm,
    );

    const grpcToken = this.secret("grpc-token", "grpc_token", generatedPassword("grpc-token", 48, this));
    const brokerPasswords = {
      master: generatedPassword("mqtt-password-master", 32, this),
      ...Object.fromEntries(
        WORKER_LANGUAGES.map((language) => [language, generatedPassword(`mqtt-password-${language}`, 32, this)]),
      ),
    } as Record<"master" | WorkerLanguage, pulumi.Output<string>>;
    const llmApiKey = config.llm.apiKey && this.secret("llm-api-key", "llm_api_key", config.llm.apiKey);
    const registryAuth: RegistryAuth = {
      serverAddress: registry.address,
      username: registry.username,
      password: registry.password,
    };
    const common = { config, networkId: this.network.id };

    const mosquitto = new docker.Service(
      "mosquitto",
      mosquittoServiceArgs({
        ...common,
        image: args.mosquittoImage,
        configFile: this.serviceConfig("mosquitto-conf", mosquittoConf()),
        aclFile: this.serviceConfig("mosquitto-acl", mosquittoAcl(config.topicPrefix)),
        passwordFile: {
          // Secrets are mounted under /run/secrets/ by name: the file the broker config names.
          ...this.secret("mosquitto-passwd", posix.basename(MOSQUITTO_PATHS.passwordFile), this.passwordFile(brokerPasswords)),
          // Readable by the broker's user only (mosquitto reads it after dropping root).
          fileUid: MOSQUITTO_UID,
          fileGid: MOSQUITTO_UID,
          fileMode: 0o400,
        },
      }),
      { parent: this, provider: this.provider, dependsOn: [...swarm.ready, this.network], deleteBeforeReplace: true },
    );

    const master = new docker.Service(
      "master",
      masterServiceArgs({
        ...common,
        image: images.refs.master,
        registryAuth,
        grpcToken,
        mqttPassword: this.secret("mqtt-password-master", "mqtt_password", brokerPasswords.master),
        web: {
          ...(args.web.tls && {
            certificate: this.secret("web-tls-cert", "web_tls_cert", args.web.tls.certificate),
            privateKey: this.secret("web-tls-key", "web_tls_key", args.web.tls.privateKey),
          }),
          ...(args.web.token && { token: this.secret("web-token", "web_token", args.web.token) }),
        },
      }),
      {
        parent: this,
        provider: this.provider,
        dependsOn: [...swarm.ready, ...registry.caInstalls, this.network, mosquitto, images.images.master],
        // A service has a fixed name: a replacement must remove the old one first.
        deleteBeforeReplace: true,
      },
    );
    this.services.push({ name: serviceName(stack, "mosquitto"), image: pulumi.output(args.mosquittoImage), replicas: 1 });
    this.services.push({ name: serviceName(stack, "master"), image: images.refs.master, replicas: 1 });

    const workers = WORKER_LANGUAGES.map((language) => {
      const imageName = workerImageName(language);
      const service = new docker.Service(
        imageName,
        workerServiceArgs({
          ...common,
          language,
          image: images.refs[imageName],
          registryAuth,
          grpcToken,
          mqttPassword: this.secret(`mqtt-password-${language}`, "mqtt_password", brokerPasswords[language]),
          ...(llmApiKey && { llmApiKey }),
        }),
        {
          parent: this,
          provider: this.provider,
          // Every node must trust the registry before any of them pulls.
          dependsOn: [...swarm.ready, ...registry.caInstalls, this.network, master, images.images[imageName]],
          deleteBeforeReplace: true,
        },
      );
      this.services.push({ name: serviceName(stack, imageName), image: images.refs[imageName], replicas: config.replicas[language] });
      return service;
    });

    const workerServiceNames = WORKER_LANGUAGES.map((language) => serviceName(stack, workerImageName(language)));
    this.placementCommand = placementCommand(workerServiceNames);
    const snapshot = remoteCommand(
      "placement",
      {
        connection: swarm.managerConnection,
        // Waits until every worker service has converged (no replica starting, none on a drained node).
        create: asRoot(placementScript(workerServiceNames), config.manager.user),
        // Taken again whenever a worker service changes (a new image, new replica counts:
        // an update keeps the service id, so the counts are named here) or the nodes do.
        triggers: [
          ...workers.map((service) => service.id),
          ...Object.values(images.refs),
          JSON.stringify({ replicas: config.replicas, maxReplicasPerNode: config.maxReplicasPerNode, nodes: config.nodes.map((node) => node.name) }),
        ],
      },
      { parent: this, dependsOn: workers },
    );
    this.placement = snapshot.stdout;

    this.registerOutputs({ services: this.services, placement: this.placement });
  }

  /** A Docker secret named <stack>_<name>-<content hash>, mounted at /run/secrets/<fileName>. */
  private secret(name: string, fileName: string, value: pulumi.Output<string>): SecretMount {
    // The hash of a long random or operator secret reveals nothing; unsecret it so the name is readable in diffs.
    const dockerName = pulumi.unsecret(value.apply((plain) => `${serviceName(this.config.stackName, name)}-${shortHash(plain)}`));
    const secret = new docker.Secret(
      name,
      {
        name: dockerName,
        data: pulumi.secret(value.apply((plain) => Buffer.from(plain, "utf8").toString("base64"))),
        labels: stackLabels(this.config.stackName),
      },
      { parent: this, provider: this.provider, dependsOn: this.swarmReady },
    );
    return { secretId: secret.id, secretName: secret.name, fileName };
  }

  /** A Docker config (non-secret file) named <stack>_<name>-<content hash>. */
  private serviceConfig(name: string, content: string): { configId: pulumi.Output<string>; configName: pulumi.Output<string> } {
    const config = new docker.ServiceConfig(
      name,
      {
        name: `${serviceName(this.config.stackName, name)}-${shortHash(content)}`,
        data: Buffer.from(content, "utf8").toString("base64"),
        labels: stackLabels(this.config.stackName),
      },
      { parent: this, provider: this.provider, dependsOn: this.swarmReady },
    );
    return { configId: config.id, configName: config.name };
  }

  /** The broker's password file: one PBKDF2 line per user (the master and one user per worker language). */
  private passwordFile(passwords: Record<"master" | WorkerLanguage, pulumi.Output<string>>): pulumi.Output<string> {
    const users = [
      [MASTER_MQTT_USER, passwords.master],
      ...WORKER_LANGUAGES.map((language) => [workerMqttUser(language), passwords[language]] as const),
    ] as const;
    return pulumi
      .all(users.map(([user, password]) => password.apply((plain) => mosquittoPasswordLine(user, plain))))
      .apply((lines) => lines.join("\n") + "\n");
  }
}
