// A synthetic roof-LiDAR sweep for the free-space tests: its ground, a 100 × 100 grid of 0.8 m cells around it, and
// the returns. Shared by the free-space and leave-one-out tests, which judge cars against the map it gives.
export const GROUND = -1.9; // a roof LiDAR 1.9 m over the road
export const GRID = { xMin: -40, yMin: -40, cellSize: 0.8, width: 100, height: 100 };

/** Ground returns every 0.5° out to 35 m (every 0.5 m of range), except behind a car whose near side faces the
 * sensor at x = 12 (|y| ≤ 1, about ±4.8°): there the beams end on the car, at body height. */
export function sweep(): Float32Array {
  const pts: number[] = [];
  for (let deg = 0; deg < 360; deg += 0.5) {
    const a = (deg * Math.PI) / 180;
    const c = Math.cos(a), s = Math.sin(a);
    const blocked = c > 0 && Math.abs((12 * s) / c) <= 1;
    const end = blocked ? 12 / c : 35;
    for (let r = 3; r < end; r += 0.5) pts.push(r * c, r * s, GROUND, 0.3);
    if (blocked) for (const z of [-1.5, -1.0, -0.6]) pts.push(12, (12 * s) / c, z, 0.8);
  }
  return Float32Array.from(pts);
}
