// What Docker stores when the docker provider creates a service, for the
// guard over index.ts (no Docker engine under mocks). Two things change a
// spec between the program and Docker's store, both recorded under the real
// engine (tests/fixtures/real-engine):
// - the provider's create sets QueryRegistry, so the Docker client resolves a
//   tag-only image through the registry and stores `repo:tag@sha256:…`
//   (updates send the image as declared);
// - the runtime Endpoint reports the endpoint mode and published ports.
import type { ApiObject } from "../../lab/harness/service-spec";
import type { ServiceEndpoint } from "../../lab/harness/service-state";

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
