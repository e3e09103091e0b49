/**
 * CORS as a browser sees it (docs/policies.md, "cors"): a page of a listed origin, in Debian's Chromium, fetches from
 * the gateway with a credentialed, preflighted POST and reads the answer and an exposed header; a page of another
 * origin is refused by the browser, and neither page's preflight reached the upstream.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import t from 'tap';
import { policyYaml, startPolicyGateway } from '../helpers/policy-gateway.js';
import { startRecordingUpstream } from '../helpers/recording-upstream.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** A site on its own port (its own origin) serving one empty page. */
async function site(): Promise<{ origin: string; close: () => Promise<void> }> {
  const server = http.createServer((_req, res) => { res.writeHead(200, { 'content-type': 'text/html' }); res.end('<!doctype html><title>page</title>'); });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, close: () => new Promise((r) => { server.closeAllConnections(); server.close(() => r()); }) };
}

t.test('a listed origin reads a credentialed cross-origin answer in Chromium; another origin is refused by the browser', async (t) => {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install chromium (see .ci/apt-packages)`);
  const upstream = await startRecordingUpstream((req, res) => {
    res.writeHead(200, { 'content-type': 'application/json', 'x-upstream': 'yes' });
    res.end(JSON.stringify({ method: req.method }));
  });
  t.teardown(() => upstream.close());
  const app = await site();
  const other = await site();
  t.teardown(() => Promise.all([app.close(), other.close()]));
  const policies = `  web-cors: { cors: { origins: ["${app.origin}"], methods: [GET, POST], headers: [content-type, x-client], exposeHeaders: [x-upstream], credentials: true, maxAgeS: 60 } }`;
  const g = await startPolicyGateway(policyYaml(upstream.url, policies, `  - { name: api, match: { path: /api }, service: svc, policies: [web-cors] }\n`));
  t.teardown(() => g.close());

  const profile = await mkdtemp(join(tmpdir(), 'gantry-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM, headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  t.teardown(async () => { await context.close(); await rm(profile, { recursive: true, force: true }); });
  const page = await context.newPage();
  const call = (url: string) => page.evaluate(async (u) => {
    try {
      const r = await fetch(u, { method: 'POST', credentials: 'include', headers: { 'content-type': 'application/json', 'x-client': '1' }, body: '{}' });
      return { ok: true, status: r.status, body: await r.text(), upstream: r.headers.get('x-upstream') };
    } catch (err) {
      return { ok: false, error: String(err) };
    }
  }, url);

  await page.goto(`${app.origin}/`);
  const allowed = await call(`${g.url4}/api/items`);
  t.same(allowed, { ok: true, status: 200, body: '{"method":"POST"}', upstream: 'yes' }, 'the page reads the answer and the exposed header');
  t.equal(upstream.requests.filter((r) => r.method === 'OPTIONS').length, 0, 'the preflight was answered at the edge');
  t.equal(upstream.requests.filter((r) => r.method === 'POST').length, 1);

  await page.goto(`${other.origin}/`);
  const refused = await call(`${g.url4}/api/items`);
  t.equal(refused.ok, false, 'the browser refuses the other origin');
  t.match(String(refused.error), /TypeError/);
  t.equal(upstream.requests.filter((r) => r.method === 'POST').length, 1, 'its preflight failed: the POST was never sent');
});
