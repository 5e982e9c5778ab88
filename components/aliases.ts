// Earlier versions of this program named some resources differently. A stack
// deployed by them must update in place, not replace everything: each renamed
// or moved resource carries an alias to its earlier URN
// (tests/pulumi/aliases.test.ts checks every earlier URN is covered).

import * as pulumi from "@pulumi/pulumi";

/** Components as the program named them before they became the component library (issue 12). */
export const FORMER = {
  app: { type: "ai-swarm:index:App", name: "app" },
  swarm: { type: "ai-swarm:index:Swarm" },
  registry: { type: "ai-swarm:index:Registry" },
  images: { type: "ai-swarm:index:Images" },
} as const;

/** An alias for a resource that was a child of the former App component, under its former name. */
export function formerlyInApp(name: string): pulumi.Alias {
  return { name, parent: pulumi.createUrn(FORMER.app.name, FORMER.app.type) };
}
