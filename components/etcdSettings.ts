// Settings every etcd member of the stack runs with, shared by the launcher of
// local members (launch/etcd.ts: tests, benchmarks, `npm run local`) and the
// stack's etcd service: one place for them.

/**
 * Keeps etcd's size bounded. The master rewrites a query's whole row at each
 * step (insert, lease, answer: about three revisions per query) and deletes old
 * answers (ANSWER_RETENTION_HOURS, ANSWER_RETENTION_MAX); etcd keeps every old
 * revision until it is compacted. Periodic auto-compaction by the members themselves discards
 * revisions older than 5 minutes every 5 minutes, whether or not a master is
 * up; bbolt reuses the freed pages, so the database file stops growing at its
 * high-water mark (a defragmentation, `etcdctl defrag`, would hand the space
 * back to the file system; it is not needed for the bound).
 * Five minutes is far longer than any watch of the master lags behind (the
 * leader key's watch), and at 100 queries/s it keeps ~90 000 revisions.
 */
export const ETCD_COMPACTION_FLAGS: readonly string[] = ["--auto-compaction-mode=periodic", "--auto-compaction-retention=5m"];
