import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import type { Ajv, ErrorObject, Options, ValidateFunction } from 'ajv';
import routesSchema from './routes.schema.json' with { type: 'json' };
import { stableStringify } from './stable-stringify.js';
import type { YamlPath } from './yaml-source.js';

export interface SchemaProblem {
  readonly path: YamlPath;
  /** Report at the key (unknown field) rather than the value. */
  readonly key?: string;
  readonly message: string;
}

/** The one set of Ajv options, at build time (precompile-schemas.ts) and at run time alike. */
export const AJV_OPTIONS: Options = { allErrors: true, useDefaults: true, strict: false };

/** The file precompile-schemas.ts writes next to this module: `byKey` maps schemaKey(schema) to its validator. */
export const PRECOMPILED_FILE = 'precompiled-schemas.cjs';

const require = createRequire(import.meta.url);

/**
 * The validators `npm run build` generated for routes.schema.json and the built-in plugins' options. Why: loading
 * Ajv's compiler and compiling the routes schema at start cost a fresh gateway about 11 MiB of RSS (one static route,
 * Node 26: 99-101 MiB, 89 MiB with the generated code, which needs only Ajv's small runtime helpers). A schema whose
 * text differs from the one compiled at build (an edited file, tsc run alone) finds no entry and is compiled here.
 */
const precompiled = ((): ReadonlyMap<string, ValidateFunction> => {
  try {
    return new Map(Object.entries((require(`./${PRECOMPILED_FILE}`) as { byKey: Record<string, ValidateFunction> }).byKey));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'MODULE_NOT_FOUND') return new Map();
    throw err;
  }
})();

/** What identifies a schema in the precompiled table: a hash of its content, whatever its keys' order. */
export function schemaKey(schema: Readonly<Record<string, unknown>>): string {
  return createHash('sha256').update(stableStringify(schema)).digest('hex');
}

// One Ajv for the process, created for the first schema that was not precompiled (a third-party plugin's).
let ajv: Ajv | undefined;
const validators = new WeakMap<object, ValidateFunction>();

/** The schema's validator, compiled once; throws when the schema cannot be compiled. */
function validatorFor(schema: Readonly<Record<string, unknown>>): ValidateFunction {
  let validate = validators.get(schema);
  if (!validate) {
    validate = precompiled.get(schemaKey(schema));
    if (!validate) {
      ajv ??= new (require('ajv') as typeof import('ajv')).Ajv(AJV_OPTIONS);
      validate = ajv.compile(schema);
    }
    validators.set(schema, validate);
  }
  return validate;
}

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
  const validate = validatorFor(routesSchema);
  return validate(raw) ? [] : toProblems(validate.errors ?? [], []);
}

/** Why a plugin's options schema cannot be compiled, or null when it can (and is then cached). */
export function compileProblem(schema: Readonly<Record<string, unknown>>): string | null {
  try {
    validatorFor(schema);
    return null;
  } catch (err) {
    return (err as Error).message;
  }
}

/** Validates a plugin's options against the plugin's own schema; problems are located under `base`. */
export function validatePluginOptions(schema: Readonly<Record<string, unknown>>, options: unknown, base: YamlPath): SchemaProblem[] {
  const validate = validatorFor(schema);
  return validate(options) ? [] : toProblems(validate.errors ?? [], base);
}
