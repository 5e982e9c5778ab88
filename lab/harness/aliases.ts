// Aliases, as the Pulumi engine resolves them: a resource registered under a
// new URN takes over the state of its earlier URN when one of its aliases
// names it. The SDK sends structured aliases (name, type, parent overrides);
// the engine turns them into URNs and, for the children of a resource that
// has aliases, adds the same names under each of the parent's earlier URNs.
// Used by the live harness (a record found under an alias moves to the new
// URN) and by tests/pulumi/aliases.test.ts. Pure.

/** One alias as the SDK sends it: a whole URN, or the parts that differ. */
export interface AliasSpec {
  urn?: string;
  name?: string;
  type?: string;
  /** The earlier parent's URN ("" for none). */
  parentUrn?: string;
  noParent?: boolean;
}

/**
 * The URN of a resource under a parent, formed as the SDK's MockMonitor forms it (which the
 * harness runs under): the last type of the parent's qualified type qualifies the child's. For
 * this program's tree (components at the top, resources under them) that is the engine's URN,
 * except that the harness's top-level resources also carry the Stack's type as qualifier.
 */
export function urnOf(stack: string, project: string, parentUrn: string, type: string, name: string): string {
  const parentType = parentUrn ? (parentUrn.split("::")[2] ?? "").split("$").pop() : undefined;
  const qualified = parentType ? `${parentType}$${type}` : type;
  return `urn:pulumi:${stack}::${project}::${qualified}::${name}`;
}

/**
 * Every earlier URN a resource may have had: each alias, under the parent it
 * names or the resource's own parent and each of that parent's earlier URNs,
 * and the resource's own name and type under each of the parent's earlier URNs.
 */
export function aliasUrns(
  stack: string,
  project: string,
  resource: { type: string; name: string; parentUrn: string },
  aliases: readonly AliasSpec[],
  parentAliasUrns: readonly string[],
): string[] {
  const out = new Set<string>();
  const parents = [resource.parentUrn, ...parentAliasUrns];
  for (const alias of aliases) {
    if (alias.urn) {
      out.add(alias.urn);
      continue;
    }
    const name = alias.name || resource.name;
    const type = alias.type || resource.type;
    // The SDK fills in the resource's own parent when the alias names none; either way the
    // engine also tries the parent's earlier URNs. A different parent stands alone.
    const namedOther = alias.parentUrn !== undefined && alias.parentUrn !== "" && alias.parentUrn !== resource.parentUrn;
    const underParents = alias.noParent ? [""] : namedOther ? [alias.parentUrn as string] : parents;
    for (const parent of underParents) out.add(urnOf(stack, project, parent, type, name));
  }
  for (const parent of parentAliasUrns) out.add(urnOf(stack, project, parent, resource.type, resource.name));
  out.delete(urnOf(stack, project, resource.parentUrn, resource.type, resource.name));
  return [...out];
}

/** The structured aliases of a RegisterResourceRequest (resource_pb Alias: a URN or a Spec). */
export interface AliasMessage {
  getUrn(): string;
  getSpec(): { getName(): string; getType(): string; getParenturn(): string; getNoparent(): boolean } | undefined;
}

export function aliasSpecsOf(messages: readonly AliasMessage[]): AliasSpec[] {
  return messages.map((message) => {
    const spec = message.getSpec();
    if (!spec) return { urn: message.getUrn() };
    return { name: spec.getName(), type: spec.getType(), parentUrn: spec.getParenturn(), noParent: spec.getNoparent() };
  });
}
