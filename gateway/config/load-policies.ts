import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { policyKind, policyKindNames } from '../policies/policy-kinds.js';
import type { PluginRegistry } from '../plugin-api/plugin-registry.js';
import type { Problems } from './check-routes-document.js';
import type { PolicyConfig } from './gateway-config.js';
import { validatePluginOptions } from './schema-validator.js';

export interface LoadedPolicies {
  readonly byName: Map<string, PolicyConfig>;
  /** The text of every file the policies read (keys, users), in order: part of the config's hash. */
  readonly fileTexts: readonly string[];
}

/**
 * `policies:` checked and loaded: each entry is one kind, its options checked against the kind's schema, then by the
 * kind itself (policies/policy.ts, PolicyKind.load), which reads the files they name now, relative to the routes
 * file. Problems are located at the entry, so `gantry validate` shows them at file:line:col.
 */
export function loadPolicies(raw: Readonly<Record<string, Readonly<Record<string, unknown>>>>, problems: Problems, baseDir: string, requestIdHeader: string, plugins: PluginRegistry, services: ReadonlySet<string>): LoadedPolicies {
  const byName = new Map<string, PolicyConfig>();
  const fileTexts: string[] = [];
  for (const [name, entry] of Object.entries(raw)) {
    const [kindName, options] = Object.entries(entry)[0] as [string, unknown];
    const kind = policyKind(kindName, plugins);
    if (!kind) {
      problems.add(['policies', name], `unknown policy kind "${kindName}" (known: ${policyKindNames(plugins).join(', ')})`, kindName);
      continue;
    }
    const base = ['policies', name, kindName];
    const found = validatePluginOptions(kind.optionsSchema, options, base);
    for (const p of found) problems.add(p.path, p.message, p.key);
    if (found.length) continue;
    let ok = true;
    const loaded = kind.load(options, {
      requestIdHeader,
      services,
      report: (path, message) => { ok = false; problems.add([...base, ...path], message); },
      readFile: (file, path) => {
        try {
          const text = readFileSync(resolve(baseDir, file), 'utf8');
          fileTexts.push(text);
          return text;
        } catch (err) {
          ok = false;
          problems.add([...base, ...path], `cannot read "${file}": ${(err as Error).message}`);
          return undefined;
        }
      },
    });
    if (ok) byName.set(name, { name, kind: kindName, options: loaded });
  }
  return { byName, fileTexts };
}
