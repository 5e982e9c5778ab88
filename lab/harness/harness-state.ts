// The harness's state: what Pulumi's state holds for each resource, so a
// re-run can tell, as the engine does, which resources are unchanged, which
// to update or replace, and which the program no longer declares (and must be
// deleted, with the inputs they were created with). Also the stack outputs of
// the last run and the replaced resources still waiting for their delete.
//
// Stored as JSON under lab/.state/ (gitignored), mode 0600. Values that were
// secret (top-level inputs and outputs the program or provider marked secret),
// and any other value that contains a known secret (a command's stderr that
// echoes one), are encrypted with AES-256-GCM under a key kept next to the
// file (`<state>.key`, 0600), as Pulumi's passphrase provider encrypts its
// state: no secret is ever stored in clear text.
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { isObject, type Json, type JsonObject } from "./json";

/** One resource as the engine's state would hold it. */
export interface StoredResource {
  urn: string;
  type: string;
  name: string;
  id: string;
  /** Provider reference "urn::id", "" for the default provider. */
  provider: string;
  /** URNs this resource depends on (deleted after it). */
  dependencies: string[];
  deleteBeforeReplace: boolean;
  /** The retainOnDelete option: deleting it (or replacing it) drops it from the state without the provider's delete. */
  retainOnDelete?: boolean;
  /** Inputs after the provider's check (defaults and computed inputs added). */
  inputs: JsonObject;
  outputs: JsonObject;
  secretInputKeys: string[];
  secretOutputKeys: string[];
}

interface StateFile {
  version: 2;
  resources: Record<string, StoredResource>;
  /** Replaced resources whose delete has not run yet (Pulumi deletes them after the update). */
  pendingDeletes: StoredResource[];
  outputs: JsonObject;
  secretOutputKeys: string[];
}

const ENCRYPTED = "__harnessEncrypted";

export class HarnessState {
  private data: StateFile = { version: 2, resources: {}, pendingDeletes: [], outputs: {}, secretOutputKeys: [] };
  private readonly key: Buffer | undefined;

  /** "<urn> <inputs|outputs> <key>" of every value that was encrypted on disk: it stays encrypted. */
  private readonly sealed = new Set<string>();

  /** `containsSecret` tells whether a text holds a known secret (the masker's view): such values are encrypted too. */
  constructor(
    private readonly file: string | undefined,
    private readonly containsSecret: (text: string) => boolean = () => false,
  ) {
    this.key = file ? loadOrCreateKey(`${file}.key`) : undefined;
    if (file && fs.existsSync(file)) {
      const parsed = JSON.parse(fs.readFileSync(file, "utf8")) as Partial<StateFile>;
      // Version 1 (generated passwords and data hashes only) is not carried over: resources are re-created.
      if (parsed.version === 2) {
        this.data = {
          version: 2,
          resources: Object.fromEntries(Object.entries(parsed.resources ?? {}).map(([urn, record]) => [urn, this.decryptRecord(record)])),
          pendingDeletes: (parsed.pendingDeletes ?? []).map((record) => this.decryptRecord(record)),
          outputs: this.decryptValues(parsed.outputs ?? {}),
          secretOutputKeys: parsed.secretOutputKeys ?? [],
        };
      }
    }
  }

  get(urn: string): StoredResource | undefined {
    return this.data.resources[urn];
  }

  all(): StoredResource[] {
    return Object.values(this.data.resources);
  }

  put(record: StoredResource): void {
    this.data.resources[record.urn] = record;
    this.save();
  }

  remove(urn: string): void {
    delete this.data.resources[urn];
    this.save();
  }

  pendingDeletes(): StoredResource[] {
    return [...this.data.pendingDeletes];
  }

  addPendingDelete(record: StoredResource): void {
    this.data.pendingDeletes.push(record);
    this.save();
  }

  removePendingDelete(record: StoredResource): void {
    this.data.pendingDeletes = this.data.pendingDeletes.filter((item) => item !== record && !(item.urn === record.urn && item.id === record.id));
    this.save();
  }

  setOutputs(outputs: JsonObject, secretKeys: string[]): void {
    this.data.outputs = outputs;
    this.data.secretOutputKeys = secretKeys;
    this.save();
  }

