import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Page } from 'playwright-core';
import t from 'tap';
import { ERRORS, type ErrorCode } from '../../gateway/errors.js';
import type { ScalingLoop } from '../../gateway/scaling/scaling-loop.js';
import { waitFor } from '../helpers/capture-log.js';
import { browser, watchErrors } from '../helpers/headless-chromium.js';
import { startGateway } from '../helpers/gateway-under-test.js';
import { startRecordingUpstream } from '../helpers/recording-upstream.js';

// What the dashboard draws, read back from the page (DOM and SVG), against what the gateway did.
const SCREENSHOTS = resolve('.tap', 'screenshots');
const BUCKET_MS = 5000;   // the traffic window's bucket (admin-views.ts, GatewayMetrics)

/**
 * A path's vertices ("M x,y L x,y …") mapped back to times and values through the chart's data-x / data-y, and the
 * time at the axis' end (the server's "now" of that drawing).
 */
async function drawnPoints(page: Page, chart: string, series: string): Promise<{ points: { t: number; v: number }[]; endMs: number }> {
  return page.locator(chart).evaluate((svg, name) => {
    const [x0, x1, t0, t1] = (svg.getAttribute('data-x') ?? '').split(' ').map(Number) as [number, number, number, number];
    const [y0, y1, max] = (svg.getAttribute('data-y') ?? '').split(' ').map(Number) as [number, number, number];
    const d = svg.querySelector(`path[data-series="${name}"]`)?.getAttribute('d') ?? '';
    const points = [...d.matchAll(/[ML]([\d.-]+),([\d.-]+)/g)].map((m) => ({
      t: t0 + ((Number(m[1]) - x0) / (x1 - x0)) * (t1 - t0),
      v: ((Number(m[2]) - y0) / (y1 - y0)) * max,
    }));
    return { points, endMs: t1 };
  }, series);
}

const untilBucketAfter = (ms: number) => waitFor(() => Date.now() >= (Math.floor(ms / BUCKET_MS) + 1) * BUCKET_MS + 50, 2 * BUCKET_MS, 'the next bucket', 50);

