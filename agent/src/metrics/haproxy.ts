/** HAProxy's view of the routed nodes, folded into one series per (kind, node) for the metrics. */
import type { NodeView } from "../balancer/balancer";

interface NodeSeries {
  kind: NodeView["kind"];
  node: string;
  /** 1 when HAProxy sends the node new connections in every org's backend that has it, else 0. */
  up: number;
  /** Connections open to the node, over every org's backend. */
  connections: number;
}

/** Orgs are many and stay out of labels: a node's backends over all orgs are summed up here. */
export function nodeSeries(views: NodeView[]): NodeSeries[] {
  const series = new Map<string, NodeSeries>();
  for (const view of views) {
    const key = `${view.kind} ${view.node}`;
    const entry = series.get(key) ?? { kind: view.kind, node: view.node, up: 1, connections: 0 };
    if (!view.healthy) entry.up = 0;
    entry.connections += view.active;
    series.set(key, entry);
  }
  return [...series.values()];
}
