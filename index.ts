// ai-swarm: turns plain VMs reachable over SSH into a Docker Swarm and deploys
// the distributed AI query system on it. This file only wires components; see
// docs/pulumi.md for the config keys and how to run it.
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { SwarmApp } from "./components/app";
import { loadStackConfig } from "./components/config";
import { AppImages } from "./components/images";
import { PinnedImages } from "./components/pinnedImages";
import { createDockerProviders } from "./components/providers";
import { PrivateRegistry } from "./components/registry";
import { SwarmCluster } from "./components/swarm";
import { WebAccess } from "./components/webAccess";

// Validates everything first: a bad config throws one error listing every problem, before any resource exists.
const config = loadStackConfig();

const swarm = new SwarmCluster("swarm", { config });
const docker = createDockerProviders(config);
const thirdParty = new PinnedImages("third-party-images", {
  connection: swarm.managerConnection,
  user: config.manager.user,
  images: { mosquitto: config.baseImages.mosquitto, registry: config.baseImages.registry },
});

const registry = new PrivateRegistry("registry", {
  config,
  swarm,
  image: thirdParty.refs.registry,
  managerDocker: docker.manager,
  ...(config.registry.password && { password: config.registry.password }),
});

const web = new WebAccess("web", {
  tls: config.web.tls,
  auth: config.web.auth,
  connection: swarm.managerConnection,
  user: config.manager.user,
  hosts: [config.manager.host, ...config.web.hosts],
  caCert: registry.caCert,
  caReady: registry.tls,
  port: config.ports.web,
  ...(config.web.token && { token: config.web.token }),
  ...(config.web.certificate && { certificate: config.web.certificate }),
  ...(config.web.privateKey && { privateKey: config.web.privateKey }),
});

const images = new AppImages("images", {
  config,
  registry,
  buildProvider: docker.build,
  repoRoot: path.resolve(__dirname),
});

const app = new SwarmApp("app", {
  config,
  swarm,
  registry,
  images,
  mosquittoImage: thirdParty.refs.mosquitto,
  web,
  managerDocker: docker.manager,
});

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
export const nodes = swarm.nodes.map(({ name, host, role, nodeId }) => ({ name, host, role, nodeId: nodeId.apply((id) => id.trim()) }));
export const services = [
  { name: `${config.stackName}_registry`, image: thirdParty.refs.registry, replicas: 1 },
  ...app.services.map(({ name, image, replicas }) => ({ name, image, replicas })),
];
/** A snapshot taken on the manager at deploy time: "<task> <node> <state>" per running worker replica. */
export const workerPlacement = app.placement;
/** Run on the manager (ssh) for the live view of which VM runs each worker replica. */
export const workerPlacementCommand = app.placementCommand;
