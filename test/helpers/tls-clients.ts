import https from 'node:https';
import tls from 'node:tls';

export interface HttpsAnswer {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: string;
  /** SHA-256 fingerprint of the certificate the server presented. */
  readonly fingerprint: string;
  readonly subjectCN: string;
  /** The TLS session was resumed (session option given and accepted). */
  readonly reused: boolean;
  /** The session to resume with next time (the last ticket the server sent). */
  readonly session: Buffer | undefined;
}

/**
 * One HTTPS request to 127.0.0.1:port on a connection of its own (a new handshake each time), trusting `ca` and
 * sending `servername` as SNI and Host.
 */
export function httpsGet(port: number, servername: string, path: string, ca: Buffer, headers: Record<string, string> = {}, session?: Buffer): Promise<HttpsAnswer> {
  return new Promise((resolve, reject) => {
    let ticket: Buffer | undefined;
    // `session` is passed on to tls.connect (https.RequestOptions does not list it).
    const options: https.RequestOptions & { session?: Buffer } = { host: '127.0.0.1', port, path, servername, ca, agent: false, session, headers: { host: servername, ...headers }, timeout: 10_000 };
    const req = https.request(options, (res) => {
      const socket = res.socket as tls.TLSSocket;
      const cert = socket.getPeerCertificate();
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({
        status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString(),
        fingerprint: cert.fingerprint256, subjectCN: String(cert.subject?.CN ?? ''),
        reused: socket.isSessionReused(), session: ticket ?? socket.getSession(),
      }));
      res.on('error', reject);
    });
    req.on('socket', (socket) => socket.on('session', (s: Buffer) => { ticket = s; }));
    req.on('timeout', () => req.destroy(new Error('no answer within 10 s')));
    req.on('error', reject);
    req.end();
  });
}

/** One TLS handshake (no request): the certificate served for `servername`, and whether a session was resumed. */
export function handshake(port: number, servername: string, ca: Buffer, session?: Buffer): Promise<{ fingerprint: string; reused: boolean; session: Buffer | undefined; protocol: string | null }> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, servername, ca, session, ALPNProtocols: ['http/1.1'] });
    let ticket: Buffer | undefined;
    // TLS 1.3 tickets arrive after the handshake: wait for one before closing.
    socket.on('session', (s: Buffer) => {
      ticket = s;
      finish();
    });
    let secured = false;
    const finish = () => {
      if (!secured || (ticket === undefined && socket.getProtocol() === 'TLSv1.3' && !socket.isSessionReused())) return;
      resolve({ fingerprint: socket.getPeerCertificate().fingerprint256, reused: socket.isSessionReused(), session: ticket ?? socket.getSession(), protocol: socket.getProtocol() });
      socket.end();
    };
    socket.once('secureConnect', () => { secured = true; finish(); });
    socket.setTimeout(10_000, () => socket.destroy(new Error('handshake not done within 10 s')));
    socket.on('error', reject);
  });
}
