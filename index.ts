// ai-swarm: turns plain VMs reachable over SSH into a Docker Swarm and deploys
// the distributed AI query system on it. This file only wires components; see
// docs/pulumi.md for the config keys and how to run it.
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { Broker } from "./components/broker";
import { faultToleranceWarning, isMultiManager, loadStackConfig, WORKER_LANGUAGES, type WorkerLanguage } from "./components/config";
import { EtcdCluster } from "./components/etcd";
import { AppImages, workerImageName } from "./components/images";
import { Master } from "./components/master";
import { NodeImagePulls } from "./components/nodeImages";
import { StackNetwork } from "./components/network";
import { PinnedImages } from "./components/pinnedImages";
import { createDockerProviders } from "./components/providers";
import { PrivateRegistry } from "./components/registry";
import { MASTER_ETCD_REPLICAS, serviceName, type StackServiceSettings } from "./components/specs";
import { addressPoolOf, SwarmCluster } from "./components/swarm";
import { WebAccess } from "./components/webAccess";
import { WorkerPool } from "./components/workers";

// Validates everything first: a bad config throws one error listing every problem, before any resource exists.
const config = loadStackConfig();
/** Every manager's node name, primary first. More than one: etcd members and the master on etcd. */
const managerNames = config.managers.map((node) => node.name);
const multiManager = isMultiManager(config.nodes);
const settings: StackServiceSettings = {
  stackName: config.stackName,
  endpointMode: config.endpointMode,
  publishMode: config.publishMode,
  topicPrefix: config.topicPrefix,
};

const notFaultTolerant = faultToleranceWarning(config.nodes);
if (notFaultTolerant !== undefined) void pulumi.log.warn(notFaultTolerant);

// The managers deployed last time: this stack's own `managers` output (undefined on the first deploy).
const self = new pulumi.StackReference("previous-deploy", { name: `${pulumi.getOrganization()}/${pulumi.getProject()}/${pulumi.getStack()}` });
const previousManagers = self.getOutput("managers").apply((value: unknown) =>
  Array.isArray(value) ? value.filter((name): name is string => typeof name === "string") : undefined,
);

const swarm = new SwarmCluster("swarm", {
  nodes: config.nodes,
  previousManagers,
  sshPrivateKey: config.sshPrivateKey,
  ...(addressPoolOf(config) && { addressPool: addressPoolOf(config) }),
});
/** Remote commands on the manager: how to reach it and as whom. */
const onManager = { connection: swarm.managerConnection, user: config.manager.user };
const docker = createDockerProviders(config);
const managerDocker = { providers: [docker.manager] };

const thirdParty = new PinnedImages("third-party-images", {
  connection: onManager.connection,
  user: onManager.user,
  images: { mosquitto: config.baseImages.mosquitto, registry: config.baseImages.registry },
});

const registry = new PrivateRegistry(
  "registry",
  {
    settings,
    manager: config.manager,
    nodes: config.nodes,
    sshPrivateKey: config.sshPrivateKey,
    port: config.registry.port,
    username: config.registry.username,
    image: thirdParty.refs.registry,
    severalManagers: multiManager,
    ...(config.registry.password && { password: config.registry.password }),
  },
  { ...managerDocker, dependsOn: [swarm.init] },
);

const web = new WebAccess("web", {
  tls: config.web.tls,
  auth: config.web.auth,
  connection: onManager.connection,
  user: onManager.user,
  // The master may run on any manager: its certificate names every one.
  hosts: [...config.managers.map((node) => node.host), ...config.web.hosts],
  caCert: registry.caCert,
  caReady: registry.tls,
  port: config.ports.web,
  ...(config.web.token && { token: config.web.token }),
  ...(config.web.certificate && { certificate: config.web.certificate }),
  ...(config.web.privateKey && { privateKey: config.web.privateKey }),
});

const registryLogin = { address: registry.address, username: registry.username, password: registry.password };
const images = new AppImages(
  "images",
  {
    registry: registryLogin,
    baseImages: config.baseImages,
    platform: config.build.platform,
    repoRoot: path.resolve(__dirname),
    etcd: multiManager,
  },
  { providers: [docker.build], dependsOn: [registry.ready] },
);

// Multi-manager stacks: every node holds every new image, so a task rescheduled anywhere starts without the registry's VM.
const nodePulls = multiManager
  ? new NodeImagePulls("node-images", {
      nodes: config.nodes,
      sshPrivateKey: config.sshPrivateKey,
      registry: registryLogin,
      refs: [...Object.values(images.refs), ...(images.etcdRef ? [images.etcdRef] : [])],
      caInstalls: Object.fromEntries(config.nodes.map((node, i) => [node.name, registry.caInstalls[i] as pulumi.Resource])),
    }).pulls
  : [];

const network = new StackNetwork("network", { stackName: config.stackName, encrypted: config.network.encrypted }, { ...managerDocker, dependsOn: swarm.ready });

const broker = new Broker(
  "broker",
  {
    settings,
    image: thirdParty.refs.mosquitto,
    networkId: network.id,
    ...(config.ports.mqtt !== undefined && { publishedPort: config.ports.mqtt }),
  },
  { ...managerDocker, dependsOn: swarm.ready },
);

