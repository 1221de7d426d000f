// Prometheus metrics (prom-client), served at /metrics.
//
// Transitions and errors are counted from the committed event log as this process's event feed
// sees it, i.e. cluster-wide: with several processes on one database every one of them reports the
// same totals (aggregate with max(), not sum()). Bytes and active transfers are this process's own.
import client from "prom-client";
import type { JobEvent } from "../store/events.js";
import type { PrismaClient } from "../store/db.js";

export interface Metrics {
  registry: client.Registry;
  /** an event was dispatched by the feed (once per event, whatever the number of subscribers) */
  onEvent(e: JobEvent): void;
  onBytes(n: number): void;
  operationDuration: client.Histogram<"operation_type" | "operation_name" | "outcome">;
}

export function createMetrics(deps: {
  prisma: PrismaClient;
  activeTransfers: () => number;
  openSubscriptions: () => number;
}): Metrics {
  const registry = new client.Registry();
  client.collectDefaultMetrics({ register: registry, prefix: "haul_process_" });

  new client.Gauge({
    name: "haul_jobs",
    help: "Jobs by state (read from the database at scrape time)",
    labelNames: ["state"],
    registers: [registry],
    async collect() {
      const rows = await deps.prisma.job.groupBy({ by: ["state"], _count: { _all: true } });
      this.reset();
      for (const r of rows) this.set({ state: r.state }, r._count._all);
    },
  });
  new client.Gauge({
    name: "haul_active_transfers",
    help: "Jobs this process is transferring now",
    registers: [registry],
    collect() {
      this.set(deps.activeTransfers());
    },
  });
  new client.Gauge({
    name: "haul_open_subscriptions",
    help: "GraphQL subscriptions open on this process (state changes and progress)",
    registers: [registry],
    collect() {
      this.set(deps.openSubscriptions());
    },
  });
  const bytes = new client.Counter({ name: "haul_bytes_transferred_total", help: "Bytes downloaded by this process", registers: [registry] });
  const transitions = new client.Counter({
    name: "haul_transitions_total",
    help: "Committed job events by kind and new state (cluster-wide, as seen by this process)",
    labelNames: ["kind", "state"],
    registers: [registry],
  });
  const errors = new client.Counter({
    name: "haul_job_errors_total",
    help: "Jobs entering ERROR or TRANSIENT_ERROR, by BITS error context and code (cluster-wide)",
    labelNames: ["state", "context", "code"],
    registers: [registry],
  });
  const lag = new client.Histogram({
    name: "haul_event_lag_seconds",
    help: "From an event's commit to its dispatch to this process's subscribers",
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry],
  });
  const operationDuration = new client.Histogram({
    name: "haul_graphql_operation_duration_seconds",
    help: "GraphQL queries and mutations by operation (subscriptions: until the first result)",
    labelNames: ["operation_type", "operation_name", "outcome"],
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry],
  });

  return {
    registry,
    operationDuration,
    onEvent(e) {
      transitions.inc({ kind: e.kind, state: e.state });
      if (e.kind === "STATE_CHANGED" && (e.state === "ERROR" || e.state === "TRANSIENT_ERROR") && e.errorCode) {
        errors.inc({ state: e.state, context: e.errorContext ?? "UNKNOWN", code: e.errorCode });
      }
      lag.observe(Math.max(0, (Date.now() - e.at.getTime()) / 1000));
    },
    onBytes(n) {
      if (n > 0) bytes.inc(n);
    },
  };
}
