// What Docker stores when the docker provider creates a service, for the
// guard over index.ts (no Docker engine under mocks). Two things change a
// spec between the program and Docker's store, both recorded under the real
// engine (tests/fixtures/real-engine):
// - the provider's create sets QueryRegistry, so the Docker client resolves a
//   tag-only image through the registry and stores `repo:tag@sha256:…`
//   (updates send the image as declared);
// - the runtime Endpoint reports the endpoint mode and published ports.
import type { JsonObject } from "../../lab/harness/json";
import { translateService, type ApiObject } from "../../lab/harness/service-spec";
import { describeDiffs, readBackService, serviceDiff, type ServiceEndpoint } from "../../lab/harness/service-state";
import type { RegisteredResource } from "./helpers";

export { canonicalState } from "../../lab/harness/service-state";

const HAS_DIGEST = /@sha256:[0-9a-f]{64}$/;

/** `digestFor` answers what the registry would (undefined: no registry serves that image). */
export function storedByDocker(spec: ApiObject, digestFor: (image: string) => string | undefined): { spec: ApiObject; endpoint: ServiceEndpoint } {
  const task = spec["TaskTemplate"] as { ContainerSpec: { Image: string } } & ApiObject;
  const image = task.ContainerSpec.Image;
  const digest = HAS_DIGEST.test(image) ? undefined : digestFor(image);
  const stored: ApiObject = {
    ...spec,
    TaskTemplate: { ...task, ContainerSpec: { ...task.ContainerSpec, Image: digest ? `${image}@${digest}` : image } },
  };
  // The runtime Endpoint (filled in by Docker's allocator; left empty for a dnsrr service without ports).
  const endpointSpec = (spec["EndpointSpec"] ?? {}) as { Mode?: string; Ports?: ApiObject[] };
  const mode = endpointSpec.Mode ?? "vip";
  const ports = endpointSpec.Ports ?? [];
  const endpoint: ServiceEndpoint = mode === "dnsrr" && ports.length === 0 ? { Spec: {} } : { Spec: { Mode: mode }, Ports: ports };
  return { spec: stored, endpoint };
}

/**
 * What a registry answers for an image's digest on the provider's create. The lab's base images
 * (ai-swarm-base/*) are local names no registry serves: the recorded registry service kept its tag.
 */
function digestFor(image: string): string | undefined {
  return image.startsWith("ai-swarm-base/") ? undefined : `sha256:${"b".repeat(64)}`;
}

/** The differences a no-change `pulumi up` would find for one declared service. */
export function perpetualDiffs(service: RegisteredResource): string[] {
  const declared = service.inputs as JsonObject;
  const { spec } = translateService(declared);
  const stored = storedByDocker(spec, digestFor);
  const state = readBackService(stored.spec, stored.endpoint, { auth: declared["auth"] ?? null, convergeConfig: declared["convergeConfig"] ?? null });
  return describeDiffs(String(declared["name"]), serviceDiff(declared, state));
}
