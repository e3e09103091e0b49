import { AsyncLocalStorage } from 'node:async_hooks';
import { readFileSync } from 'node:fs';
import https from 'node:https';
import { setTimeout as sleep } from 'node:timers/promises';
import type { AcmeChallengeType, AcmeConfig } from '../config/gateway-config.js';
import type { AcmeStorage } from './acme-storage.js';

type AcmeClientModule = typeof import('acme-client');
type AcmeClient = InstanceType<AcmeClientModule['Client']>;
type Order = Awaited<ReturnType<AcmeClient['createOrder']>>;

/** An ACME problem document (RFC 8555 §6.7, RFC 7807) as the CA sent it. */
export interface AcmeProblem {
  readonly type?: string;
  readonly detail?: string;
  readonly status?: number;
  readonly subproblems?: readonly unknown[];
}

/** An order that failed: the CA's problem document when it sent one. */
export class AcmeOrderError extends Error {
  constructor(message: string, readonly problem: AcmeProblem | null, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'AcmeOrderError';
  }
}

/** What one ACME HTTP request made inside an order carries: the order's signal and trust, and the last problem seen. */
interface OrderContext {
  readonly signal: AbortSignal;
  readonly agent: https.Agent | undefined;
  problem: AcmeProblem | null;
}

/** Bounds one HTTP request to the CA (axios has no timeout of its own). */
const REQUEST_TIMEOUT_MS = 30_000;

const orderContext = new AsyncLocalStorage<OrderContext>();
let loaded: Promise<AcmeClientModule> | undefined;

/**
 * acme-client, loaded at the first order (it brings axios, node-forge and @peculiar/x509: a gateway without ACME
 * never loads them). Its HTTP client is one axios instance per process, with no per-client options; its requests
 * take the running order's AbortSignal and trusted CAs from the order's async context, so two orders (or a stopped
 * one and the next) never share them, and its responses leave the CA's last problem document there for the log.
 */
function acmeClient(): Promise<AcmeClientModule> {
  loaded ??= import('acme-client').then((imported) => {
    const acme = ((imported as { default?: AcmeClientModule }).default ?? imported) as AcmeClientModule;
    // Its own retries of a failed request (network errors, 5xx, 429) sleep without a signal: 2 s, then 4 s, no more.
    // The order's retry (acme-renewal.ts) covers longer outages.
    const settings = (acme.axios.defaults as { acmeSettings?: { retryMaxAttempts: number; retryDefaultDelay: number } }).acmeSettings;
    if (settings) { settings.retryMaxAttempts = 2; settings.retryDefaultDelay = 2; }
    acme.axios.interceptors.request.use((config) => {
      const context = orderContext.getStore();
      if (context) {
        config.signal = context.signal;
        config.timeout = REQUEST_TIMEOUT_MS;
        if (context.agent) config.httpsAgent = context.agent;
      }
      return config;
    });
    acme.axios.interceptors.response.use((response) => {
      const context = orderContext.getStore();
      const type = String(response.headers['content-type'] ?? '');
      if (context && response.status >= 400 && type.startsWith('application/problem+json')) context.problem = response.data as AcmeProblem;
      return response;
    });
    return acme;
  });
  return loaded;
}

export interface IssuedCertificate {
  readonly certPem: string;
  readonly keyPem: string;
  /** The challenge type each domain was proved with (already-valid authorizations are not listed). */
  readonly proved: Readonly<Record<string, AcmeChallengeType>>;
}

/**
 * One order (RFC 8555 §7.4) with acme-client: the account (registered, or found by its key), the order, one
 * challenge per pending authorization (the first of `acme.challenges` the CA offers), published in `storage` for
 * whichever process the CA's validation reaches and withdrawn after; then a new key, the CSR, finalization and the
 * certificate. Each step waits on the CA; `signal` aborts the request under way and every later one.
 */