t.test('the dashboard right after load: data, latency users saw, the chart from the start, gateway errors, replicas, moves, a refused reload', async (t) => {
  const fast = await startRecordingUpstream((_req, res) => { res.writeHead(200); res.end('ok'); });
  const stuck = await startRecordingUpstream(() => { /* never answers: every try times out */ });
  t.teardown(async () => { await fast.close(); await stuck.close(); });
  const yaml = `listen: 127.0.0.1:0
admin: 127.0.0.1:0
log: { level: warn, access: false }
services:
  users:
    discovery: { type: static, endpoints: ["${fast.url}"] }
    # Reports 2 replicas under a floor of 3: the first evaluation decides 2 → 3, the next holds at 3 (not recorded).
    # The loop's own tick (60 s) does not come during the test.
    scaling: { scaler: { type: exec, scale: "true {replicas}", current: "echo 2" }, min: 3, max: 5, intervalMs: 60000 }
  steady:
    discovery: { type: static, endpoints: ["${fast.url}"] }
    # Reports 5 over a floor of 3 with no load: the scale-down stabilization holds it, a decision the loop records.
    scaling: { scaler: { type: exec, scale: "true {replicas}", current: "echo 5" }, min: 3, max: 5, intervalMs: 60000 }
  stuck:
    discovery: { type: static, endpoints: ["${stuck.url}"] }
    timeoutMs: 100
routes:
  - { name: users-api, match: { path: /users }, service: users }
  - { name: steady-api, match: { path: /steady }, service: steady }
  - { name: stuck-api, match: { path: /stuck }, service: stuck }
`;
  const gw = await startGateway(yaml);
  t.teardown(() => gw.close());
  const startedAt = Date.parse(((await (await fetch(`${gw.adminUrl}/admin/config`)).json()) as { gantry: { startedAt: string } }).gantry.startedAt);
  // The error codes of the gateway's own answers, as clients got them.
  const answered = new Map<string, number>();
  const statuses = async (path: string, n: number) => {
    const got = new Set<number>();
    for (let i = 0; i < n; i++) {
      const r = await fetch(`${gw.url}${path}`);
      const body = await r.text();
      got.add(r.status);
      if (r.status >= 400) { const code = (JSON.parse(body) as { error: string }).error; answered.set(code, (answered.get(code) ?? 0) + 1); }
    }
    return [...got].sort();
  };
  const loop = gw.gateway.scaling as ScalingLoop;

  // Steady traffic to users until the chart is read, paced (about 10 requests a second): every bucket has some, so a
  // point at 0 would be a dip the chart made, not the traffic.
  let loading = true;
  const load = (async () => {
    while (loading) {
      await (await fetch(`${gw.url}/users/steady`)).text();
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  })();
  t.teardown(async () => { loading = false; await load; });
  // A scaling evaluation in two buckets in a row, so the replicas chart has a line, not a dot.
  await loop.evaluate('users');
  await untilBucketAfter(Date.now());
  await loop.evaluate('users');
  t.same(await statuses('/nowhere', 5), [404], 'no route: the gateway answers 404 itself');
  t.ok((await statuses('/stuck', 8)).every((s) => s === 503 || s === 504), 'the stuck upstream: 504, then 503 once its breaker opens');
  await loop.evaluate('steady');   // a hold, after the move
  await gw.rewrite('routes: [oops');
  t.equal((await gw.gateway.reload()).result, 'refused');
  await untilBucketAfter(Date.now());

  const services = (await (await fetch(`${gw.adminUrl}/admin/services`)).json()) as { services: { name: string; endpoints: { ewmaMs: number }[] }[] };
  const stuckEwma = services.services.find((s) => s.name === 'stuck')!.endpoints[0]!.ewmaMs;
  t.ok(stuckEwma > 1000, `the balancer's estimate of the stuck endpoint, each timeout 5 times the last (up to 10 s): ${stuckEwma} ms, ten times what users waited`);

  const context = await browser(t);
  const page = await context.newPage();
  const errors = watchErrors(page);
  // What the page shows at the instant of its load event (injected by the browser's debugging protocol, not by the page).
  await page.addInitScript({ content: `addEventListener('load', () => { window.atLoad = {
    config: document.getElementById('config').textContent,
    rows: document.querySelectorAll('#topology .row').length,
    cards: document.querySelectorAll('#charts .card').length,
  }; });` });
  await page.goto(`${gw.adminUrl}/dashboard`, { waitUntil: 'load' });

  // 1. First paint: drawn from the state the page came with, before any poll.
  const first = (await page.evaluate('window.atLoad')) as { config: string; rows: number; cards: number };
  t.notMatch(first.config, /loading/, `the header has the config at load: ${first.config}`);
  t.equal(first.rows, 3, 'a topology row per service at load');
  t.equal(first.cards, 3, 'a chart card per service at load');
  await mkdir(SCREENSHOTS, { recursive: true });
  const shot = join(SCREENSHOTS, 'dashboard-at-load.png');
  await page.screenshot({ path: shot, fullPage: true });
  t.comment(`screenshot right after load: ${shot}`);

  // 2. Latency: what users waited (about the 100 ms deadline), not the balancer's estimate of tens of seconds.
  const stuckRow = await page.locator('.row[data-service="stuck"]').innerText();
  const seconds = [...stuckRow.matchAll(/(\d+(?:\.\d+)?) s\b/g)].map((m) => Number(m[1]));
  t.same(seconds.filter((s) => s >= 1), [], `no latency of a second or more drawn for stuck: ${JSON.stringify(stuckRow)}`);
  t.match(await page.locator('.row[data-service="stuck"] .latency').innerText(), /p50 \d+(\.\d+)? ms · p99 \d+(\.\d+)? ms/);

  // 3. The request-rate chart: from the gateway's start, complete buckets only, no dip at the end.
  const rate = '.card[data-service="users"] svg.chart[aria-label="Requests per second"]';
  const { points: drawn, endMs } = await drawnPoints(page, rate, 'requests/s');
  const complete = Math.floor(endMs / BUCKET_MS) - Math.floor(startedAt / BUCKET_MS);
  t.equal(drawn.length, complete, `one point per complete bucket since the start (${complete} in ${Math.round((endMs - startedAt) / 1000)} s): none before the start, none for the partial bucket at now`);
  // A point sits at its bucket's end; 1 s of slack for the 0.1 px the path's coordinates are rounded to.
  t.ok(drawn[0]!.t >= startedAt - 1000, `the line starts when the gateway did (${Math.round(drawn[0]!.t - startedAt)} ms after)`);
  // The bucket the gateway started in may end before the load's first request: from the next one on, all had load.
  t.ok(drawn.slice(1).every((p) => p.v > 0), `every point after the first is a bucket's rate under the steady load, the last one too (${drawn.map((p) => p.v.toFixed(1)).join(', ')}/s): no dip`);

  // 4. The gateway's own answers, by code.
  const errorRows = await page.locator('#gateway-errors tbody tr').evaluateAll((rows) => rows.map((r) => [...r.querySelectorAll('td')].map((c) => c.textContent)));
  const expected = [...answered].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  t.same(errorRows, expected.map(([code, n]) => [code, String(ERRORS[code as ErrorCode].status), String(n)]),
    `each code the clients got, counted: ${JSON.stringify(expected)}`);
  t.equal(answered.get('GW_ERR_NO_ROUTE'), 5);

  // 5. Replicas: desired equals current in the second bucket (3 and 3), and both lines are drawn, desired dashed on top.
  const replicas = await page.locator('.card[data-service="users"] svg.chart[aria-label="Replicas"] path.line').evaluateAll((paths) =>
    paths.map((p) => ({ series: p.getAttribute('data-series'), stroke: p.getAttribute('stroke'), dash: p.getAttribute('stroke-dasharray'), d: p.getAttribute('d') })));
  t.same(replicas.map((r) => r.series), ['current', 'desired'], 'both drawn, desired last (on top)');
  t.equal(replicas[0]!.d?.split('L').length, 2, 'current: a line over the two buckets');
  t.ok(replicas[1]!.dash && !replicas[0]!.dash, `desired dashed (${replicas[1]!.dash}), current solid`);
  t.not(replicas[0]!.stroke, replicas[1]!.stroke, 'in two colours');

  // 6. Scaling: the moves listed, newest first; the holds counted, not listed.
  const decisions = await page.locator('#decisions li').evaluateAll((items) => items.map((li) => li.getAttribute('data-direction')));
  t.same(decisions, ['up'], 'the move, not the newer hold');
  t.match(await page.locator('#holds').innerText(), /^1 hold not listed/);

  // 7. The refused reload: a warning in the header with the code and file:line:col, until a reload succeeds.
  const warning = page.locator('#reload-warning');
  t.ok(await warning.isVisible(), 'the warning is shown');
  const text = await warning.innerText();
  t.match(text, /GW_ERR_CONFIG_INVALID/);
  t.ok(text.includes(`${gw.file}:1:`), `with the file, line and column: ${text}`);
  await gw.rewrite(yaml);
  t.equal((await gw.gateway.reload()).result, 'unchanged', 'the file is back to the serving config');
  await warning.waitFor({ state: 'hidden', timeout: 10_000 });
  t.ok(await warning.isHidden(), 'gone on the next poll');
  t.same(errors, [], 'no console errors, page errors or failed requests');
});

t.test('requests that clients cancel do not feed the balancer\'s latency estimate', async (t) => {
  const slow = await startRecordingUpstream((_req, res) => { const timer = setTimeout(() => { res.writeHead(200); res.end('late'); }, 3000); res.on('close', () => clearTimeout(timer)); });
  t.teardown(() => slow.close());
  const gw = await startGateway(`listen: 127.0.0.1:0
admin: 127.0.0.1:0
log: { level: warn, access: false }
services:
  slow: { discovery: { type: static, endpoints: ["${slow.url}"] } }
routes:
  - { name: slow-api, match: { path: / }, service: slow }
`);
  t.teardown(() => gw.close());
  for (let i = 0; i < 5; i++) {
    const aborter = new AbortController();
    const sent = fetch(`${gw.url}/x`, { signal: aborter.signal }).catch((err: Error) => err);
    await waitFor(() => slow.requests.length === i + 1, 5000, 'the request reached the upstream');
    aborter.abort();
    t.ok((await sent) instanceof Error, 'the client gave up');
  }
  const endpoint = async () => ((await (await fetch(`${gw.adminUrl}/admin/services`)).json()) as { services: { inFlight: number; endpoints: { ewmaMs: number | null }[] }[] }).services[0]!;
  await waitFor(async () => (await endpoint()).inFlight === 0, 5000, 'the gateway let go of the cancelled tries');
  t.equal((await endpoint()).endpoints[0]!.ewmaMs, null, 'no estimate: nothing was measured, nothing penalized');
});
