// The workers: one service per language (replicas spread with at most
// maxReplicasPerNode per VM), each with its broker password, the gRPC token
// and the server's LLM key as Docker secrets; and the placement the stack
// reports, taken once every worker service has converged (in a multi-manager
// stack after the services whose spread is uneven were force-updated: Swarm
// does not rebalance by itself when a node comes back).
import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import type * as command from "@pulumi/command";
import { formerlyInApp } from "./aliases";
import { childOf } from "./options";
import { WORKER_LANGUAGES, type WorkerLanguage } from "./config";
import { remoteCommand } from "./remoteCommand";
import { asRoot, placementCommand, placementScript, rebalanceScript } from "./scripts";
import { serviceName, workerServiceArgs, type LlmSettings, type RegistryAuth, type SecretMount, type StackServiceSettings } from "./specs";
import { swarmSecret } from "./swarmObjects";

export interface WorkerPoolArgs {
  /** Stack name, endpoint and publish modes, topic prefix. */
  settings: StackServiceSettings;
  /** Each language's image, pinned by the digest its build pushed. */
  images: Record<WorkerLanguage, pulumi.Input<string>>;
  /** Credentials for pulling them from the private registry. */
  registryAuth: RegistryAuth;
  networkId: pulumi.Input<string>;
  /** Each language's broker password (secrets, from the Broker). */
  mqttPasswords: Record<WorkerLanguage, pulumi.Output<string>>;
  /** The master's gRPC token (its Docker secret). */
  grpcToken: SecretMount;
  replicas: Record<WorkerLanguage, number>;
  maxReplicasPerNode: number;
  simulatedWorkMs: number;
  shutdownGraceMs: number;
  /** HEARTBEAT_INTERVAL_MS when the stack config sets it. */
  heartbeatIntervalMs?: number;
  llm: LlmSettings;
  /** The server's LLM key (a secret), when set. */
  llmApiKey?: pulumi.Output<string>;
  /** The manager, where the placement is read: SSH connection and login user. */
  manager: { connection: command.types.input.remote.ConnectionArgs; user: string };
  /** The configured nodes' names: the placement is taken again when they change. */
  nodeNames: string[];
  /**
   * Rebalance the worker services whose spread is uneven, before the placement
   * is read, on a deploy whose node set changed (multi-manager stacks; a
   * 1-manager stack keeps today's script). Never on any other deploy: a
   * replica or image change moves no other service, a no-change deploy nothing.
   */
  rebalance?: boolean;
}

export class WorkerPool extends pulumi.ComponentResource {
  readonly services: Record<WorkerLanguage, docker.Service>;
  /** "<task> <node> <state>" per worker replica, read on the manager once every worker service has converged. */
  readonly placement: pulumi.Output<string>;
  /** Run this on the manager to see live where every replica runs. */
  readonly placementCommand: string;
  /** Run this on the primary manager to spread the workers again after a node came back (`npm run lab:rebalance` does). */
  readonly rebalanceScript: string;

  /** The docker provider of the manager goes in `provider`/`providers`; the master, CAs and images in `dependsOn`. */
  constructor(name: string, args: WorkerPoolArgs, opts?: pulumi.ComponentResourceOptions) {
    super("ai-swarm:index:WorkerPool", name, {}, opts);
    const { settings } = args;
    const stackName = settings.stackName;
    const child = childOf(this, opts);
    const llmApiKey =
      args.llmApiKey &&
      swarmSecret(`${name}-llm-api-key`, { stackName, objectName: "llm-api-key", fileName: "llm_api_key", value: args.llmApiKey }, { ...child, aliases: [formerlyInApp("llm-api-key")] });

    this.services = Object.fromEntries(
      WORKER_LANGUAGES.map((language) => {
        const mqttPassword = swarmSecret(
          `${name}-${language}-mqtt-password`,
          { stackName, objectName: `mqtt-password-${language}`, fileName: "mqtt_password", value: args.mqttPasswords[language] },
          { ...child, aliases: [formerlyInApp(`mqtt-password-${language}`)] },
        );
        const service = new docker.Service(
          `${name}-${language}`,
          workerServiceArgs(
            settings,
            {
              language,
              replicas: args.replicas[language],
              maxReplicasPerNode: args.maxReplicasPerNode,
              simulatedWorkMs: args.simulatedWorkMs,
              shutdownGraceMs: args.shutdownGraceMs,
              heartbeatIntervalMs: args.heartbeatIntervalMs,
              llm: args.llm,
            },
            {
              networkId: args.networkId,
              image: args.images[language],
              registryAuth: args.registryAuth,
              grpcToken: args.grpcToken,
              mqttPassword,
              ...(llmApiKey && { llmApiKey }),
            },
          ),
          // A service has a fixed name: a replacement must remove the old one first.
          { ...child, aliases: [formerlyInApp(`worker-${language}`)], deleteBeforeReplace: true },
        );
        return [language, service] as const;
      }),
    ) as Record<WorkerLanguage, docker.Service>;

    const serviceNames = WORKER_LANGUAGES.map((language) => serviceName(stackName, `worker-${language}`));
    this.placementCommand = placementCommand(serviceNames);
    this.rebalanceScript = rebalanceScript(serviceNames);
    const services = Object.values(this.services);
    // Run again only when the nodes change (a VM added, back, or removed): Swarm then leaves the spread uneven.
    // On a replica change Swarm places the new tasks itself, and a rebalance then would restart other services.
    const rebalance =
      args.rebalance === true
        ? remoteCommand(
            `${name}-rebalance`,
            {
              connection: args.manager.connection,
              create: asRoot(placementScript(serviceNames, undefined, this.rebalanceScript), args.manager.user),
              triggers: [JSON.stringify({ nodes: args.nodeNames })],
            },
            childOf(this, opts, { dependsOn: services }),
          )
        : undefined;
    const snapshot = remoteCommand(
      `${name}-placement`,
      {
        connection: args.manager.connection,
        // Waits until every worker service has converged (no replica starting, none on a drained node).
        create: asRoot(placementScript(serviceNames), args.manager.user),
        // Taken again whenever a worker service changes (a new image, new replica counts:
        // an update keeps the service id, so the counts are named here) or the nodes do.
        triggers: [
          ...WORKER_LANGUAGES.map((language) => this.services[language].id),
          ...WORKER_LANGUAGES.map((language) => args.images[language]),
          JSON.stringify({ replicas: args.replicas, maxReplicasPerNode: args.maxReplicasPerNode, nodes: args.nodeNames }),
        ],
      },
      childOf(this, opts, { aliases: [formerlyInApp("placement")], dependsOn: rebalance ? [...services, rebalance] : services }),
    );
    this.placement = snapshot.stdout;
    this.registerOutputs({ placement: this.placement });
  }
}
