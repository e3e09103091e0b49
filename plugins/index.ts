import { PluginRegistry } from '../gateway/plugin-api/index.js';
import { consulDiscovery } from './discovery/consul.js';
import { dnsDiscovery } from './discovery/dns.js';
import { etcdDiscovery } from './discovery/etcd.js';
import { fileDiscovery } from './discovery/file.js';
import { kubernetesDiscovery } from './discovery/kubernetes.js';
import { staticDiscovery } from './discovery/static.js';

/** The built-in plugins, listed explicitly: nothing is discovered from the file system. */
export const builtinPlugins = [staticDiscovery, fileDiscovery, dnsDiscovery, etcdDiscovery, consulDiscovery, kubernetesDiscovery] as const;

export function createBuiltinRegistry(): PluginRegistry {
  return new PluginRegistry(builtinPlugins);
}
