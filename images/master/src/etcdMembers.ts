// The etcd members this master sees, for /healthz: asked in the background
// every few seconds (one status call per member, each with a deadline), read
// from a cache, so /healthz never waits on etcd.
import type { Etcd3 } from "etcd3";

export interface EtcdMemberHealth {
  name: string;
  endpoint: string;
  /** It answered its status call within the deadline and knows a Raft leader. */
  healthy: boolean;
}

/** How often the members are asked, and how long one may take to answer. */
export const MEMBERS_REFRESH_MS = 3_000;
const STATUS_DEADLINE_MS = 1_000;

/** One member's status call, reduced to what /healthz shows. Pure. */
export function memberHealth(endpoint: string, names: ReadonlyMap<string, string>, status: { memberId: string; raftLeader: string } | undefined): EtcdMemberHealth {
  const name = (status && names.get(status.memberId)) ?? names.get(endpoint) ?? new URL(endpoint).host;
  return { name, endpoint, healthy: status !== undefined && status.raftLeader !== "0" };
}

export class EtcdMembers {
  private cache: EtcdMemberHealth[];
  /** Member id -> name, and client URL -> name, from the last member list. */
  private readonly names = new Map<string, string>();
  private timer: NodeJS.Timeout | undefined;
  private refreshing = false;

  /** `perEndpoint`: a client that talks to that member only. */
  constructor(
    private readonly endpoints: readonly string[],
    private readonly perEndpoint: ReadonlyMap<string, Etcd3>,
    private readonly refreshMs = MEMBERS_REFRESH_MS,
  ) {
    this.cache = endpoints.map((endpoint) => memberHealth(endpoint, this.names, undefined));
  }

  /** The last view (every member unhealthy until the first refresh answers). */
  members(): EtcdMemberHealth[] {
    return this.cache;
  }

  start(): void {
    void this.refresh();
    this.timer = setInterval(() => void this.refresh(), this.refreshMs);
    this.timer.unref();
  }

  close(): void {
    clearInterval(this.timer);
  }

  async refresh(): Promise<void> {
    if (this.refreshing) return;
    this.refreshing = true;
    try {
      const statuses = await Promise.all(
        this.endpoints.map(async (endpoint) => {
          const client = this.perEndpoint.get(endpoint);
          if (client === undefined) return undefined;
          try {
            const status = await client.maintenance.status({ deadline: Date.now() + STATUS_DEADLINE_MS });
            if (!this.names.has(status.header.member_id)) await this.learnNames(client);
            return { memberId: status.header.member_id, raftLeader: status.leader };
          } catch {
            return undefined;
          }
        }),
      );
      this.cache = this.endpoints.map((endpoint, i) => memberHealth(endpoint, this.names, statuses[i]));
    } finally {
      this.refreshing = false;
    }
  }

  private async learnNames(client: Etcd3): Promise<void> {
    const list = await client.cluster.memberList({}, { deadline: Date.now() + STATUS_DEADLINE_MS });
    for (const member of list.members) {
      if (member.name === "") continue;
      this.names.set(member.ID, member.name);
      for (const url of member.clientURLs) this.names.set(url, member.name);
    }
  }
}
