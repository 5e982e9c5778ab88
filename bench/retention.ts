/**
 * npm run bench:retention: what one retention batch costs on the SQLite engine
 * with RETENTION_BENCH_ROWS (50 000) finished queries of a 200-character query
 * and a 2000-character answer (a temporary file, removed at the end): a batch
 * with nothing to delete (every sweep of a quiet minute) and a batch of 1000
 * deleted by the count bound (ANSWER_RETENTION_MAX). Prints the numbers; the
 * master README's "Retention, bounded" quotes them.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { z } from "zod";
import { SqliteStore } from "../images/master/src/sqliteStore";

const BATCH = 1_000;
const rows = z.coerce.number().int().min(BATCH).max(1_000_000).default(50_000).safeParse(process.env.RETENTION_BENCH_ROWS || undefined);
if (!rows.success) {
  process.stderr.write(`RETENTION_BENCH_ROWS: ${rows.error.issues.map((i) => i.message).join("; ")} (whole number, ${BATCH} to 1000000)\n`);
  process.exit(2);
}
const n = rows.data;
const dir = mkdtempSync(join(tmpdir(), "bench-retention-"));
const ms = (from: bigint): number => Number(process.hrtime.bigint() - from) / 1e6;

async function main(): Promise<void> {
  const store = new SqliteStore(join(dir, "master.db"));
  store.beginBatch();
  for (let i = 0; i < n; i++) {
    store.insert({ id: `q${i}`, session: `s${i % 100}`, query: "q".repeat(200), queueKey: i + 1, hasCredential: false, createdMs: i });
    store.finish({ id: `q${i}`, status: "done", answer: "a".repeat(2_000), error: null, provider: "offline", worker: null, receivedMs: null, startedMs: null, finishedMs: null, completedMs: 1_000 + i });
  }
  await store.commitBatch();

  const runs = 200;
  const idle = process.hrtime.bigint();
  for (let i = 0; i < runs; i++) {
    store.beginBatch();
    if (store.deleteOldestFinished({ before: 0, keep: n }, BATCH).done !== 0) throw new Error("deleted within the bounds");
    await store.commitBatch();
  }
  console.log(`${n} finished rows, nothing to delete: ${(ms(idle) / runs).toFixed(3)} ms a batch (mean of ${runs})`);

  const full = process.hrtime.bigint();
  store.beginBatch();
  const pruned = store.deleteOldestFinished({ before: 0, keep: n - BATCH }, BATCH);
  await store.commitBatch();
  console.log(`${n} finished rows, ${pruned.done} deleted by the count bound: ${ms(full).toFixed(3)} ms the batch, its commit included`);
  await store.close();
}

main()
  .catch((error: unknown) => {
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  })
  .finally(() => rmSync(dir, { recursive: true, force: true }));
