export * from './discovery.js';
export * from './plugin-context.js';
export * from './plugin-registry.js';
export * from './scaler.js';