const registryAuth = { serverAddress: registry.address, username: registry.username, password: registry.password };
// images/etcd is built only in a multi-manager stack.
const etcd = images.etcdRef
  ? new EtcdCluster(
      "etcd",
      {
        settings,
        members: managerNames,
        image: images.etcdRef,
        registryAuth,
        networkId: network.id,
        connection: onManager.connection,
        user: onManager.user,
        caCert: registry.caCert,
        caReady: registry.tls,
      },
      // Every node must trust the registry before any of them pulls.
      { ...managerDocker, dependsOn: [...swarm.ready, ...registry.caInstalls] },
    )
  : undefined;
const master = new Master(
  "master",
  {
    settings,
    image: images.refs.master,
    registryAuth,
    networkId: network.id,
    mqttPassword: broker.passwords.master,
    web: { ...(web.tls && { tls: web.tls }), ...(web.token && { token: web.token }), metricsOpen: config.web.metricsOpen },
    webPort: config.ports.web,
    timings: { heartbeatTimeoutMs: config.heartbeatTimeoutMs, leaseMs: config.leaseMs, taskTimeoutMs: config.taskTimeoutMs },
    ...(etcd && { etcd: etcd.client }),
  },
  // Every node must trust the registry before any of them pulls.
  { ...managerDocker, dependsOn: [...swarm.ready, ...registry.caInstalls, ...nodePulls, broker.service, ...(etcd?.services ?? [])] },
);

const byLanguage = <T>(pick: (language: WorkerLanguage) => T): Record<WorkerLanguage, T> =>
  Object.fromEntries(WORKER_LANGUAGES.map((language) => [language, pick(language)])) as Record<WorkerLanguage, T>;
const workers = new WorkerPool(
  "workers",
  {
    settings,
    images: byLanguage((language) => images.refs[workerImageName(language)]),
    registryAuth,
    networkId: network.id,
    mqttPasswords: byLanguage((language) => broker.passwords[language]),
    grpcToken: master.grpcToken,
    replicas: config.replicas,
    maxReplicasPerNode: config.maxReplicasPerNode,
    simulatedWorkMs: config.simulatedWorkMs,
    shutdownGraceMs: config.shutdownGraceMs,
    heartbeatIntervalMs: config.heartbeatIntervalMs,
    llm: { provider: config.llm.provider, ...(config.llm.baseUrl && { baseUrl: config.llm.baseUrl }), ...(config.llm.model && { model: config.llm.model }) },
    ...(config.llm.apiKey && { llmApiKey: config.llm.apiKey }),
    manager: onManager,
    nodeNames: config.nodes.map((node) => node.name),
    rebalance: multiManager,
  },
  { ...managerDocker, dependsOn: [...swarm.ready, ...registry.caInstalls, ...nodePulls, master.service] },
);

export const webUrl = `${web.scheme}://${config.manager.host}:${config.ports.web}`;
/** The page's access token (web.auth token): `pulumi stack output --show-secrets webToken`. */
export const webToken = web.token ?? "web.auth is off";
/** The CA to trust for the page's self-signed certificate (the registry's CA). */
export const webCaCert = web.caCert ?? (config.web.tls === "provided" ? "the certificate from web.certificate" : "web.tls is off");
export const mqttAddress = config.ports.mqtt === undefined ? "not published" : `${config.manager.host}:${config.ports.mqtt}`;
export const registryAddress = registry.address;
export const registryUsername = registry.username;
export const registryPassword = pulumi.secret(registry.password);
export const registryCaCert = registry.caCert;
/** Every manager, the primary first: the next deploy's quorum guard reads it back (StackReference to this stack). */
export const managers = config.managers.map((node) => node.name);
export const nodes = swarm.nodes.map(({ name, host, role, nodeId }) => ({ name, host, role, nodeId: nodeId.apply((id) => id.trim()) }));
export const services = [
  { name: serviceName(config.stackName, "registry"), image: thirdParty.refs.registry, replicas: 1 },
  { name: serviceName(config.stackName, "mosquitto"), image: thirdParty.refs.mosquitto, replicas: 1 },
  ...(etcd ? etcd.services.map((service) => ({ name: service.name, image: etcd.image, replicas: 1 })) : []),
  { name: serviceName(config.stackName, "master"), image: images.refs.master, replicas: etcd ? MASTER_ETCD_REPLICAS : 1 },
  ...WORKER_LANGUAGES.map((language) => ({
    name: serviceName(config.stackName, workerImageName(language)),
    image: images.refs[workerImageName(language)],
    replicas: config.replicas[language],
  })),
];
/** "<task> <node> <state>" per worker replica, read on the manager once every worker service has converged. */
export const workerPlacement = workers.placement;
/** Run on the manager (ssh) for the live view of which VM runs each worker replica. */
export const workerPlacementCommand = workers.placementCommand;
/** Run on the primary manager (sh -s) to spread the workers again after a VM came back; `npm run lab:rebalance` runs it in the lab. */
export const workerRebalanceScript = workers.rebalanceScript;
