// The simulator's world as the sensors see it: a flat ground plane plus yaw-oriented boxes.
// Everything (buildings, vehicle bodies and cabins, pedestrians, poles) is built from these primitives so that
// one analytic ray-box intersection and one box rasteriser serve both LiDAR and cameras.
// Frame: the simulator's world frame, right-handed, metres, radians, z up, ground at z = 0.

export type SurfaceKind = 'building' | 'vehicle-body' | 'vehicle-cabin' | 'vehicle-wheel' | 'pedestrian' | 'pole' | 'vegetation' | 'barrier';

export interface ScenePrimitive {
  /** Box centre (geometric centre) in the world frame. */
  x: number; y: number; z: number;
  /** Full length (along heading), width, height. */
  l: number; w: number; h: number;
  /** Heading about +z, radians. */
  yaw: number;
  surface: SurfaceKind;
  /** Lambertian reflectivity 0..1 used for LiDAR intensity and camera shading. */
  reflectivity: number;
  /** sRGB base colour for cameras, 0..255 each. */
  color: [number, number, number];
  /** Object id of the actor this part belongs to (-1 for static world). */
  objectId: number;
}

export interface Scene {
  primitives: ScenePrimitive[];
  /** Road surface polygons are drawn by cameras only (LiDAR sees a flat ground either way). */
  groundColor: [number, number, number];
  roadColor: [number, number, number];
  /** Axis-aligned road rectangles [xmin, ymin, xmax, ymax] for camera shading. */
  roads: Array<[number, number, number, number]>;
}
