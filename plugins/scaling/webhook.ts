import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { backoffStepMs, sleep, type LoadReport, type ScalerPlugin } from '../../gateway/plugin-api/index.js';

interface WebhookOptions {
  url: string;
  currentUrl?: string;
  secret?: string;
  secretEnv?: string;
  secretFile?: string;
  headers: Record<string, string>;
  timeoutMs: number;
  retry: { attempts: number; initialMs: number; maxMs: number };
}

export const SIGNATURE_HEADER = 'x-gantry-signature';
export const TIMESTAMP_HEADER = 'x-gantry-timestamp';

/**
 * HMAC-SHA256 over `${timestamp}.${body}` (the body is empty for GET), hex, as `sha256=…`. The timestamp (Unix
 * seconds) is signed too, so a receiver can refuse replays older than a few minutes.
 */
export function signWebhook(secret: string, timestamp: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
}

class HttpStatusError extends Error {
  constructor(readonly status: number, body: string) {
    super(`HTTP ${status}${body ? `: ${body.slice(0, 200)}` : ''}`);
  }
}

function retryable(err: unknown): boolean {
  if (err instanceof HttpStatusError) return err.status >= 500 || err.status === 429;
  return true;   // network errors and per-attempt timeouts
}

function readSecret(o: WebhookOptions, resolvePath: (path: string) => string): string {
  if (o.secret !== undefined) return o.secret;
  if (o.secretEnv !== undefined) {
    const v = process.env[o.secretEnv];
    if (!v) throw new Error(`environment variable ${o.secretEnv} (the webhook secret) is not set`);
    return v;
  }
  return readFileSync(resolvePath(o.secretFile as string), 'utf8').trim();
}

/**
 * Scales by calling an HTTP hook: POST `url` with the decision as JSON `{ service, current, desired, reason, signals,
 * at }`, signed with HMAC (SIGNATURE_HEADER, TIMESTAMP_HEADER) and an Idempotency-Key per decision; the current
 * count is read with a signed GET of `currentUrl` (default `url`) `?service=NAME`, answering `{ "replicas": N }`.
 * Each attempt has its own timeout; network errors, 5xx and 429 are retried with full-jitter backoff, other 4xx not.
 */
export const webhookScaler: ScalerPlugin<WebhookOptions> = {
  kind: 'scaler',
  type: 'webhook',
  optionsSchema: {
    type: 'object',
    additionalProperties: false,
    required: ['url'],
    properties: {
      url: { type: 'string', pattern: '^https?://' },
      currentUrl: { type: 'string', pattern: '^https?://' },
      secret: { type: 'string', minLength: 16, description: 'Prefer secretEnv or secretFile: routes.yaml is often in version control.' },
      secretEnv: { type: 'string', pattern: '^[A-Za-z_][A-Za-z0-9_]*$' },
      secretFile: { type: 'string', minLength: 1, description: "Relative to the routes file's directory." },
      headers: { type: 'object', additionalProperties: { type: 'string' }, default: {} },
      timeoutMs: { type: 'integer', minimum: 100, default: 2000, description: 'Per attempt.' },
      retry: {
        type: 'object', additionalProperties: false, default: {},
        properties: {
          attempts: { type: 'integer', minimum: 0, maximum: 10, default: 2, description: 'Retries after the first try.' },
          initialMs: { type: 'integer', minimum: 1, default: 200 },
          maxMs: { type: 'integer', minimum: 1, default: 2000 },
        },
      },
    },
  },
  check(options) {
    const given = ['secret', 'secretEnv', 'secretFile'].filter((k) => options[k as keyof WebhookOptions] !== undefined);
    if (given.length !== 1) return [[[], `set exactly one of secret, secretEnv, secretFile (found ${given.length ? given.join(', ') : 'none'}): calls are signed`]];
    return [];
  },
  create(options, ctx) {
    // Read at the first call: a missing variable or file is a failed call (retried with backoff), not a crash.
    let secret: string | undefined;
    async function call(method: 'GET' | 'POST', url: string, body: string, idempotencyKey: string | undefined, signal: AbortSignal): Promise<string> {
      const { attempts } = options.retry;
      for (let attempt = 0; ; attempt++) {
        try {
          const timestamp = String(Math.floor(ctx.now() / 1000));
          const headers: Record<string, string> = {
            ...options.headers, 'user-agent': 'gantry-scaler', [TIMESTAMP_HEADER]: timestamp, [SIGNATURE_HEADER]: signWebhook((secret ??= readSecret(options, ctx.resolvePath)), timestamp, body),
          };
          if (method === 'POST') headers['content-type'] = 'application/json';
          if (idempotencyKey) headers['idempotency-key'] = idempotencyKey;
          const res = await fetch(url, { method, headers, body: method === 'POST' ? body : undefined, signal: AbortSignal.any([signal, AbortSignal.timeout(options.timeoutMs)]) });
          const text = await res.text();
          if (!res.ok) throw new HttpStatusError(res.status, text);
          return text;
        } catch (err) {
          if (signal.aborted || attempt >= attempts || !retryable(err)) throw err;
          await sleep(Math.random() * backoffStepMs(attempt + 1, options.retry), signal);
          if (signal.aborted) throw signal.reason;
        }
      }
    }
    return {
      async currentReplicas(service, signal) {
        const u = new URL(options.currentUrl ?? options.url);
        u.searchParams.set('service', service);
        const text = await call('GET', u.toString(), '', undefined, signal);
        let parsed: unknown;
        try { parsed = JSON.parse(text); } catch { throw new Error(`the current-replicas answer is not JSON: ${text.slice(0, 80)}`); }
        const n = typeof parsed === 'number' ? parsed : (parsed as { replicas?: unknown } | null)?.replicas;
        if (typeof n !== 'number' || !Number.isInteger(n) || n < 0) throw new Error(`the current-replicas answer has no integer "replicas": ${text.slice(0, 80)}`);
        return n;
      },
      async scale(service, desired, load: LoadReport, signal) {
        const body = JSON.stringify({ service, current: load.current, desired, reason: load.reason, at: new Date(load.at).toISOString(), signals: load });
        // One key per decision: a retried POST is recognisably the same request.
        await call('POST', options.url, body, `${service}-${load.at}-${desired}`, signal);
      },
      async close() {},
    };
  },
};
