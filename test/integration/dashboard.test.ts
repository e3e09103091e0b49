import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import t, { type Test } from 'tap';
import type { ScalingLoop } from '../../gateway/scaling/scaling-loop.js';
import { startEtcd } from '../helpers/etcd.js';
import { waitFor } from '../helpers/capture-log.js';
import { browser, watchErrors } from '../helpers/headless-chromium.js';
import { startGateway, type GatewayUnderTest } from '../helpers/gateway-under-test.js';
import { runLoad } from '../helpers/load.js';
import { startRecordingUpstream, type RecordingUpstream } from '../helpers/recording-upstream.js';

const SCREENSHOTS = resolve('.tap', 'screenshots');
const TOKEN = 'dashboard-token-0123456789';

async function twoServices(t: Test, extra = '', extraRoutes = ''): Promise<{ gw: GatewayUnderTest; ups: RecordingUpstream[] }> {
  const ups = await Promise.all([0, 1, 2].map((i) => startRecordingUpstream((req, res) => {
    // Different speeds per upstream so the latency chart has something to show.
    setTimeout(() => { res.writeHead(req.url?.includes('fail') ? 503 : 200); res.end('ok'); }, i === 2 ? 15 : 2);
  })));
  const gw = await startGateway(`listen: 127.0.0.1:0
admin: 127.0.0.1:0
log: { level: warn, access: false }
${extra}services:
  users:
    discovery: { type: static, endpoints: ["${ups[0]!.url}", "${ups[1]!.url}"] }
    # Reports 2 replicas under a floor of 3; the loop's own tick (60 s) does not come during a test.
    scaling: { scaler: { type: exec, scale: "true {replicas}", current: "echo 2" }, min: 3, max: 5, intervalMs: 60000 }
  orders:
    discovery: { type: static, endpoints: ["${ups[2]!.url}"] }
    balancer: least-request
routes:
  - { name: users-api, match: { path: /users }, service: users }
  - { name: orders-api, match: { host: shop.example, path: /orders, methods: [GET, POST] }, service: orders }
${extraRoutes}`);
  t.teardown(async () => { await gw.close(); await Promise.all(ups.map((u) => u.close())); });
  return { gw, ups };
}

t.test('the dashboard shows the running config live, with no console errors; screenshot saved', async (t) => {
  const { gw, ups } = await twoServices(t);
  await runLoad({ url: `${gw.url}/users/a`, connections: 4, amount: 400 });
  for (let i = 0; i < 20; i++) await (await fetch(`${gw.url}/users/fail`)).text();
  await runLoad({ url: `${gw.url}/orders/1`, connections: 2, amount: 60, headers: { host: 'shop.example' } });
  // users' scaler reports 2 replicas under a floor of 3: one evaluation of the loop decides 2 → 3.
  await (gw.gateway.scaling as ScalingLoop).evaluate('users');
  await gw.rewrite('routes: [oops');
  await gw.gateway.reload();

  const context = await browser(t);
  const page = await context.newPage();
  const errors = watchErrors(page);
  const response = await page.goto(`${gw.adminUrl}/dashboard`);
  t.equal(response?.status(), 200);
  t.match(response?.headers()['content-security-policy'], /script-src 'self'/);
  await page.waitForSelector('.row[data-service="orders"]', { timeout: 10_000 });
  await page.waitForSelector('.card[data-service="users"] path.line', { timeout: 10_000 });

  const topology = await page.locator('#topology').innerText();
  for (const text of ['users-api', 'orders-api', 'users', 'orders', ups[0]!.url, ups[1]!.url, ups[2]!.url, 'shop.example /orders GET POST', 'least-request']) {
    t.ok(topology.includes(text), `topology shows ${text}`);
  }
  t.equal(await page.locator('.row[data-service="users"] .endpoint').count(), 2, 'two endpoints of users');
  t.equal(await page.locator('.row[data-service="users"] .badge', { hasText: 'breaker closed' }).count(), 2);
  t.equal(await page.locator('#status').textContent(), 'ready');
  t.match(await page.locator('#config').innerText(), /config v1/);
  t.equal(await page.locator('.card').count(), 2, 'a chart card per service');
  t.equal(await page.locator('.card[data-service="users"] svg.chart').count(), 3, 'rate, latency and replicas for users');
  t.match(await page.locator('.card[data-service="orders"]').innerText(), /no scaling for this service/);
  t.match(await page.locator('#reloads').innerText(), /refused/);
  const decision = gw.gateway.scaling.recentDecisions('users')[0];
  t.match(decision, { current: 2, desired: 3 });
  t.ok((await page.locator('#decisions').innerText()).includes(`users: 2 → 3 · ${decision?.reason}`), 'the loop\'s decision, with its reason');

  // Live: new traffic shows up on the next poll without a reload of the page.
  const before = await page.locator('.row[data-service="orders"] .service .meta').nth(1).innerText();
  await runLoad({ url: `${gw.url}/orders/2`, connections: 2, amount: 200, headers: { host: 'shop.example' } });
  const meta = page.locator('.row[data-service="orders"] .service .meta').nth(1);
  const until = Date.now() + 8000;
  while ((await meta.innerText()) === before && Date.now() < until) await page.waitForTimeout(200);
  t.not(await meta.innerText(), before, `the orders row updated by itself (${before} → ${await meta.innerText()})`);

  await mkdir(SCREENSHOTS, { recursive: true });
  const file = join(SCREENSHOTS, 'dashboard.png');
  await page.screenshot({ path: file, fullPage: true });
  t.comment(`dashboard screenshot: ${file}`);
  t.same(errors, [], 'no console errors, page errors or failed requests');
});

