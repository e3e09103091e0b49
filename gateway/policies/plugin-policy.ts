import { pluginContext } from '../plugin-api/plugin-context.js';
import type { PolicyAnswer, PolicyHooks, PolicyPlugin, PolicyRequest } from '../plugin-api/policy.js';
import type { AnswerEdit, PolicyExchange, PolicyKind, PolicyLoadContext, Verdict } from './policy.js';

/** The exchange as a plugin's hooks see it (plugin-api/policy.ts): made for each request of a plugin's routes. */
class PluginRequest implements PolicyRequest {
  constructor(private readonly ex: PolicyExchange) {}
  get method(): string { return this.ex.req.method as string; }
  get path(): string { return this.ex.path; }
  get host(): string { return this.ex.host; }
  get headers(): Record<string, string | string[] | undefined> { return this.ex.req.headers; }
  get requestId(): string { return this.ex.requestId; }
  get consumer(): string { return this.ex.consumer; }
  set consumer(value: string) { this.ex.consumer = value; }
  get signal(): AbortSignal { return this.ex.signal; }
}

/** A plugin's answer as a verdict; a malformed one is the plugin's bug, answered 500 like a throw. */
function verdictOf(answer: PolicyAnswer | undefined): Verdict {
  if (answer === undefined) return undefined;
  const { status, headers = [], body = '' } = answer;
  if (!Number.isInteger(status) || status < 200 || status > 599) throw new Error(`a policy plugin answered with status ${String(status)} (200-599)`);
  return { relay: { status, headers, body: typeof body === 'string' ? Buffer.from(body) : body }, reason: 'answered' };
}

function isPromise<T>(v: T | Promise<T>): v is Promise<T> {
  return v !== undefined && typeof (v as Promise<T>).then === 'function';
}

/** A policy plugin as a kind like the built-in ones: the same load checks, chain and metrics (reason `answered`). */
export function pluginPolicyKind(plugin: PolicyPlugin<Record<string, unknown>>): PolicyKind<Record<string, unknown>> {
  return {
    kind: plugin.type,
    optionsSchema: plugin.optionsSchema,
    load(options: unknown, ctx: PolicyLoadContext) {
      const o = options as Record<string, unknown>;
      for (const [path, message] of plugin.check?.(o) ?? []) ctx.report(path, message);
      return o;
    },
    async create(name, options, ctx) {
      const closed = new AbortController();
      const log = ctx.runtime.log.child({ policy: name, plugin: plugin.type });
      const hooks: PolicyHooks = await plugin.create(options, pluginContext(log, closed.signal, Date.now, ctx.baseDir));
      const onRequest = hooks.onRequest?.bind(hooks);
      const onAnswer = hooks.onAnswer?.bind(hooks);
      const edit: AnswerEdit | null = onAnswer === undefined ? null : { edit: (headers, ex) => onAnswer(headers, new PluginRequest(ex)) };
      const step = {
        policy: name,
        kind: plugin.type,
        apply(ex: PolicyExchange): Verdict | Promise<Verdict> {
          if (edit !== null) (ex.answerEdits ??= []).push(edit);
          if (onRequest === undefined) return undefined;
          const answer = onRequest(new PluginRequest(ex));
          return isPromise(answer) ? answer.then(verdictOf) : verdictOf(answer);
        },
      };
      return {
        forRoute: () => step,
        close: async () => {
          closed.abort();
          await hooks.close?.();
        },
      };
    },
  };
}
