// Opens the store engine the config names (STORE): SQLite at DB_PATH, or etcd
// at ETCD_ENDPOINTS with this master's client certificate. The leader part
// (leader.ts) campaigns first and passes the fence it won; the etcd store's
// every commit is then conditional on that fence.
import { Etcd3 } from "etcd3";
import type { Config, EtcdConfig } from "./config";
import { EtcdStore, type Fence } from "./etcdStore";
import { SqliteStore } from "./sqliteStore";
import type { QueryStore } from "./store";

/** Deadline of every unary etcd call: a member that stops answering fails the call (and the client tries another). */
export const ETCD_CALL_TIMEOUT_MS = 5_000;

/**
 * The largest etcd response the client takes (gRPC's default is 4 MiB): a
 * page of the start-up load, EtcdStore's LOAD_PAGE_ROWS rows of at most about
 * 1 MiB each (MAX_KEPT_ANSWER_CHARS escaped, plus the query).
 */
export const ETCD_MAX_RESPONSE_BYTES = 128 * 1024 * 1024;

/** An etcd client speaking TLS to the members, authenticated by this master's certificate. */
export function createEtcdClient(etcd: EtcdConfig): Etcd3 {
  return new Etcd3({
    hosts: etcd.endpoints,
    credentials: {
      rootCertificate: Buffer.from(etcd.ca),
      certChain: Buffer.from(etcd.cert),
      privateKey: Buffer.from(etcd.key),
    },
    dialTimeout: ETCD_CALL_TIMEOUT_MS,
    grpcOptions: { "grpc.max_receive_message_length": ETCD_MAX_RESPONSE_BYTES },
    defaultCallOptions: (context) => (context.isStream ? {} : { deadline: Date.now() + ETCD_CALL_TIMEOUT_MS }),
  });
}

/**
 * The store `cfg.store` names. For etcd: `fence` is the leader key and lease
 * this master won (every write is conditional on it); `client` an existing
 * client to share (else one is made, and closing the store closes it).
 */
export async function openStore(cfg: Config, fence?: Fence, client?: Etcd3): Promise<QueryStore> {
  if (cfg.store === "sqlite") return new SqliteStore(cfg.dbPath);
  if (cfg.etcd === undefined) throw new Error("STORE=etcd without the etcd settings (ETCD_*)");
  const etcd = client ?? createEtcdClient(cfg.etcd);
  try {
    return await EtcdStore.open({ client: etcd, prefix: cfg.etcd.prefix, fence, ownsClient: client === undefined });
  } catch (error) {
    if (client === undefined) etcd.close();
    throw error;
  }
}

/** Where the queries are, for the logs: the file, or the members and prefix. */
export function storeWhere(cfg: Config): Record<string, string> {
  return cfg.store === "etcd" && cfg.etcd
    ? { store: "etcd", etcd: cfg.etcd.endpoints.join(","), prefix: cfg.etcd.prefix }
    : { store: "sqlite", db: cfg.dbPath };
}
