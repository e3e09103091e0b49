import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createSecureContext, type SecureContext, type TLSSocket } from 'node:tls';
import type { ErrorCode } from '../errors.js';
import type { Exchange } from '../proxy/exchange.js';
import type { TlsVersion } from '../config/gateway-config.js';
import { contextOptions } from './certificate-store.js';

/** A token as RFC 8555 §8.1 makes them (base64url); anything else is never a file name under the challenge directory. */
const TOKEN = /^[A-Za-z0-9_-]{1,256}$/;

/**
 * `tls.acme` as the request path and the TLS listener read it: where pending challenges are published
 * (acme-storage.ts), or null without ACME. Set at start and at each reload.
 */
export interface AcmeChallengeFiles {
  http01Dir: string | null;
  alpnDir: string | null;
  /** The configured domains: the only names a TLS-ALPN-01 challenge is looked up for. */
  domains: ReadonlySet<string>;
}

/**
 * Answers an HTTP-01 challenge (RFC 8555 §8.3) from the file the ordering process published, whichever process the
 * CA's request reaches: 200 with the key authorization, or 404 GW_ERR_ACME_CHALLENGE_UNKNOWN for a token that is not
 * pending. Only requests under /.well-known/acme-challenge/ come here, and only with `tls.acme` configured.
 */
export function answerHttpChallenge(ex: Exchange, dir: string, token: string, requestIdHeader: string, draining: boolean, fail: (ex: Exchange, code: ErrorCode) => void): void {
  if (!TOKEN.test(token)) return fail(ex, 'GW_ERR_ACME_CHALLENGE_UNKNOWN');
  readFile(join(dir, token)).then((body) => {
    if (ex.closed || ex.res.headersSent) return;
    ex.settled = true;
    ex.status = 200;
    const headers = ['content-type', 'application/octet-stream', 'content-length', String(body.length), requestIdHeader, ex.requestId];
    if (draining || ex.closeAfter) headers.push('connection', 'close');
    ex.bytes = body.length;
    ex.res.writeHead(200, headers);
    ex.res.end(body);
  }, () => {
    if (!ex.closed) fail(ex, 'GW_ERR_ACME_CHALLENGE_UNKNOWN');
  });
}

const ACME_TLS_1 = 'acme-tls/1';
/** A handshake whose client offered acme-tls/1 for a configured domain, seen before its certificate was chosen. */
const kAcmeValidation = Symbol('acme-validation');
/** A handshake whose certificate was chosen by name, before its ALPN was (TLS 1.2). */
const kCertificateChosen = Symbol('certificate-chosen');

type HandshakeSocket = TLSSocket & { [kAcmeValidation]?: boolean; [kCertificateChosen]?: boolean };

/**
 * TLS-ALPN-01 (RFC 8737): a client that offers ALPN `acme-tls/1` with the name of a domain being validated gets the
 * challenge certificate the ordering process published; every other client of that name gets its usual certificate.
 *
 * Node's SNICallback, where the certificate is chosen, is not told the client's ALPN list; its ALPNCallback is, and
 * in TLS 1.3 OpenSSL runs it first (ALPN must be settled before early data is accepted, so before the certificate):
 * `alpnCallback` marks such a handshake on its socket and `sniCallback` then serves the challenge certificate. In
 * TLS 1.2 the certificate is chosen first, so a client offering acme-tls/1 there already has the usual certificate:
 * it is refused (no_application_protocol) rather than told acme-tls/1 over the wrong certificate. The validation
 * clients of Let's Encrypt and pebble (Go) speak TLS 1.3 to a server that offers it, as this one always does.
 */
export class AlpnChallengeResponder {
  constructor(private readonly files: AcmeChallengeFiles, private readonly http2: boolean, private readonly minVersion: () => TlsVersion) {}

  /** tls.Server's ALPNCallback: the server's preference (h2 when on, then http/1.1), acme-tls/1 as explained above. */
  alpnCallback(): (this: TLSSocket, info: { servername: string; protocols: string[] }) => string | undefined {
    const responder = this;
    return function (this: TLSSocket, info) {
      return responder.#select(this as HandshakeSocket, info);
    };
  }

  #select(socket: HandshakeSocket, info: { servername: string; protocols: string[] }): string | undefined {
    const { protocols } = info;
    if (this.files.alpnDir !== null && protocols.includes(ACME_TLS_1)) {
      // A resumed session skips the certificate callback, so it would keep a certificate chosen before.
      const validation = info.servername && this.files.domains.has(info.servername.toLowerCase()) && !socket[kCertificateChosen] && !socket.isSessionReused();
      if (validation) {
        socket[kAcmeValidation] = true;
        return ACME_TLS_1;
      }
    }
    if (this.http2 && protocols.includes('h2')) return 'h2';
    if (protocols.includes('http/1.1')) return 'http/1.1';
    return undefined;
  }

  /** Wraps the store's SNICallback: the challenge certificate for a marked handshake, the usual one otherwise. */
  sniCallback(usual: (servername: string) => SecureContext): (this: TLSSocket, servername: string, cb: (err: Error | null, ctx?: SecureContext) => void) => void {
    const responder = this;
    return function (this: TLSSocket, servername, cb) {
      const socket = this as HandshakeSocket;
      if (socket[kAcmeValidation] !== true) {
        socket[kCertificateChosen] = true;
        cb(null, usual(servername));
        return;
      }
      responder.#challengeContext(servername.toLowerCase()).then((context) => cb(null, context), (err: Error) => cb(err));
    };
  }

  async #challengeContext(domain: string): Promise<SecureContext> {
    const dir = this.files.alpnDir;
    if (dir === null || !this.files.domains.has(domain)) throw new Error(`no TLS-ALPN-01 challenge for ${domain}`);
    // The file holds the challenge's key, then its certificate (acme-storage.ts); absent: no challenge is pending.
    const pem = await readFile(join(dir, domain), 'utf8');
    return createSecureContext({ ...contextOptions(this.minVersion()), key: pem, cert: pem });
  }
}
