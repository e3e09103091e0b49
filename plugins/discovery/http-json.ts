import http from 'node:http';
import https from 'node:https';

/** TLS material for an HTTPS API (Consul, Kubernetes), already read from files or a kubeconfig. */
export interface TlsMaterial {
  readonly ca?: Buffer;
  readonly cert?: Buffer;
  readonly key?: Buffer;
  readonly insecureSkipVerify?: boolean;
}

export class HttpStatusError extends Error {
  constructor(readonly status: number, readonly body: string, url: string) {
    super(`${url.replace(/\?.*$/, '')} answered ${status}${body ? `: ${body.slice(0, 200).trim()}` : ''}`);
    this.name = 'HttpStatusError';
  }
}

interface RequestOptions {
  readonly headers?: Readonly<Record<string, string>>;
  readonly tls?: TlsMaterial;
  /** Whole-request deadline, milliseconds. */
  readonly timeoutMs: number;
  readonly signal: AbortSignal;
}

/** OpenSSL's codes for a server certificate that does not verify against the CAs given (or the system's). */
const UNTRUSTED_CERTIFICATE = new Set([
  'SELF_SIGNED_CERT_IN_CHAIN', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_GET_ISSUER_CERT', 'CERT_UNTRUSTED',
]);

/** A connection error that names the server, and for an untrusted certificate says what to give. */
function connectionError(host: string, err: Error & { code?: string }): Error {
  if (err.code && UNTRUSTED_CERTIFICATE.has(err.code)) {
    return new Error(`${host}: the server's TLS certificate is not trusted (${err.message}, ${err.code}): give the CA that signed it`, { cause: err });
  }
  return new Error(`${host}: ${err.message}`, { cause: err });
}

function open(url: string, o: RequestOptions, onResponse: (res: http.IncomingMessage) => void, onError: (err: Error) => void): http.ClientRequest {
  const u = new URL(url);
  const lib = u.protocol === 'https:' ? https : http;
  const req = lib.request(u, {
    method: 'GET',
    headers: { accept: 'application/json', ...o.headers },
    // No keep-alive pool: one long request per watch, and a dead connection is never reused.
    agent: false,
    ...(u.protocol === 'https:' ? { ca: o.tls?.ca, cert: o.tls?.cert, key: o.tls?.key, rejectUnauthorized: !o.tls?.insecureSkipVerify } : {}),
  }, onResponse);
  const timer = setTimeout(() => req.destroy(new Error(`no complete answer from ${u.host} in ${o.timeoutMs} ms`)), o.timeoutMs);
  const abort = () => req.destroy(new Error('cancelled'));
  o.signal.addEventListener('abort', abort, { once: true });
  req.once('close', () => { clearTimeout(timer); o.signal.removeEventListener('abort', abort); });
  // Errors with a code come from the socket or TLS; ours (timeout, cancel, a bad line) already say what happened.
  req.on('error', (err: Error & { code?: string }) => onError(err.code ? connectionError(u.host, err) : err));
  req.end();
  return req;
}

/** GET a JSON document: resolves with the body and headers, rejects on a non-2xx answer, a timeout or an abort. */
export function getJson<T>(url: string, o: RequestOptions): Promise<{ body: T; headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    open(url, o, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', (err) => reject(new Error(`${new URL(url).host}: answer cut: ${err.message}`)));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        const status = res.statusCode ?? 0;
        if (status < 200 || status > 299) return reject(new HttpStatusError(status, text, url));
        try {
          resolve({ body: JSON.parse(text) as T, headers: res.headers });
        } catch (err) {
          reject(new Error(`${url.replace(/\?.*$/, '')}: invalid JSON: ${(err as Error).message}`));
        }
      });
    }, reject);
  });
}

/**
 * GET a stream of newline-delimited JSON objects (a Kubernetes watch), calling `onObject` for each. Resolves when
 * the server ends the stream, rejects on an error, a non-2xx answer or an abort.
 */
export function streamJsonLines(url: string, o: RequestOptions, onObject: (value: unknown) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = open(url, o, (res) => {
      const status = res.statusCode ?? 0;
      if (status < 200 || status > 299) {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => reject(new HttpStatusError(status, Buffer.concat(chunks).toString('utf8'), url)));
        return;
      }
      let pending = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        pending += chunk;
        let nl: number;
        while ((nl = pending.indexOf('\n')) >= 0) {
          const line = pending.slice(0, nl).trim();
          pending = pending.slice(nl + 1);
          if (!line) continue;
          try {
            onObject(JSON.parse(line));
          } catch (err) {
            req.destroy(err as Error);
            return;
          }
        }
      });
      // The server (or the network) cut the stream: say so, rather than Node's bare "aborted".
      res.on('error', (err) => reject(new Error(`${new URL(url).host}: watch stream cut: ${err.message}`)));
      res.on('end', () => resolve());
    }, reject);
  });
}
