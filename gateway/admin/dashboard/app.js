// Gantry's dashboard: polls the admin API and draws routes → services → endpoints and SVG charts. No framework, no
// build step; every value from the API goes into the page as text (textContent), never as HTML.

const POLL_MS = 2000;
const SVG = 'http://www.w3.org/2000/svg';
const TOKEN_KEY = 'gantry-admin-token';
const COLORS = { rps: '#2563eb', errors: '#dc2626', p50: '#16a34a', p90: '#d97706', p99: '#dc2626', desired: '#7c3aed', current: '#0891b2' };

// A token can arrive in the fragment (#token=…, never sent to any server) or be typed in; it stays in this tab only.
const fromHash = new URLSearchParams(location.hash.slice(1)).get('token');
if (fromHash) {
  sessionStorage.setItem(TOKEN_KEY, fromHash);
  history.replaceState(null, '', location.pathname);
}

class Unauthorized extends Error {}

async function api(path) {
  const token = sessionStorage.getItem(TOKEN_KEY);
  const res = await fetch(path, { headers: token ? { authorization: `Bearer ${token}` } : {}, cache: 'no-store' });
  if (res.status === 401) throw new Unauthorized();
  if (!res.ok && res.status !== 503) throw new Error(`${path}: HTTP ${res.status}`);
  return res.json();
}

/** el('div', { class: 'x' }, child, 'text') → an element; strings become text nodes. */
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== null) node.setAttribute(k, String(v));
  for (const c of children.flat()) if (c !== null && c !== undefined) node.append(c instanceof Node ? c : String(c));
  return node;
}

function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}

/** 0 → "0", 2.5 → "2.5", 12.34 → "12.3", 1234.5 → "1235": short, and no trailing zeros. */
function fmtNum(n) {
  if (n === null || n === undefined) return '–';
  const digits = Math.abs(n) >= 100 ? 0 : Math.abs(n) >= 10 ? 1 : 2;
  return String(Number(n.toFixed(digits)));
}

function fmtMs(ms) {
  if (ms === null || ms === undefined) return '–';
  return ms >= 1000 ? `${fmtNum(ms / 1000)} s` : `${fmtNum(ms)} ms`;
}

function fmtTime(iso) {
  return iso ? new Date(iso).toLocaleTimeString([], { hour12: false }) : '–';
}

function ago(iso) {
  if (!iso) return 'never';
  const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  return s < 60 ? `${s}s ago` : s < 3600 ? `${Math.round(s / 60)}m ago` : `${Math.round(s / 3600)}h ago`;
}

