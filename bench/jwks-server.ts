/**
 * A JWKS server for `npm run bench:instructions -- gantry-jwt` (bench/policy-systems.ts): one RS256 key made at start,
 * served at any path; its first stdout line is `{"port":N,"token":"…"}`, a token signed once with that key (issuer
 * https://idp.bench/, audience bench, sub bench-user, valid 2 hours). Its own process: the bench's main process blocks
 * while autocannon runs, and Gantry fetches the key set during the warm-up.
 */
import http from 'node:http';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';

const { publicKey, privateKey } = await generateKeyPair('RS256');
const body = JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), kid: 'bench', alg: 'RS256', use: 'sig' }] });
const token = await new SignJWT({ sub: 'bench-user' }).setProtectedHeader({ alg: 'RS256', kid: 'bench' })
  .setIssuer('https://idp.bench/').setAudience('bench').setIssuedAt().setExpirationTime('2h').sign(privateKey);
const server = http.createServer((_req, res) => {
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
});
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ port: (server.address() as { port: number }).port, token })}\n`);
});
