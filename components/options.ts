// Resource options for a component's children. Pulumi does not pass a
// component's `dependsOn` on to its children, so a component that must come
// after something (the swarm, the registry's CAs) hands its own dependsOn to
// each child here; providers are inherited from the parent by Pulumi itself.
import * as pulumi from "@pulumi/pulumi";

/** Options for a child of `parent`: after the component's own dependsOn, then whatever `more` adds. */
export function childOf(parent: pulumi.ComponentResource, opts: pulumi.ComponentResourceOptions | undefined, more: pulumi.CustomResourceOptions = {}): pulumi.CustomResourceOptions {
  return { ...more, parent, dependsOn: [...resources(opts?.dependsOn, "the component's dependsOn"), ...resources(more.dependsOn, "dependsOn")] };
}

function resources(value: pulumi.ComponentResourceOptions["dependsOn"], what: string): pulumi.Resource[] {
  if (value === undefined) return [];
  const list = Array.isArray(value) ? value : [value];
  return list.map((item) => {
    if (!pulumi.Resource.isInstance(item)) throw new pulumi.RunError(`${what}: give resources, not outputs (a component passes them on to its children)`);
    return item;
  });
}