t.test('with adminAuth the page asks for the token, then shows the data', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'gantry-dash-token-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, 'token'), TOKEN, { mode: 0o600 });
  const { gw } = await twoServices(t, `adminAuth: { tokenFile: ${join(dir, 'token')} }\n`);
  const context = await browser(t);
  const page = await context.newPage();
  const errors = watchErrors(page);
  await page.goto(`${gw.adminUrl}/dashboard`);
  await page.waitForSelector('#auth:not([hidden])', { timeout: 10_000 });
  t.equal(await page.locator('.row').count(), 0, 'nothing is shown without the token');
  await page.fill('#token', TOKEN);
  await page.click('#auth button');
  await page.waitForSelector('.row[data-service="users"]', { timeout: 10_000 });
  t.ok(await page.locator('#auth').isHidden(), 'the form goes away');
  // The only errors allowed are the browser's own notes about the 401 answers before the token was given.
  t.same(errors.filter((e) => !/status of 401/.test(e)), []);

  const second = await context.newPage();
  await second.goto(`${gw.adminUrl}/dashboard#token=${TOKEN}`);
  await second.waitForSelector('.row[data-service="orders"]', { timeout: 10_000 });
  t.equal(new URL(second.url()).hash, '', 'a token passed in the fragment is removed from the address bar');
});

t.test('in a fleet the dashboard lists its gateways: leader, config version (a differing one flagged), report age, load', async (t) => {
  const etcd = await startEtcd();
  t.teardown(() => etcd.stop());
  const fleet = (instance: string) => `fleet: { name: dash, etcd: { endpoints: ["${etcd.url}"] }, instance: ${instance}, leaseTtlS: 2 }\n`;
  const { gw } = await twoServices(t, fleet('gw-a'));
  // A second gateway of the fleet: its config differs from the first one's (its own `instance:`).
  await twoServices(t, fleet('gw-b'));
  await waitFor(async () => {
    const res = await fetch(`${gw.adminUrl}/admin/fleet`);
    return ((await res.json()) as { gateways: unknown[] }).gateways.length === 2;
  }, 20_000, 'both gateways reported');

  const context = await browser(t);
  const page = await context.newPage();
  const errors = watchErrors(page);
  await page.goto(`${gw.adminUrl}/dashboard`);
  await page.waitForSelector('#fleet tr[data-instance="gw-b"]', { timeout: 10_000 });
  t.ok(await page.locator('#fleet-section').isVisible(), 'the fleet section is shown');
  t.match(await page.locator('#fleet-name').innerText(), /dash · 2 gateways/);
  const a = await page.locator('#fleet tr[data-instance="gw-a"]').innerText();
  t.match(a, /gw-a \(this gateway\)/);
  t.match(a, /v1 · [0-9a-f]{12}/, 'its config version and hash');
  t.match(a, /\d+\.\d s/, 'its report age');
  t.match(a, /users: [\d.]+ rps, \d+ in flight, \d+ waiting/, 'its load per scaled service');
  t.equal(await page.locator('#fleet .badge', { hasText: 'leader' }).count(), 1, 'one leader');
  const follower = page.locator('#fleet tr:not(:has(.badge.ok))');
  t.equal(await follower.locator('.badge', { hasText: 'differs' }).count(), 1, 'the follower, on a config other than the leader\'s, is flagged');
  t.equal(await page.locator('#fleet tr:has(.badge.ok) .badge', { hasText: 'differs' }).count(), 0, 'the leader is not');
  t.same(errors, [], 'no console errors');
});

t.test('outside a fleet the dashboard shows no fleet section', async (t) => {
  const { gw } = await twoServices(t);
  const context = await browser(t);
  const page = await context.newPage();
  await page.goto(`${gw.adminUrl}/dashboard`);
  await page.waitForSelector('.row[data-service="users"]', { timeout: 10_000 });
  t.ok(await page.locator('#fleet-section').isHidden(), 'hidden');
});

t.test('each policy with its allowed and refused counts and the refusal reasons, live', async (t) => {
  const { gw } = await twoServices(t, `policies:
  three: { rateLimit: { requests: 3, per: 1h, key: route } }
  office: { ipAllow: [10.0.0.0/8] }
  unused: { ipDeny: ["192.0.2.0/24"] }
`, `  - { name: limited, match: { path: /limited }, service: users, policies: [three] }
  - { name: office-only, match: { path: /office }, service: users, policies: [office] }
`);
  const statuses = async (path: string, n: number) => {
    const got: number[] = [];
    for (let i = 0; i < n; i++) { const r = await fetch(`${gw.url}${path}`); await r.text(); got.push(r.status); }
    return got;
  };
  t.same(await statuses('/limited', 5), [200, 200, 200, 429, 429]);
  t.same(await statuses('/office', 2), [403, 403]);

  const context = await browser(t);
  const page = await context.newPage();
  const errors = watchErrors(page);
  await page.goto(`${gw.adminUrl}/dashboard`);
  await page.waitForSelector('#policies tr[data-policy="office"]', { timeout: 10_000 });
  const cells = (policy: string) => page.locator(`#policies tr[data-policy="${policy}"] td`).allInnerTexts();
  t.same(await cells('three'), ['three', 'rateLimit', 'limited', '3', '2', 'limit 2']);
  t.same(await cells('office'), ['office', 'ipAllow', 'office-only', '0', '2', 'ip 2']);
  t.same(await cells('unused'), ['unused', 'ipDeny', 'no route', '0', '0', 'none']);

  // Live: a new refusal shows on the next poll, without a reload of the page.
  t.same(await statuses('/office', 1), [403]);
  const refused = page.locator('#policies tr[data-policy="office"] td.refused');
  await refused.filter({ hasText: /^3$/ }).waitFor({ timeout: 10_000 });
  t.equal(await refused.innerText(), '3');
  t.same(errors, [], 'no console errors, page errors or failed requests');
});
