// Opens the store engine the config names (STORE): SQLite at DB_PATH, or etcd
// at ETCD_ENDPOINTS with this master's client certificate. The leader part
// (leader.ts) campaigns first and passes the fence it won; the etcd store's
// every commit is then conditional on that fence.
import {
  BrokenCircuitError,
  circuitBreaker,
  CircuitState,
  ConsecutiveBreaker,
  ExponentialBackoff,
  handleWhen,
  type IDefaultPolicyContext,
  type IPolicy,
  noJitterGenerator,
} from "cockatiel";
import { Etcd3, GRPCCancelledError, isRecoverableError } from "etcd3";
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

/**
 * How long a member that failed a call is passed over (ms): the first time
 * `initialDelay`, doubling while the calls that test it again keep failing,
 * at most `maxDelay`; one answered call and it is used again. (A stream's
 * test is its opening, which a dead member's channel accepts: after a failed
 * keepalive the pause stays `initialDelay`.)
 */
const ETCD_MEMBER_BACKOFF = { initialDelay: 1_000, maxDelay: 10_000 } as const;

/**
 * The fault handling of one member, so that a lost member costs a call, not
 * the leader's lease: one failed call (unanswered within its deadline,
 * refused, reset) and the member is passed over (ETCD_MEMBER_BACKOFF); the
 * calls meanwhile, the leader's keepalive retry included, go to another
 * member. A call this master cancelled itself (a watch it closed) is no fault
 * of the member.
 *
 * cockatiel's circuit breaker, with two changes from etcd3's default: it
 * opens on the first failure (the default's 3 consecutive failures never
 * come from a dead member's keepalives: opening the stream counts as a
 * success, its error as one failure), and while one call tests a passed-over
 * member again, the others go elsewhere (the breaker would make them wait for
 * that test, which waits its whole deadline on a dead member, 5 s, the TTL of
 * the leader's lease). docs/pulumi.md, "A leader whose etcd member's VM is
 * lost", has what this fixed.
 */
export class EtcdMemberPolicy implements IPolicy {
  declare readonly _altReturn: never;
  private readonly breaker = circuitBreaker(
    handleWhen((error) => isRecoverableError(error) && !(error instanceof GRPCCancelledError)),
    {
      breaker: new ConsecutiveBreaker(1),
      halfOpenAfter: new ExponentialBackoff({ generator: noJitterGenerator, exponent: 2, ...ETCD_MEMBER_BACKOFF }),
    },
  );
  readonly onSuccess = this.breaker.onSuccess;
  readonly onFailure = this.breaker.onFailure;

  execute<T>(fn: (context: IDefaultPolicyContext) => PromiseLike<T> | T, signal?: AbortSignal): Promise<T> {
    if (this.breaker.state === CircuitState.HalfOpen) return Promise.reject(new BrokenCircuitError("this etcd member is being tested; passed over meanwhile"));
    return this.breaker.execute(fn, signal);
  }
}

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
    // With one member there is no other to pass over to: etcd3's default then.
    faultHandling: etcd.endpoints.length > 1 ? { host: () => new EtcdMemberPolicy() } : {},
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
