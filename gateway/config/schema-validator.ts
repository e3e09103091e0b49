import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import routesSchema from './routes.schema.json' with { type: 'json' };
import type { YamlPath } from './yaml-source.js';

export interface SchemaProblem {
  readonly path: YamlPath;
  /** Report at the key (unknown field) rather than the value. */
  readonly key?: string;
  readonly message: string;
}

// One Ajv for the process: compiling a schema costs milliseconds, so each is compiled once and cached.
const ajv = new Ajv({ allErrors: true, useDefaults: true, strict: false });
const validateRoutes = ajv.compile(routesSchema);
const pluginValidators = new WeakMap<object, ValidateFunction>();

const PATTERN_MEANING: Record<string, string> = {
  '^/': 'must start with "/"',
  [routesSchema.properties.listen.pattern]: 'must be host:port, e.g. 0.0.0.0:8080 or [::1]:8080',
  [routesSchema.definitions.hostPattern.pattern]: 'must be a host name or a *.suffix wildcard',
  [routesSchema.properties.services.propertyNames.pattern]: 'must be letters, digits, "_", "." or "-" (at most 63)',
  '^[A-Z]+$': 'must be an upper-case method name such as GET',
  '^[A-Za-z0-9-]+$': 'must be a header name (letters, digits and "-")',
  '^https?://[^/?#@]+/?$': 'must be an http:// or https:// URL with a host and port, no path',
};

function describe(e: ErrorObject): string {
  switch (e.keyword) {
    case 'required': return `missing required field "${(e.params as { missingProperty: string }).missingProperty}"`;
    case 'additionalProperties': return `unknown field "${(e.params as { additionalProperty: string }).additionalProperty}"`;
    case 'enum': return `must be one of: ${(e.params as { allowedValues: unknown[] }).allowedValues.join(', ')}`;
    case 'pattern': return PATTERN_MEANING[(e.params as { pattern: string }).pattern] ?? `must match ${(e.params as { pattern: string }).pattern}`;
    case 'propertyNames': return 'invalid name';
    case 'oneOf': return 'must be one of the allowed forms';
    default: return e.message ?? e.keyword;
  }
}

function toPath(instancePath: string): (string | number)[] {
  if (!instancePath) return [];
  return instancePath.slice(1).split('/').map((s) => {
    const seg = s.replace(/~1/g, '/').replace(/~0/g, '~');
    return /^\d+$/.test(seg) ? Number(seg) : seg;
  });
}

/**
 * Turns Ajv's errors into one problem per real mistake. Under a failed `oneOf`, a branch's type mismatch is noise:
 * what remains (a bad pattern, an invalid list item) is reported, or else one line for the whole value.
 */
function toProblems(errors: readonly ErrorObject[], base: YamlPath): SchemaProblem[] {
  const oneOfPaths = new Set(errors.filter((e) => e.keyword === 'oneOf').map((e) => e.instancePath));
  const under = (e: ErrorObject, p: string) => e.instancePath === p || e.instancePath.startsWith(`${p}/`);
  const kept = errors.filter((e) => !(e.keyword === 'type' && oneOfPaths.has(e.instancePath)) && e.keyword !== 'propertyNames');
  const problems: SchemaProblem[] = [];
  const seen = new Set<string>();
  for (const e of kept) {
    if (e.keyword === 'oneOf' && kept.some((d) => d.keyword !== 'oneOf' && under(d, e.instancePath))) continue;
    const path = [...base, ...toPath(e.instancePath)];
    let key: string | undefined;
    if (e.keyword === 'additionalProperties') key = (e.params as { additionalProperty: string }).additionalProperty;
    if (e.propertyName !== undefined) key = e.propertyName;
    const message = e.propertyName !== undefined ? `name "${e.propertyName}" ${describe(e)}` : describe(e);
    const id = `${path.join('/')}|${key ?? ''}|${message}`;
    if (seen.has(id)) continue;
    seen.add(id);
    problems.push({ path, key, message });
  }
  return problems;
}

/** Validates (and fills defaults into) the whole document. */
export function validateRoutesDocument(raw: unknown): SchemaProblem[] {
  return validateRoutes(raw) ? [] : toProblems(validateRoutes.errors ?? [], []);
}

/** Why a plugin's options schema cannot be compiled, or null when it can (and is then cached). */
export function compileProblem(schema: Readonly<Record<string, unknown>>): string | null {
  if (pluginValidators.has(schema)) return null;
  try {
    pluginValidators.set(schema, ajv.compile(schema));
    return null;
  } catch (err) {
    return (err as Error).message;
  }
}

/** Validates a plugin's options against the plugin's own schema; problems are located under `base`. */
export function validatePluginOptions(schema: Readonly<Record<string, unknown>>, options: unknown, base: YamlPath): SchemaProblem[] {
  let validate = pluginValidators.get(schema);
  if (!validate) {
    validate = ajv.compile(schema);
    pluginValidators.set(schema, validate);
  }
  return validate(options) ? [] : toProblems(validate.errors ?? [], base);
}
