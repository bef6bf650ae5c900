/**
 * Where an instance runs, as pure decisions over the nodes a listNodes activity
 * returned: the server workflow places a batch of new replicas with placeAll, an
 * instance re-checks its own node with placeInstance before a later attempt.
 *
 * The rule: among Ready nodes that match the placement (placement.node pins,
 * placement.nodeSelector requires labels) and have room (instances < capacity),
 * take the one with the fewest instances; ties go to the name that sorts first,
 * so replaying or re-running the decision gives the same node.
 */
import { describePlacement, type NodeView, type PlacementSpec } from '../src/contracts/node';

export type PlacementDecision =
  /** The instance stays where it is. */
  | { kind: 'keep'; node: string }
  /** The instance goes to `node` (from null: it had none). */
  | { kind: 'place'; node: string; from: string | null; why: string }
  /** Nowhere to go: the reason says why, for the instance's error. */
  | { kind: 'none'; reason: string };

/** Whether a node is one the placement allows, Ready or not. */
export function matchesPlacement(node: NodeView, placement: PlacementSpec | undefined): boolean {
  if (placement?.node !== undefined && node.name !== placement.node) return false;
  const labels = node.registration?.labels ?? {};
  return Object.entries(placement?.nodeSelector ?? {}).every(([key, value]) => labels[key] === value);
}

function hasRoom(node: NodeView): boolean {
  return node.instances < (node.registration?.capacity ?? 0);
}

/** The node a new instance goes to: Ready, matching, with room, fewest instances, then first by name. */
export function chooseNode(nodes: readonly NodeView[], placement: PlacementSpec | undefined): NodeView | null {
  const fitting = nodes.filter((n) => n.status === 'Ready' && matchesPlacement(n, placement) && hasRoom(n));
  fitting.sort((a, b) => a.instances - b.instances || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return fitting[0] ?? null;
}

/** "no Ready node matches placement nodeSelector disk=ssd (a: labels differ; b: NotReady)". */
export function noNodeReason(nodes: readonly NodeView[], placement: PlacementSpec | undefined): string {
  const what = `no Ready node matches placement ${describePlacement(placement)}`;
  if (nodes.length === 0) return `${what}: no node has registered`;
  const MAX_LISTED = 5;
  // Ready nodes first: they are what an operator can act on, and nodes long gone stay registered as NotReady.
  const sorted = [...nodes].sort((a, b) => Number(b.status === 'Ready') - Number(a.status === 'Ready') || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const why = sorted.slice(0, MAX_LISTED).map((n) => `${n.name}: ${whyNot(n, placement)}`);
  const rest = sorted.slice(MAX_LISTED);
  if (rest.length > 0) {
    const notReady = rest.filter((n) => n.status !== 'Ready').length;
    why.push(`${rest.length} more${notReady > 0 ? `, ${notReady} of them NotReady` : ''}`);
  }
  return `${what} (${why.join('; ')})`;
}

function whyNot(node: NodeView, placement: PlacementSpec | undefined): string {
  if (placement?.node !== undefined && node.name !== placement.node) return 'not the pinned node';
  if (!matchesPlacement(node, placement)) return 'labels do not match';
  if (node.status !== 'Ready') return 'NotReady';
  if (!hasRoom(node)) return `full (${node.instances} of ${node.registration?.capacity ?? 0} instances)`;
  return 'fits';
}

/**
 * Nodes for a batch of new replicas, in ordinal order: each choice counts against the
 * node it took, so a batch spreads even before visibility counts it. A replica with no
 * fitting node gets null (it places itself later, saying why).
 */
export function placeAll(nodes: readonly NodeView[], placement: PlacementSpec | undefined, ordinals: readonly number[]): Map<number, string | null> {
  const working = nodes.map((n) => ({ ...n }));
  const placed = new Map<number, string | null>();
  for (const ordinal of ordinals) {
    const node = chooseNode(working, placement);
    if (node) node.instances++;
    placed.set(ordinal, node?.name ?? null);
  }
  return placed;
}

/**
 * Before an attempt: an instance keeps a node that is Ready and still matches its
 * placement; otherwise it moves to the best fitting Ready node. When none fits, it keeps
 * a node that matches but is NotReady (its worker may come back, and a start there waits
 * for it) and otherwise has nowhere to go.
 */
export function placeInstance(nodes: readonly NodeView[], placement: PlacementSpec | undefined, current: string | null): PlacementDecision {
  const here = current === null ? undefined : nodes.find((n) => n.name === current);
  if (here && here.status === 'Ready' && matchesPlacement(here, placement)) return { kind: 'keep', node: here.name };
  // The instance is counted on its current node: elsewhere it needs room of its own.
  const elsewhere = chooseNode(
    nodes.filter((n) => n.name !== current),
    placement,
  );
  if (elsewhere) {
    const why =
      current === null
        ? `fewest instances among the Ready nodes matching placement ${describePlacement(placement)}`
        : !here
          ? `node ${current} is not registered`
          : !matchesPlacement(here, placement)
            ? `node ${current} does not match placement ${describePlacement(placement)}`
            : `node ${current} is NotReady${here.reason ? ` (${here.reason})` : ''}`;
    return { kind: 'place', node: elsewhere.name, from: current, why };
  }
  if (current !== null && (!here || matchesPlacement(here, placement))) return { kind: 'keep', node: current };
  return { kind: 'none', reason: noNodeReason(nodes, placement) };
}
