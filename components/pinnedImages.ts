// Third-party images (Mosquitto, the registry) pinned by digest. The docker
// provider's create asks the registry for a tag-only image's digest and Docker
// stores "tag@sha256:…"; its updates send the image as declared. A service that
// declares a bare tag therefore differs from its state after the first deploy
// and is updated (every task restarted) by the next one. Declaring the digest
// the manager holds avoids that, and keeps every later deploy on the same
// image until the config names another one.
import type * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { remoteCommand } from "./remoteCommand";
import { asRoot, pinImagesScript } from "./scripts";

export interface PinnedImagesArgs<K extends string> {
  /** SSH connection to the manager, whose engine pulls (if needed) and holds the images. */
  connection: command.types.input.remote.ConnectionArgs;
  /** The manager's login user (the script runs as root, through sudo for anyone else). */
  user: string;
  /** Image references to pin, by a short name ("mosquitto" → "eclipse-mosquitto:2"). */
  images: Record<K, string>;
}

export class PinnedImages<K extends string> extends pulumi.ComponentResource {
  /** Each reference as the services should declare it: tag@digest, or the tag for an image no registry served. */
  readonly refs: Record<K, pulumi.Output<string>>;

  constructor(name: string, args: PinnedImagesArgs<K>, opts?: pulumi.ComponentResourceOptions) {
    super("ai-swarm:index:PinnedImages", name, {}, opts);
    const names = Object.keys(args.images) as K[];
    const images = names.map((key) => args.images[key]);
    const resolve = remoteCommand(`${name}-resolve`, { connection: args.connection, create: asRoot(pinImagesScript(images), args.user) }, { parent: this });
    const lines = resolve.stdout.apply((stdout) => stdout.trim().split("\n"));
    this.refs = Object.fromEntries(
      names.map((key, i) =>
        [
          key,
          lines.apply((all) => {
            const line = all[i]?.trim() ?? "";
            if (!line.startsWith(images[i] as string)) throw new Error(`${name}: pinning ${images[i]} on the manager printed "${line}"`);
            return line;
          }),
        ] as const,
      ),
    ) as Record<K, pulumi.Output<string>>;
    this.registerOutputs({ refs: this.refs });
  }
}
