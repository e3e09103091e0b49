import type { IncomingMessage } from 'node:http';
import type https from 'node:https';
import type http2 from 'node:http2';
import { mkdirSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import type { ServerLimits, TlsCertificate, TlsConfig } from '../config/gateway-config.js';
import type { RequestHandlers } from '../proxy/handle-request.js';
import { applyLimits, createEdgeServer } from '../server/edge-server.js';
import { http2Options, watchSessions } from '../server/http2-sessions.js';
import { AlpnChallengeResponder, type AcmeChallengeFiles } from './acme-challenges.js';
import { AcmeStorage, readStoredCertificate } from './acme-storage.js';
import { CertificateStore } from './certificate-store.js';
import { CertificateWatcher } from './certificate-watcher.js';
import { answerPlainHttpOnTlsPort } from './plain-http-answer.js';
import { hstsHttp2ResponseClass, hstsResponseClass, type HstsSetting } from './hsts-response.js';
import type { HttpsRedirect } from './https-redirect.js';
import { readCertificates } from './read-certificates.js';
import { TicketKeyRotation } from './ticket-keys.js';

export interface TlsListenerOptions {
  readonly config: TlsConfig;
  readonly limits: ServerLimits;
  readonly handlers: RequestHandlers;
  readonly onUpgrade: (req: IncomingMessage, socket: Duplex, head: Buffer) => void;
  readonly log: Logger;
  /** The plain listener's redirect, which this listener points at itself when `redirectHttp` is on. */
  readonly redirect: HttpsRedirect;
  /** What the session-ticket keys derive from (ticket-keys.ts: shared by a cluster's workers). */
  readonly ticketSecret: Buffer;
  /** Where `tls.acme`'s pending challenges are, for this listener (TLS-ALPN-01) and the request path (HTTP-01). */
  readonly acmeChallenges: AcmeChallengeFiles;
}

const summary = (certificates: readonly TlsCertificate[]) => certificates.map((c) => ({ names: c.names, fingerprint: c.fingerprint, validTo: c.validTo }));

/**
 * The HTTPS listener: the edge server (server/edge-server.ts, the plain listener's options, limits and handlers) over
 * TLS, its certificates chosen by SNI (certificate-store.ts). They change at a committed reload (`apply`) and when a
 * certificate file changes on disk (certificate-watcher.ts): the files are read and checked again, and a bad one is
 * logged while the served ones stay. With `http2` (the default) ALPN offers h2 before http/1.1 and the server is
 * Node's http2 one serving both; without, an https.Server serving HTTP/1.1.
 *
 * With `tls.acme`, the certificate stored in its storage directory (acme-storage.ts) is served beside the files of
 * `certificates`, read again when that directory changes (whoever renewed it: this process, a cluster's primary,
 * another gateway); a stored certificate that cannot be read keeps the one served before while that is still valid.
 * The listener then also answers TLS-ALPN-01 challenges (acme-challenges.ts).
 */
export class TlsListener {
  readonly server: https.Server | http2.Http2SecureServer;
  readonly #store: CertificateStore;
  readonly #hsts: HstsSetting;
  readonly #redirect: HttpsRedirect;
  readonly #tickets: TicketKeyRotation;
  readonly #watcher: CertificateWatcher;
  readonly #log: Logger;
  /** The served config's (a reload changes the idle timeout of HTTP/2 sessions opened after it). */
  #limits: ServerLimits;
  #config: TlsConfig;
  /** The files on disk were served since the last reload: that reload's certificates, read earlier, may be older. */
  #fromFiles = false;
  /** `tls.acme`'s storage; null without. */
  #acme: AcmeStorage | null;
  /** The ACME certificate served now; null when none is. */
  #acmeCertificate: TlsCertificate | null = null;
  readonly #challenges: AcmeChallengeFiles;

  constructor(options: TlsListenerOptions) {
    const { config, log } = options;
    this.#config = config;
    this.#log = log;
    this.#redirect = options.redirect;
    this.#hsts = { value: config.hsts };
    this.#challenges = options.acmeChallenges;
    this.#acme = this.#setAcme(config);
    this.#store = new CertificateStore(this.#withAcme(config.certificates), config.minVersion);
    this.#tickets = new TicketKeyRotation(options.ticketSecret, (keys) => this.server.setTicketKeys(keys));
    this.#limits = options.limits;
    // The HTTP/1.1 answers' class is Http1ServerResponse for an http2 server (Node 22 reads only that name for them).
    const h2 = config.http2 ? { ...http2Options(options.limits), Http2ServerResponse: hstsHttp2ResponseClass(this.#hsts), Http1ServerResponse: hstsResponseClass(this.#hsts) } : null;
    // With tls.acme at start, ALPN is chosen by a callback that can see acme-tls/1 (TLS-ALPN-01); a block added by
    // a reload answers HTTP-01 only until a restart. Without, Node chooses ALPN itself.
    const alpn = config.acme === null
      ? { SNICallback: this.#store.sniCallback, ALPNProtocols: config.http2 ? ['h2', 'http/1.1'] : ['http/1.1'] }
      : this.#alpnChallenges(config.http2);
    this.server = createEdgeServer(options.limits, options.handlers, options.onUpgrade, { http2: h2, tls: {
      ...this.#store.defaultOptions(),
      ...alpn,
      ticketKeys: this.#tickets.current(),
      // Sessions resumed by id (TLS 1.2) are tied to this name, the same in every worker of a cluster.
      sessionIdContext: 'gantry',
      // A client that connects and never finishes its handshake holds a socket: the same bound as a slow head.
      handshakeTimeout: options.limits.headersTimeoutMs,
      // HTTP/1.1 answers' class, on the http2 server too (its HTTP/1.1 side takes the same HTTP options).
      ServerResponse: hstsResponseClass(this.#hsts),
    } }) as https.Server | http2.Http2SecureServer;
    if (h2) watchSessions(this.server as http2.Http2SecureServer, () => this.#limits, log);
    this.server.on('tlsClientError', (err: NodeJS.ErrnoException, socket) => {
      log.debug({ event: 'tls-handshake-failed', err: err.code ?? err.message, peer: socket.remoteAddress }, 'TLS handshake failed');
      answerPlainHttpOnTlsPort(err, socket, options.handlers);
    });
    this.#watcher = new CertificateWatcher(() => this.#filesChanged(),
      (dir, err) => log.warn({ event: 'tls-watch-failed', dir, err: err.message }, `cannot watch ${dir} for certificate changes; trying again`));
  }

  /** Once bound: rotates ticket keys, watches the certificate files, points the plain listener's redirect here. */
  started(): void {
    this.#tickets.start();
    this.#makeAcmeDir();
    this.#watcher.watch(this.#files());
    this.#setRedirect();
  }

  /** A committed reload: its certificates (read and checked while it was prepared), limits, redirect and HSTS. */
  apply(config: TlsConfig | null, limits: ServerLimits): void {
    applyLimits(this.server, limits);
    this.#limits = limits;
    // Without `tls:` (a restart closes the listener), plain requests are no longer redirected to it.
    if (config === null) { this.#redirect.port = 0; return; }
    this.#config = config;
    this.#hsts.value = config.hsts;
    this.#setRedirect();
    this.#acme = this.#setAcme(config);
    this.#makeAcmeDir();
    this.#watcher.watch(this.#files());
    this.#serve(this.#withAcme(config.certificates), 'reload');
    if (this.#fromFiles) {
      this.#fromFiles = false;
      this.#filesChanged();
    }
  }

  address(): AddressInfo {
    return this.server.address() as AddressInfo;
  }

  /** The certificates served now. */
  certificates(): readonly TlsCertificate[] {
    return this.#store.certificates;
  }

  /** This process stored a new ACME certificate: served from the next handshake (the watcher would, a little later). */
  acmeIssued(): void {
    this.#filesChanged();
  }

  /** Stops the watcher and the key rotation (the server is closed with the plain one). */
  close(): void {
    this.#watcher.close();
    this.#tickets.stop();
  }

  #files(): string[] {
    const files = this.#config.certificates.flatMap((c) => [c.cert, c.key]);
    return this.#acme ? [...files, this.#acme.certFile, this.#acme.keyFile] : files;
  }

  /** Points the challenge lookups at `config`'s storage and returns it; null without ACME. */
  #setAcme(config: TlsConfig): AcmeStorage | null {
    const storage = config.acme ? new AcmeStorage(config.acme) : null;
    this.#challenges.http01Dir = storage?.httpChallengeDir ?? null;
    this.#challenges.alpnDir = storage?.alpnChallengeDir ?? null;
    this.#challenges.domains = new Set(config.acme?.domains ?? []);
    return storage;
  }

  /** The watcher watches the certificate's directory: there before the first certificate is. */
  #makeAcmeDir(): void {
    if (!this.#acme) return;
    try {
      mkdirSync(this.#acme.certificateDir, { recursive: true, mode: 0o700 });
    } catch (err) {
      this.#log.error({ event: 'acme-storage-failed', dir: this.#acme.certificateDir, err: (err as Error).message }, 'cannot create the ACME storage directory');
    }
  }

  /** `certificates` and the stored ACME certificate (or the one served, while still valid, when none can be read). */
  #withAcme(certificates: readonly TlsCertificate[]): readonly TlsCertificate[] {
    if (!this.#acme || !this.#config.acme) return certificates;
    const stored = readStoredCertificate(this.#acme, this.#config.acme.domains, this.#config.minVersion);
    const served = this.#acmeCertificate;
    const stillValid = served !== null && Date.parse(served.validTo) > Date.now() && served.cert === this.#acme.certFile;
    this.#acmeCertificate = stored.certificate ?? (stillValid ? served : null);
    return this.#acmeCertificate ? [...certificates, this.#acmeCertificate] : certificates;
  }

  #alpnChallenges(http2: boolean): { SNICallback: NonNullable<https.ServerOptions['SNICallback']>; ALPNCallback: NonNullable<https.ServerOptions['ALPNCallback']> } {
    const responder = new AlpnChallengeResponder(this.#challenges, http2, () => this.#config.minVersion);
    return { SNICallback: responder.sniCallback((name) => this.#store.contextFor(name)), ALPNCallback: responder.alpnCallback() };
  }

  #setRedirect(): void {
    this.#redirect.port = this.#config.redirectHttp && this.server.listening ? this.address().port : 0;
  }

  /** Serves `certificates` from the next handshake on; false when they are what is served already. */
  #serve(certificates: readonly TlsCertificate[], cause: 'reload' | 'file-change'): boolean {
    const { minVersion } = this.#config;
    if (this.#store.serves(certificates, minVersion)) return false;
    this.#store.replace(certificates, minVersion);
    // Clients without SNI get the server's own context: the first certificate, rebuilt with the session-ticket keys.
    this.server.setSecureContext(this.#store.defaultOptions());
    this.server.setTicketKeys(this.#tickets.current());
    this.#log.info({ event: 'tls-certificates-loaded', cause, certificates: summary(certificates) }, `serving ${certificates.length} TLS certificate(s) after a ${cause}`);
    return true;
  }

  /** A certificate file changed on disk: the same entries read again; a bad set leaves the served one in place. */
  #filesChanged(): void {
    const config = this.#config;
    const read = readCertificates(config.certificates, config.minVersion);
    if (read.problems.length) {
      this.#log.error({ event: 'tls-certificates-refused', problems: read.problems.map((p) => `certificates[${p.index}].${p.field}: ${p.message}`) },
        'a certificate file changed but cannot be served; the previous certificates stay');
      return;
    }
    this.#fromFiles = this.#serve(this.#withAcme(read.certificates), 'file-change') || this.#fromFiles;
  }
}
