// The one module that owns frames, transforms and boxes (DESIGN.md: "One geometry module owns every transform").
export * from './transform.ts';
export * from './box.ts';
export * from './conventions.ts';
