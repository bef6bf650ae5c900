export * from './types';
export { createControlActivities, type ControlActivities } from './control';
export { createNodeActivities, type NodeActivities } from './node';
export { createPackageActivities, type PackageActivities } from './packages';
