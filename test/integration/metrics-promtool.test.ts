import { spawn } from 'node:child_process';
import t from 'tap';
import { spawnGateway, workersReady } from '../helpers/gateway-process.js';
import { startRecordingUpstream } from '../helpers/recording-upstream.js';

// Debian's promtool (package prometheus, .ci/apt-packages) reads a live /metrics as Prometheus' scraper would:
// exit 1 is a text-format error, exit 3 a lint problem. prom-client's default process metrics carry three lint
// problems of their own (gauges named nodejs_active_*_total); Gantry's own metrics must have none.
function promtool(text: string): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('promtool', ['check', 'metrics'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (c: Buffer) => { output += c.toString(); });
    child.stderr.on('data', (c: Buffer) => { output += c.toString(); });
    child.once('error', reject);
    child.once('exit', (code) => resolve({ code, output }));
    child.stdin.end(text);
  });
}

for (const workers of [[], ['--workers', '2']]) {
  t.test(`promtool check metrics accepts a live /metrics ${workers.length ? 'of a --workers gateway' : 'of one process'}`, async (t) => {
    const upstream = await startRecordingUpstream();
    t.teardown(() => upstream.close());
    const gw = await spawnGateway(`listen: 127.0.0.1:0
admin: 127.0.0.1:0
services:
  a: { discovery: { type: static, endpoints: ["${upstream.url}"] } }
routes:
  - { name: a, match: { path: /a }, service: a }
`, workers);
    t.teardown(() => gw.kill());
    if (workers.length) await workersReady(gw, 2);
    // Samples in every family a request touches: a routed 200, and a 404 from no route.
    for (const path of ['/a/x', '/a/y', '/none']) await (await fetch(`http://127.0.0.1:${gw.port}${path}`)).arrayBuffer();
    const metrics = await (await fetch(`http://127.0.0.1:${gw.adminPort}/metrics`)).text();
    t.match(metrics, /^gantry_requests_total\{/m, 'the scrape has the request counter');
    const checked = await promtool(metrics);
    t.not(checked.code, 1, 'no text-format error', { output: checked.output });
    const problems = checked.output.split('\n').filter((l) => l.trim() !== '');
    t.same(problems.filter((l) => !/^nodejs_active_(handles|requests|resources)_total /.test(l)), [], 'no lint problem in Gantry\'s own metrics');
  });
}
