// Explicit provider resources (`pulumi:providers:docker`, …) are registered
// like any resource; the mock monitor gives resources that use one its
// reference "urn::id". The registry remembers each provider's inputs by id and
// opens, once per docker provider, the connection to the engine it points at.
import { DockerEngine } from "./docker-engine";
import { fieldsOf, InputError, type JsonObject, optObjectList, optString, optStringList } from "./json";
import type { RegistryAuth } from "./service-spec";
import { openSocketTunnel, type SocketTunnel } from "./ssh";

/** Docker provider inputs the harness acts on; anything else set fails loudly. */
const DOCKER_PROVIDER_FIELDS = ["host", "sshOpts", "registryAuth", "version", "disableDockerDaemonCheck"] as const;

export interface DockerEndpoint {
  engine: DockerEngine;
  /** The value for `docker -H`. */
  dockerHost: string;
  registryAuth: RegistryAuth[];
  description: string;
}

interface ProviderEntry {
  type: string;
  name: string;
  inputs: JsonObject;
}

export class ProviderRegistry {
  private readonly providers = new Map<string, ProviderEntry>();
  private readonly endpoints = new Map<string, Promise<DockerEndpoint>>();
  private readonly tunnels: SocketTunnel[] = [];

  /** `defaultDockerConfig`: the stack's docker:* config, used when a resource names no provider. */
  constructor(private readonly defaultDockerConfig: JsonObject) {}

  register(id: string, type: string, name: string, inputs: JsonObject): void {
    this.providers.set(id, { type, name, inputs });
  }

  /** The docker engine a resource's provider reference points at. */
  docker(providerRef: string, forResource: string): Promise<DockerEndpoint> {
    const id = providerRef === "" ? "default" : providerId(providerRef);
    let endpoint = this.endpoints.get(id);
    if (!endpoint) {
      endpoint = this.openDocker(id, forResource);
      this.endpoints.set(id, endpoint);
    }
    return endpoint;
  }

  closeAll(): void {
    for (const tunnel of this.tunnels) tunnel.close();
    this.tunnels.length = 0;
    this.endpoints.clear();
  }

  private async openDocker(id: string, forResource: string): Promise<DockerEndpoint> {
    const entry = id === "default" ? { type: "pulumi:providers:docker", name: "default", inputs: this.defaultDockerConfig } : this.providers.get(id);
    if (!entry) throw new InputError(`${forResource}: its provider (${id}) was never registered`);
    if (entry.type !== "pulumi:providers:docker") {
      throw new InputError(`${forResource}: expects a docker provider, got ${entry.type} ${entry.name}`);
    }
    const path = `pulumi:providers:docker ${entry.name}`;
    const inputs = fieldsOf(decodeProviderInputs(entry.inputs), path, DOCKER_PROVIDER_FIELDS);
    // No host: like the provider, DOCKER_HOST or the local default socket.
    const host = optString(inputs, "host", path) ?? process.env["DOCKER_HOST"] ?? "unix:///var/run/docker.sock";
    const registryAuth = (optObjectList(inputs, "registryAuth", path) ?? []).map((auth, i) => {
      const at = `${path}.registryAuth[${i}]`;
      const f = fieldsOf(auth, at, ["address", "username", "password"]);
      return { serverAddress: optString(f, "address", at) ?? "", username: optString(f, "username", at), password: optString(f, "password", at) };
    });
    const socketPath = await this.socketFor(host, optStringList(inputs, "sshOpts", path) ?? [], path);
    return { engine: new DockerEngine(socketPath), dockerHost: `unix://${socketPath}`, registryAuth, description: host };
  }

  private async socketFor(host: string, sshOpts: string[], path: string): Promise<string> {
    if (host.startsWith("unix://")) return host.slice("unix://".length);
    const ssh = parseSshHost(host);
    if (!ssh) throw new InputError(`${path}.host: "${host}" is not supported by the harness (use ssh://user@host[:port] or unix:///path)`);
    const tunnel = await openSocketTunnel(ssh, sshOpts);
    this.tunnels.push(tunnel);
    return tunnel.socketPath;
  }
}

/**
 * The SDK sends a provider resource's non-string inputs JSON-encoded (as the
 * engine passes provider config), e.g. sshOpts arrives as '["-o","BatchMode=yes"]'.
 * Decodes those back; plain strings (host, version) stay as they are.
 */
export function decodeProviderInputs(inputs: JsonObject): JsonObject {
  const out: JsonObject = {};
  for (const [key, value] of Object.entries(inputs)) {
    if (typeof value === "string" && /^\s*[[{]/.test(value)) {
      try {
        out[key] = JSON.parse(value) as JsonObject[keyof JsonObject];
        continue;
      } catch {
        // not JSON after all: keep the string, the field check names it if it is wrong
      }
    }
    out[key] = value;
  }
  return out;
}

/** "urn:pulumi:dev::ai-swarm::pulumi:providers:docker::manager::<id>" → "<id>". */
export function providerId(ref: string): string {
  const at = ref.lastIndexOf("::");
  return at >= 0 ? ref.slice(at + 2) : ref;
}

/** ssh://root@10.0.0.1:2222 → {user: root, host: 10.0.0.1, port: 2222}. */
export function parseSshHost(host: string): { user: string; host: string; port: number } | undefined {
  const match = /^ssh:\/\/(?:([^@/]+)@)?(\[[^\]]+\]|[^:/]+)(?::(\d+))?\/?$/.exec(host);
  if (!match) return undefined;
  const port = match[3] ? Number(match[3]) : 22;
  if (port < 1 || port > 65535) return undefined;
  return { user: match[1] ?? "root", host: (match[2] as string).replace(/^\[|\]$/g, ""), port };
}

/** The credentials for `registryHost` among the provider's registryAuth entries. */
export function authForRegistry(entries: RegistryAuth[], registryHost: string): RegistryAuth | undefined {
  const strip = (address: string) => address.replace(/^https?:\/\//, "").replace(/\/+$/, "");
  return entries.find((entry) => strip(entry.serverAddress) === strip(registryHost));
}
