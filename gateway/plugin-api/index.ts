export * from './abortable.js';
export * from './backoff.js';
export * from './discovery.js';
export * from './plugin-context.js';
export * from './plugin-registry.js';
export * from './schema-fragments.js';
export * from './scaler.js';
export * from './etcd-client.js';