  /** The stack outputs of the last successful run, secrets decrypted (for tools such as the e2e test). */
  outputs(): { values: JsonObject; secretKeys: string[] } {
    return { values: this.data.outputs, secretKeys: this.data.secretOutputKeys };
  }

  private save(): void {
    if (!this.file) return;
    fs.mkdirSync(path.dirname(this.file), { recursive: true });
    const onDisk: StateFile = {
      version: 2,
      resources: Object.fromEntries(Object.entries(this.data.resources).map(([urn, record]) => [urn, this.encryptRecord(record)])),
      pendingDeletes: this.data.pendingDeletes.map((record) => this.encryptRecord(record)),
      outputs: this.encryptValues(this.data.outputs, this.data.secretOutputKeys),
      secretOutputKeys: this.data.secretOutputKeys,
    };
    const tmp = `${this.file}.tmp`;
    fs.writeFileSync(tmp, JSON.stringify(onDisk, null, 2), { mode: 0o600 });
    fs.renameSync(tmp, this.file);
  }

  private encryptRecord(record: StoredResource): StoredResource {
    return {
      ...record,
      inputs: this.encryptValues(record.inputs, record.secretInputKeys, `${record.urn} inputs`),
      outputs: this.encryptValues(record.outputs, record.secretOutputKeys, `${record.urn} outputs`),
    };
  }

  private decryptRecord(record: StoredResource): StoredResource {
    return { ...record, inputs: this.decryptValues(record.inputs, `${record.urn} inputs`), outputs: this.decryptValues(record.outputs, `${record.urn} outputs`) };
  }

  private encryptValues(values: JsonObject, secretKeys: string[], where = "stack outputs"): JsonObject {
    const out: JsonObject = { ...values };
    for (const [key, value] of Object.entries(out)) {
      if (value === null) continue;
      const text = JSON.stringify(value);
      if (secretKeys.includes(key) || this.sealed.has(`${where} ${key}`) || this.containsSecret(text)) out[key] = { [ENCRYPTED]: this.encrypt(text) };
    }
    return out;
  }

  /** Every encrypted value is self-describing ({__harnessEncrypted: …}), and stays encrypted. */
  private decryptValues(values: JsonObject, where = "stack outputs"): JsonObject {
    const out: JsonObject = { ...values };
    for (const [key, value] of Object.entries(out)) {
      if (isObject(value) && typeof value[ENCRYPTED] === "string") {
        out[key] = JSON.parse(this.decrypt(value[ENCRYPTED])) as Json;
        this.sealed.add(`${where} ${key}`);
      }
    }
    return out;
  }

  private encrypt(plain: string): string {
    if (!this.key) return Buffer.from(plain, "utf8").toString("base64"); // in-memory state (no file): never written
    const iv = crypto.randomBytes(12);
    const cipher = crypto.createCipheriv("aes-256-gcm", this.key, iv);
    const body = Buffer.concat([cipher.update(plain, "utf8"), cipher.final()]);
    return Buffer.concat([iv, cipher.getAuthTag(), body]).toString("base64");
  }

  private decrypt(text: string): string {
    if (!this.key) return Buffer.from(text, "base64").toString("utf8");
    const raw = Buffer.from(text, "base64");
    const decipher = crypto.createDecipheriv("aes-256-gcm", this.key, raw.subarray(0, 12));
    decipher.setAuthTag(raw.subarray(12, 28));
    try {
      return Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString("utf8");
    } catch {
      throw new Error(`${this.file}: a secret value does not decrypt with ${this.file}.key (the key was replaced?); remove both files to start over`);
    }
  }
}

function loadOrCreateKey(file: string): Buffer {
  if (fs.existsSync(file)) {
    const key = Buffer.from(fs.readFileSync(file, "utf8").trim(), "base64");
    if (key.length !== 32) throw new Error(`${file}: not a 32-byte base64 key`);
    return key;
  }
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const key = crypto.randomBytes(32);
  fs.writeFileSync(file, key.toString("base64"), { mode: 0o600 });
  return key;
}

export function sha256(data: string | Buffer): string {
  return crypto.createHash("sha256").update(data).digest("hex");
}
