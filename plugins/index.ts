import { PluginRegistry } from '../gateway/plugin-api/index.js';
import { consulDiscovery } from './discovery/consul.js';
import { dnsDiscovery } from './discovery/dns.js';
import { etcdDiscovery } from './discovery/etcd.js';
import { fileDiscovery } from './discovery/file.js';
import { kubernetesDiscovery } from './discovery/kubernetes.js';
import { staticDiscovery } from './discovery/static.js';
import { execScaler } from './scaling/exec.js';
import { kubernetesScaler } from './scaling/kubernetes.js';
import { processScaler } from './scaling/process.js';
import { webhookScaler } from './scaling/webhook.js';

/** The built-in plugins, listed explicitly: nothing is discovered from the file system. */
export const builtinPlugins = [staticDiscovery, fileDiscovery, dnsDiscovery, etcdDiscovery, consulDiscovery, kubernetesDiscovery] as const;

/** The built-in scalers (docs/scaling.md). */
export const builtinScalers = [processScaler, execScaler, webhookScaler, kubernetesScaler] as const;

export function createBuiltinRegistry(): PluginRegistry {
  return new PluginRegistry(builtinPlugins, builtinScalers);
}
