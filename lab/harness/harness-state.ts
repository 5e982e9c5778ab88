// The little state Pulumi would keep between runs that the harness needs too:
// generated random values (so a re-run does not rotate every password) and a
// hash of each Docker secret/config's data (the engine never returns it, so
// this is how a re-run knows an existing secret is unchanged).
// Stored as JSON under lab/.state/ (gitignored), file mode 0600.
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";

interface StateFile {
  random: Record<string, { keepers: string; result: string }>;
  dataHashes: Record<string, string>;
}

export class HarnessState {
  private data: StateFile = { random: {}, dataHashes: {} };

  constructor(private readonly file: string | undefined) {
    if (file && fs.existsSync(file)) {
      const parsed = JSON.parse(fs.readFileSync(file, "utf8")) as Partial<StateFile>;
      this.data = { random: parsed.random ?? {}, dataHashes: parsed.dataHashes ?? {} };
    }
  }

  /** A stored random value, if one exists for this resource with the same keepers. */
  randomValue(key: string, keepers: string): string | undefined {
    const entry = this.data.random[key];
    return entry && entry.keepers === keepers ? entry.result : undefined;
  }

  rememberRandom(key: string, keepers: string, result: string): void {
    this.data.random[key] = { keepers, result };
    this.save();
  }

  dataHash(kind: string, name: string): string | undefined {
    return this.data.dataHashes[`${kind}/${name}`];
  }

  rememberDataHash(kind: string, name: string, hash: string): void {
    this.data.dataHashes[`${kind}/${name}`] = hash;
    this.save();
  }

  private save(): void {
    if (!this.file) return;
    fs.mkdirSync(path.dirname(this.file), { recursive: true });
    fs.writeFileSync(this.file, JSON.stringify(this.data, null, 2), { mode: 0o600 });
  }
}

export function sha256(data: string | Buffer): string {
  return crypto.createHash("sha256").update(data).digest("hex");
}