export async function orderCertificate(acmeConfig: AcmeConfig, storage: AcmeStorage, signal: AbortSignal): Promise<IssuedCertificate> {
  const acme = await acmeClient();
  const agent = acmeConfig.caFile === null ? undefined : new https.Agent({ ca: readFileSync(acmeConfig.caFile), keepAlive: false });
  const context: OrderContext = { signal, agent, problem: null };
  try {
    return await orderContext.run(context, () => runOrder(acme, acmeConfig, storage, signal));
  } catch (err) {
    if (signal.aborted) throw signal.reason;
    if (err instanceof AcmeOrderError) throw err;
    throw new AcmeOrderError((err as Error).message, context.problem, { cause: err });
  } finally {
    agent?.destroy();
  }
}

async function runOrder(acme: AcmeClientModule, config: AcmeConfig, storage: AcmeStorage, signal: AbortSignal): Promise<IssuedCertificate> {
  const accountKey = await storage.accountKey(() => acme.crypto.createPrivateEcdsaKey());
  const client = new acme.Client({
    directoryUrl: config.directory, accountKey,
    // Polling for a challenge's or the order's status: 1 s doubling to 10 s, 12 tries (about 1.5 min).
    backoffAttempts: 12, backoffMin: 1000, backoffMax: 10_000,
  });
  await client.createAccount({ termsOfServiceAgreed: true, ...(config.email ? { contact: [`mailto:${config.email}`] } : {}) });
  signal.throwIfAborted();
  const order = await client.createOrder({ identifiers: config.domains.map((value) => ({ type: 'dns', value })) });
  const proved: Record<string, AcmeChallengeType> = {};
  for (const authz of await client.getAuthorizations(order)) {
    signal.throwIfAborted();
    if (authz.status === 'valid') continue;
    const domain = authz.identifier.value;
    const type = config.challenges.find((t) => authz.challenges.some((c) => (c.type as string) === t));
    const challenge = authz.challenges.find((c) => (c.type as string) === type);
    if (!type || !challenge) {
      throw new AcmeOrderError(`the CA offers ${authz.challenges.map((c) => c.type).join(', ')} for ${domain}, none of ${config.challenges.join(', ')}`, null);
    }
    const keyAuthorization = await client.getChallengeKeyAuthorization(challenge);
    const token = (challenge as { token: string }).token;
    if (type === 'http-01') await storage.publishHttpChallenge(token, keyAuthorization);
    else {
      const [key, cert] = await acme.crypto.createAlpnCertificate(authz, keyAuthorization, await acme.crypto.createPrivateEcdsaKey());
      await storage.publishAlpnChallenge(domain, key, cert);
    }
    try {
      await client.completeChallenge(challenge);
      await validated(client, order, domain, type, signal);
    } finally {
      await (type === 'http-01' ? storage.withdrawHttpChallenge(token) : storage.withdrawAlpnChallenge(domain));
    }
    proved[domain] = type;
  }
  signal.throwIfAborted();
  const [keyPem, csr] = await acme.crypto.createCsr({ commonName: config.domains[0], altNames: [...config.domains] }, await acme.crypto.createPrivateEcdsaKey());
  const finalized = await client.finalizeOrder(order, csr);
  const certPem = await client.getCertificate(finalized);
  return { certPem, keyPem: keyPem.toString(), proved };
}

/**
 * Polls the authorization of `domain` until the CA has validated it (RFC 8555 §7.5.1), 0.5 s doubling to 5 s, with
 * sleeps `signal` ends. Invalid: the problem document the CA attached to the challenge (§7.1.6) is the error's.
 */
async function validated(client: AcmeClient, order: Order, domain: string, type: AcmeChallengeType, signal: AbortSignal): Promise<void> {
  for (let delayMs = 500; ; delayMs = Math.min(delayMs * 2, 5000)) {
    const authz = (await client.getAuthorizations(order)).find((a) => a.identifier.value === domain);
    if (authz?.status === 'valid') return;
    if (authz === undefined || authz.status !== 'pending') {
      const problem = (authz?.challenges.find((c) => (c.type as string) === type)?.error ?? null) as AcmeProblem | null;
      throw new AcmeOrderError(`${type} for ${domain} failed: authorization ${authz?.status ?? 'missing'}${problem?.detail ? `: ${problem.detail}` : ''}`, problem);
    }
    await sleep(delayMs, undefined, { signal });
  }
}