/** A round step for axis ticks: 1, 2 or 5 times a power of ten. */
function niceMax(max) {
  if (!(max > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(max));
  for (const m of [1, 2, 5, 10]) if (max <= m * p) return m * p;
  return 10 * p;
}

/**
 * A line chart. `series`: [{ name, color, dash?, values: [number|null] }], one value per point of `times` (epoch ms);
 * a null breaks the line; later series are drawn on top. The x axis spans the whole window up to `nowMs`, so charts
 * of all services line up, and a service with less history than the window starts part way across.
 */
function lineChart(title, times, series, format, windowMs, nowMs) {
  const W = 340, H = 150, L = 44, R = 8, T = 10, B = 22;
  const all = series.flatMap((s) => s.values).filter((v) => v !== null);
  const max = niceMax(Math.max(0, ...all));
  const t1 = nowMs;
  const t0 = t1 - windowMs;
  const x = (t) => L + ((t - t0) / (t1 - t0 || 1)) * (W - L - R);
  const y = (v) => T + (1 - v / max) * (H - T - B);
  // The axes' ranges, for whoever reads a drawn point back (the dashboard's test).
  const chart = svg('svg', {
    viewBox: `0 0 ${W} ${H}`, class: 'chart', role: 'img', 'aria-label': title,
    'data-x': `${L} ${W - R} ${t0} ${t1}`, 'data-y': `${H - B} ${T} ${max}`,
  });
  for (const f of [0, 0.5, 1]) {
    chart.append(svg('line', { x1: L, x2: W - R, y1: y(max * f), y2: y(max * f), class: 'grid' }));
    chart.append(svg('text', { x: L - 6, y: y(max * f) + 4, class: 'tick', 'text-anchor': 'end' }, format(max * f)));
  }
  const minutes = Math.round(windowMs / 60000);
  for (let m = minutes; m >= 0; m--) {
    const tx = x(t1 - m * 60000);
    chart.append(svg('text', { x: tx, y: H - 6, class: 'tick', 'text-anchor': m === 0 ? 'end' : 'middle' }, m === 0 ? 'now' : `-${m}m`));
  }
  for (const s of series) {
    let d = '';
    let pen = false;
    s.values.forEach((v, i) => {
      if (v === null) { pen = false; return; }
      d += `${pen ? 'L' : 'M'}${x(times[i]).toFixed(1)},${y(v).toFixed(1)}`;
      pen = true;
      // A value with no neighbour draws no line: mark it so a single bucket of data is visible (a dashed series as a
      // ring, so it does not hide another series' dot at the same value).
      if ((s.values[i - 1] ?? null) === null && (s.values[i + 1] ?? null) === null) {
        const at = { cx: x(times[i]).toFixed(1), cy: y(v).toFixed(1), 'data-series': s.name };
        chart.append(svg('circle', s.dash ? { ...at, r: 4.5, fill: 'none', stroke: s.color, 'stroke-width': 1.5 } : { ...at, r: 2.5, fill: s.color }));
      }
    });
    const style = s.dash ? { 'stroke-dasharray': s.dash } : {};
    if (d) chart.append(svg('path', { d, class: `line${s.wide ? ' wide' : ''}`, stroke: s.color, 'data-series': s.name, ...style }));
  }
  const legend = el('div', { class: 'legend' }, series.map((s) => el('span', { class: 'key' }, swatch(s.color, s.dash), s.name)));
  const empty = all.length === 0 ? el('div', { class: 'empty' }, 'no data yet') : null;
  return el('figure', { class: 'figure' }, el('figcaption', {}, title), legend, chart, empty);
}

/** A legend's sample: a filled square, or for a dashed series a dashed stroke like its line. */
function swatch(color, dash) {
  const box = svg('svg', { viewBox: '0 0 14 10', class: 'swatch', 'aria-hidden': 'true' });
  box.append(dash
    ? svg('line', { x1: 0, x2: 14, y1: 5, y2: 5, stroke: color, 'stroke-width': 2.5, 'stroke-dasharray': '4 2' })
    : svg('rect', { x: 2, width: 10, height: 10, rx: 2, fill: color }));
  return box;
}

function dot(kind) {
  return el('span', { class: `dot ${kind}`, 'aria-hidden': 'true' });
}

function badge(text, kind) {
  return el('span', { class: `badge ${kind}` }, text);
}

function matchText(m) {
  const where = m.path ?? m.exactPath ?? (m.pathRegex ? `~${m.pathRegex}` : '/');
  const hosts = m.hosts.length ? `${m.hosts.join(', ')} ` : '';
  const methods = m.methods.length ? ` ${m.methods.join(' ')}` : '';
  return `${hosts}${where}${methods}`;
}

function renderTopology(routes, services) {
  const byService = new Map(services.services.map((s) => [s.name, s]));
  const rows = [];
  for (const service of services.services) {
    const own = routes.routes.filter((r) => r.service === service.name);
    const routeCol = el('div', { class: 'col routes' }, own.length
      ? own.map((r) => el('div', { class: 'route' }, el('span', { class: 'name' }, r.name), el('code', {}, matchText(r.match))))
      : el('span', { class: 'muted' }, 'no route'));
    const d = service.discovery;
    const t = service.traffic;
    const serviceCol = el('div', { class: 'col service' },
      el('div', { class: 'title' }, dot(d.up ? 'ok' : 'bad'), el('span', { class: 'name service-name' }, service.name)),
      el('div', { class: 'meta' }, `${service.balancer} · discovery ${d.type} ${d.up ? 'up' : 'down'}`),
      el('div', { class: 'meta' }, `${fmtNum(t.rps)} req/s · ${service.inFlight} in flight`),
      // What clients waited, from the requests of the last minute; the balancer's estimate per endpoint is a cost
      // (a failure weighs 5 times the last estimate), not a latency anyone saw.
      el('div', { class: 'meta latency' }, `latency p50 ${fmtMs(t.p50Ms)} · p99 ${fmtMs(t.p99Ms)}, last minute`),
      d.lastError ? el('div', { class: 'error' }, d.lastError) : null);
    const endpointCol = el('div', { class: 'col endpoints' }, service.endpoints.length
      ? service.endpoints.map((e) => {
        const healthy = e.health === 'healthy' && !e.ejected;
        const cost = e.ewmaMs === null ? 'not measured yet' : fmtMs(e.ewmaMs);
        return el('div', { class: 'endpoint', title: `balancer's cost estimate (peak EWMA, failures count as slow): ${cost}` },
          dot(healthy ? 'ok' : 'bad'),
          el('code', { class: 'address' }, e.address),
          badge(e.ejected ? 'ejected' : e.health, healthy ? 'ok' : 'bad'),
          badge(`breaker ${e.breaker}`, e.breaker === 'closed' ? 'ok' : e.breaker === 'half-open' ? 'warn' : 'bad'),
          el('span', { class: 'meta' }, `${e.inFlight} in flight · w${e.weight}`));
      })
      : el('span', { class: 'error' }, 'no endpoints'));
    rows.push(el('div', { class: 'row', 'data-service': service.name }, routeCol, el('div', { class: 'arrow' }, '→'), serviceCol, el('div', { class: 'arrow' }, '→'), endpointCol));
  }
  const orphans = routes.routes.filter((r) => !byService.has(r.service));
  for (const r of orphans) rows.push(el('div', { class: 'row' }, el('div', { class: 'col' }, r.name), el('div', { class: 'error' }, `unknown service ${r.service}`)));
  document.getElementById('topology').replaceChildren(...rows);
}

function renderCharts(stats) {
  const windowMs = stats.windowMs;
  document.getElementById('window').textContent = `last ${Math.round(windowMs / 60000)} minutes, ${stats.bucketMs / 1000}-second buckets`;
  const cards = Object.entries(stats.services).map(([name, s]) => {
    // A point at its bucket's end; the server sends complete buckets only, from the gateway's start.
    const times = s.points.map((p) => p.t + stats.bucketMs);
    const hasReplicas = s.points.some((p) => p.desiredReplicas !== null || p.currentReplicas !== null);
    return el('article', { class: 'card', 'data-service': name },
      el('h3', {}, name, el('span', { class: 'muted' }, ` ${fmtNum(s.summary.rps)} req/s · ${s.summary.errors} errors in the last minute`)),
      el('div', { class: 'figures' },
        lineChart('Requests per second', times, [
          { name: 'requests/s', color: COLORS.rps, values: s.points.map((p) => p.rps) },
          { name: '5xx/s', color: COLORS.errors, values: s.points.map((p) => (p.requests ? (p.rps * p.errors) / p.requests : 0)) },
        ], fmtNum, windowMs, stats.now),
        lineChart('Latency', times, [
          { name: 'p50', color: COLORS.p50, values: s.points.map((p) => p.p50Ms) },
          { name: 'p90', color: COLORS.p90, values: s.points.map((p) => p.p90Ms) },
          { name: 'p99', color: COLORS.p99, values: s.points.map((p) => p.p99Ms) },
        ], fmtMs, windowMs, stats.now),
        // Desired is usually equal to current: drawn dashed on top of current's wider line, both stay visible.
        hasReplicas
          ? lineChart('Replicas', times, [
            { name: 'current', color: COLORS.current, wide: true, values: s.points.map((p) => p.currentReplicas) },
            { name: 'desired', color: COLORS.desired, dash: '5 4', values: s.points.map((p) => p.desiredReplicas) },
          ], fmtNum, windowMs, stats.now)
          : el('figure', { class: 'figure' }, el('figcaption', {}, 'Replicas'), el('div', { class: 'empty static' }, 'no scaling for this service'))));
  });
  document.getElementById('charts').replaceChildren(...cards);
}

function renderEvents(stats) {
  const reloads = stats.reloads.map((r) => el('li', { class: r.result },
    el('span', { class: 'when' }, fmtTime(r.at)),
    badge(r.result, r.result === 'refused' ? 'bad' : r.result === 'applied' ? 'ok' : 'muted'),
    el('span', {}, r.result === 'refused' ? r.message : `version ${r.generation} · ${r.hash.slice(0, 12)}`)));
  document.getElementById('reloads').replaceChildren(...(reloads.length ? reloads : [el('li', { class: 'muted' }, 'no reload since start')]));
  // Only moves are listed: the holds, most of the loop's decisions, are counted in the heading.
  const decisions = stats.scaling.map((d) => el('li', { 'data-direction': d.direction },
    el('span', { class: 'when' }, fmtTime(d.at)),
    badge(d.direction, 'warn'),
    el('span', {}, `${d.service}: ${d.current} → ${d.desired} · ${d.reason}`)));
  document.getElementById('decisions').replaceChildren(...(decisions.length ? decisions : [el('li', { class: 'muted' }, 'no scaling move yet')]));
  const holds = stats.scalingHolds;
  document.getElementById('holds').textContent = holds.count
    ? `${holds.count} hold${holds.count === 1 ? '' : 's'} not listed, the last at ${fmtTime(holds.lastAt)}`
    : '';
}

function renderGatewayErrors(stats) {
  document.getElementById('gateway-errors-window').textContent = `by error code, last ${Math.round(stats.windowMs / 60000)} minutes (docs/errors.md)`;
  const rows = stats.gatewayErrors.map((e) => el('tr', { 'data-code': e.code },
    el('td', {}, el('code', {}, e.code)),
    el('td', { class: 'num' }, String(e.status)),
    el('td', { class: `num count${e.status >= 500 ? ' bad' : ''}` }, String(e.count))));
  document.querySelector('#gateway-errors tbody').replaceChildren(...(rows.length ? rows : [el('tr', {}, el('td', { class: 'muted', colspan: 3 }, 'none'))]));
}

function renderPolicies(stats) {
  const rows = stats.policies.map((p) => {
    const reasons = Object.entries(p.reasons).sort((a, b) => b[1] - a[1]);
    return el('tr', { 'data-policy': p.name },
      el('td', { class: 'name' }, p.name),
      el('td', {}, el('code', {}, p.kind)),
      el('td', { class: 'muted' }, p.routes.length ? p.routes.join(', ') : 'no route'),
      el('td', { class: 'num allowed' }, String(p.allowed)),
      el('td', { class: `num refused${p.refused ? ' bad' : ''}` }, String(p.refused)),
      el('td', { class: 'reasons' }, reasons.length ? reasons.map(([reason, n]) => badge(`${reason} ${n}`, 'bad')) : el('span', { class: 'muted' }, 'none')));
  });
  document.querySelector('#policies tbody').replaceChildren(...(rows.length ? rows : [el('tr', {}, el('td', { class: 'muted', colspan: 6 }, 'no policy in this config'))]));
}

function renderHeader(config, ready) {
  document.getElementById('config').replaceChildren(
    el('span', {}, `config v${config.version}`),
    el('code', { title: config.hash }, config.hash.slice(0, 12)),
    el('span', { class: 'muted', title: config.file }, config.file),
    el('span', { class: 'muted' }, `loaded ${ago(config.loadedAt)}`),
    el('span', { class: 'muted' }, `gantry ${config.gantry.version}`));
  const status = document.getElementById('status');
  status.textContent = ready.status;
  status.className = `pill ${ready.status === 'ready' ? 'ok' : 'bad'}`;
  // The last reload decides: shown from a refusal until a reload applies (or finds the file unchanged) again.
  const last = config.lastReload;
  const warning = document.getElementById('reload-warning');
  warning.hidden = last?.result !== 'refused';
  if (last?.result === 'refused') {
    warning.replaceChildren(
      el('strong', {}, `reload refused at ${fmtTime(last.at)}; still serving config v${config.version}`),
      last.code ? el('code', { class: 'code' }, last.code) : null,
      el('span', { class: 'message' }, last.message ?? ''));
  }
}

function render({ config, routes, services, stats, ready }) {
  document.getElementById('auth').hidden = true;
  renderHeader(config, ready);
  renderTopology(routes, services);
  renderCharts(stats);
  renderGatewayErrors(stats);
  renderPolicies(stats);
  renderEvents(stats);
  document.getElementById('updated').textContent = `updated ${new Date().toLocaleTimeString([], { hour12: false })}, every ${POLL_MS / 1000} s`;
}

async function poll() {
  try {
    const [config, routes, services, stats, ready] = await Promise.all([
      api('/admin/config'), api('/admin/routes'), api('/admin/services'), api('/admin/stats'), api('/readyz'),
    ]);
    render({ config, routes, services, stats, ready });
  } catch (err) {
    if (err instanceof Unauthorized) {
      document.getElementById('auth').hidden = false;
      document.getElementById('auth-error').textContent = sessionStorage.getItem(TOKEN_KEY) ? 'that token was refused' : '';
    } else {
      document.getElementById('updated').textContent = `update failed: ${err.message}`;
    }
  } finally {
    setTimeout(poll, POLL_MS);
  }
}

// ---- the fleet (docs/fleet.md): shown only when this gateway has a fleet: block --------------------------------------

/** /admin/fleet, or null when this gateway is in no fleet (asked first, so no 404 lands in the console). */
async function fleetStatus() {
  const config = await api('/admin/config');
  return config.fleet ? api('/admin/fleet') : null;
}

function fleetLoad(services) {
  const names = Object.keys(services).sort();
  if (!names.length) return el('span', { class: 'muted' }, 'no scaled service');
  return el('span', {}, names.map((n) => `${n}: ${fmtNum(services[n].rps)} rps, ${services[n].inFlight} in flight, ${services[n].waiting} waiting`).join(' · '));
}

function renderFleet(fleet) {
  document.getElementById('fleet-section').hidden = fleet === null;
  if (fleet === null) return;
  document.getElementById('fleet-name').textContent = `${fleet.name} · ${fleet.gateways.length} gateway${fleet.gateways.length === 1 ? '' : 's'}`
    + (fleet.connected ? '' : ' · etcd unreachable from this gateway');
  const rows = fleet.gateways.map((g) => el('tr', { 'data-instance': g.instance, class: g.configDiffers ? 'differs' : '' },
    el('td', {}, g.instance, g.self ? el('span', { class: 'muted' }, ' (this gateway)') : ''),
    el('td', {}, g.leader ? badge('leader', 'ok') : ''),
    el('td', { title: g.config.hash }, `v${g.config.generation} · `, el('code', {}, g.config.hash.slice(0, 12)), g.configDiffers ? badge('differs', 'bad') : ''),
    el('td', {}, `${(g.reportAgeMs / 1000).toFixed(1)} s`),
    el('td', {}, fleetLoad(g.services))));
  const head = el('tr', {}, ...['gateway', 'leader', 'config', 'report age', 'load'].map((h) => el('th', {}, h)));
  document.getElementById('fleet').replaceChildren(fleet.gateways.length
    ? el('table', { class: 'fleet' }, el('thead', {}, head), el('tbody', {}, ...rows))
    : el('p', { class: 'muted' }, fleet.leader === null ? 'no gateway has reported yet' : 'no report yet'));
}

async function pollFleet() {
  try {
    renderFleet(await fleetStatus());
  } catch {
    // The main poll says what failed (a refused token, an unreachable gateway).
  } finally {
    setTimeout(pollFleet, POLL_MS);
  }
}

document.getElementById('auth').addEventListener('submit', (event) => {
  event.preventDefault();
  const input = /** @type {HTMLInputElement} */ (document.getElementById('token'));
  sessionStorage.setItem(TOKEN_KEY, input.value.trim());
  input.value = '';
});

// The first state comes with the page (without adminAuth: admin-server.ts), so it is drawn before any request;
// otherwise the first poll starts at once.
const initial = JSON.parse(document.getElementById('initial-state')?.textContent || 'null');
if (initial) {
  render(initial);
  setTimeout(poll, POLL_MS);
} else {
  poll();
}
pollFleet();
