import { createRequire } from 'node:module';
import { dirname, isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { DiscoveryPlugin } from '../plugin-api/discovery.js';
import { checkPluginShape, PluginRegistry } from '../plugin-api/plugin-registry.js';
import { checkPolicyPluginShape, type PolicyPlugin } from '../plugin-api/policy.js';
import { policyKind } from '../policies/policy-kinds.js';
import type { ConfigProblem } from '../errors.js';
import type { PluginEntry } from './check-routes-document.js';
import { compileProblem } from './schema-validator.js';

export interface LoadedPlugins {
  readonly registry: PluginRegistry;
  /** Plugin type → the module file it came from (part of a discovery watch's key: a different module is a new watch). */
  readonly origins: ReadonlyMap<string, string>;
  readonly problems: readonly ConfigProblem[];
}

const isPath = (spec: string) => spec.startsWith('.') || isAbsolute(spec) || spec.startsWith('file:');

/**
 * Where a `plugins:` entry points. A path is taken from the routes file's directory; a package name is resolved from
 * there too (install plugins beside the config), then from Gantry's own location (a global install).
 */
async function importPlugin(spec: string, configFile: string): Promise<{ url: string; module: Record<string, unknown> }> {
  let url: string;
  if (spec.startsWith('file:')) url = spec;
  else if (isPath(spec)) url = pathToFileURL(resolve(dirname(resolve(configFile)), spec)).href;
  else {
    try {
      url = pathToFileURL(createRequire(resolve(configFile)).resolve(spec)).href;
    } catch {
      url = import.meta.resolve(spec);
    }
  }
  return { url, module: (await import(url)) as Record<string, unknown> };
}

/** A module exports one plugin as default (or `plugin`), or several as a default array (or `plugins`). */
function exportedPlugins(module: Record<string, unknown>): unknown[] | null {
  const found = module.default ?? module.plugins ?? module.plugin;
  if (found === undefined) return null;
  return Array.isArray(found) ? found : [found];
}

/** Why a module's policy plugin cannot be used, checked as a built-in kind is; undefined when it can. */
function policyPluginProblem(p: PolicyPlugin<never>, label: string, builtins: PluginRegistry, origins: ReadonlyMap<string, string>): string | undefined {
  const shape = checkPolicyPluginShape(p as unknown as Record<string, unknown>);
  if (shape.length) return `${label} is not a valid policy plugin: ${shape.join('; ')}`;
  const schemaError = compileProblem(p.optionsSchema);
  if (schemaError) return `${label}: optionsSchema is not a valid JSON Schema: ${schemaError}`;
  if (policyKind(p.type) || builtins.policy(p.type)) return `${label}: policy kind "${p.type}" is a built-in's`;
  const other = origins.get(p.type);
  return other ? `${label}: type "${p.type}" is also defined by ${other}` : undefined;
}

/**
 * Loads the modules named under `plugins:` and checks each exported plugin exactly as a built-in is checked (shape,
 * a compilable options schema, a type of its own). Every mistake is a config problem at the entry's file:line:col.
 * ESM caches modules: a changed plugin file takes effect after a restart, not a reload.
 */
export async function loadPluginModules(entries: readonly PluginEntry[], file: string, builtins: PluginRegistry): Promise<LoadedPlugins> {
  const problems: ConfigProblem[] = [];
  const origins = new Map<string, string>();
  if (!entries.length) return { registry: builtins, origins, problems };
  const loaded: DiscoveryPlugin<never>[] = [];
  const policies: PolicyPlugin<never>[] = [];
  for (const { index, spec, line, col } of entries) {
    const add = (message: string) => problems.push({ file, line, col, path: `plugins[${index}]`, message });
    let imported;
    try {
      imported = await importPlugin(spec, file);
    } catch (err) {
      add(`cannot load plugin module "${spec}": ${(err as Error).message.split('\n')[0]}`);
      continue;
    }
    const plugins = exportedPlugins(imported.module);
    if (!plugins) { add(`plugin module "${spec}" exports no plugin (export default a plugin object, or an array of them)`); continue; }
    for (const p of plugins) {
      const label = `plugin module "${spec}"${plugins.length > 1 ? ` (type ${JSON.stringify((p as { type?: unknown })?.type)})` : ''}`;
      if ((p as { kind?: unknown } | null)?.kind === 'policy') {
        const policy = p as PolicyPlugin<never>;
        const problem = policyPluginProblem(policy, label, builtins, origins);
        if (problem) { add(problem); continue; }
        origins.set(policy.type, imported.url);
        policies.push(policy);
        continue;
      }
      const shape = checkPluginShape(p);
      if (shape.length) { add(`${label} is not a valid discovery plugin: ${shape.join('; ')}`); continue; }
      const plugin = p as DiscoveryPlugin<never>;
      const schemaError = compileProblem(plugin.optionsSchema);
      if (schemaError) { add(`${label}: optionsSchema is not a valid JSON Schema: ${schemaError}`); continue; }
      if (builtins.discovery(plugin.type)) { add(`${label}: type "${plugin.type}" is a built-in plugin's`); continue; }
      const other = origins.get(plugin.type);
      if (other) { add(`${label}: type "${plugin.type}" is also defined by ${other}`); continue; }
      origins.set(plugin.type, imported.url);
      loaded.push(plugin);
    }
  }
  return { registry: problems.length ? builtins : builtins.with(loaded, policies), origins, problems };
}
