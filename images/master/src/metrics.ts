// Prometheus metrics (prom-client). Gauges read the live state when scraped, so
// the hot path only pays for the latency histogram and the rejection counter.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { WorkerView } from "./scheduler";

export interface MetricsSources {
  queueDepth(): number;
  queriesByState(): Record<string, number>;
  workers(): WorkerView[];
  /** Whether this master leads and how often that changed (absent: a single master, always leading). */
  leadership?(): { leading: boolean; transitions: number };
}

export class Metrics {
  readonly registry = new Registry();
  private readonly latency: Histogram;
  private readonly rejected: Counter;
  private readonly commit: Histogram;

  constructor(sources: MetricsSources) {
    collectDefaultMetrics({ register: this.registry, prefix: "aiswarm_master_" });
    new Gauge({
      name: "aiswarm_queue_depth",
      help: "Queries waiting in the FIFO queue",
      registers: [this.registry],
      collect() {
        this.set(sources.queueDepth());
      },
    });
    new Gauge({
      name: "aiswarm_queries",
      help: "Queries by state",
      labelNames: ["state"],
      registers: [this.registry],
      collect() {
        for (const [state, n] of Object.entries(sources.queriesByState())) this.set({ state }, n);
      },
    });
    new Gauge({
      name: "aiswarm_workers",
      help: "Known workers by language, node and status",
      labelNames: ["language", "node", "status"],
      registers: [this.registry],
      collect() {
        this.reset();
        const counts = new Map<string, { language: string; node: string; status: string; n: number }>();
        for (const w of sources.workers()) {
          const key = `${w.language}\u0000${w.node}\u0000${w.status}`;
          const entry = counts.get(key) ?? { language: w.language, node: w.node, status: w.status, n: 0 };
          entry.n += 1;
          counts.set(key, entry);
        }
        for (const { n, ...labels } of counts.values()) this.set(labels, n);
      },
    });
    new Gauge({
      name: "aiswarm_master_leader",
      help: "1 while this master leads (dispatches and writes the store), 0 while it stands by",
      registers: [this.registry],
      collect() {
        this.set(sources.leadership === undefined || sources.leadership().leading ? 1 : 0);
      },
    });
    new Counter({
      name: "aiswarm_master_leader_transitions_total",
      help: "Times this master became leader or lost leadership",
      registers: [this.registry],
      collect() {
        this.reset();
        this.inc(sources.leadership?.().transitions ?? 0);
      },
    });
    this.latency = new Histogram({
      name: "aiswarm_query_latency_seconds",
      help: "End-to-end query latency, created to completed",
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1, 5, 10, 15, 30, 60, 120, 300],
      registers: [this.registry],
    });
    this.rejected = new Counter({
      name: "aiswarm_results_rejected_total",
      help: "Results and credential requests rejected, by reason",
      labelNames: ["reason"],
      registers: [this.registry],
    });
    this.commit = new Histogram({
      name: "aiswarm_store_commit_seconds",
      help: "Time to make one batch of writes durable (group commit), by store engine",
      labelNames: ["engine"],
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5],
      registers: [this.registry],
    });
  }

  observeCommit(engine: string, seconds: number): void {
    this.commit.observe({ engine }, seconds);
  }

  observeLatency(ms: number): void {
    this.latency.observe(ms / 1000);
  }

  resultRejected(reason: string): void {
    this.rejected.inc({ reason });
  }
}
