// The bandwidth-accuracy Pareto front: configurations no other beats on both fewer bytes and more AP.

export interface TradeoffPoint {
  bytes: number;
  ap: number;
}

/**
 * Indices of the points on the front (fewest bytes for their AP), sorted by bytes. A point is dominated when
 * another has bytes ≤ and AP ≥ with at least one strict; exact duplicates keep the first. Points with a
 * non-finite value are never on it.
 */
export function paretoFront(points: readonly TradeoffPoint[]): number[] {
  const order = points
    .map((p, i) => ({ ...p, i }))
    .filter((p) => Number.isFinite(p.bytes) && Number.isFinite(p.ap))
    .sort((a, b) => a.bytes - b.bytes || b.ap - a.ap || a.i - b.i);
  const front: number[] = [];
  let best = -Infinity;
  for (const p of order) {
    if (p.ap > best) {
      front.push(p.i);
      best = p.ap;
    }
  }
  return front;
}
