/**
 * The scaling-quality benchmark's world: traffic traces and a fluid queueing model of replicas with a cold start.
 * One step is one second. Nothing here knows about policies; bench/scaling-quality.ts plugs them in.
 */

/** Mulberry32: a small seeded PRNG, so every run replays the same noise. */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface Trace {
  readonly name: string;
  readonly description: string;
  /** Arrival rate (requests per second) for each second. */
  readonly rps: readonly number[];
}

function build(name: string, description: string, seconds: number, shape: (t: number) => number, noise: number, seed: number): Trace {
  const random = seeded(seed);
  const rps: number[] = [];
  for (let t = 0; t < seconds; t++) rps.push(Math.max(0, shape(t) * (1 + noise * (2 * random() - 1))));
  return { name, description, rps };
}

/** The five traces; every second has ±10 % noise (uniform), about what Poisson arrivals give at these rates and more. */
export function traces(): Trace[] {
  const N = 0.1;
  return [
    build('step', '600 → 1800 rps at 10 min, 40 min', 2400, (t) => (t < 600 ? 600 : 1800), N, 1),
    build('ramp', '400 → 2800 rps over 30 min, then 10 min flat', 2400, (t) => (t < 1800 ? 400 + (2400 * t) / 1800 : 2800), N, 2),
    build('spike', '800 rps with a 4× spike for 2 min at 10 min, 30 min', 1800, (t) => (t >= 600 && t < 720 ? 3200 : 800), N, 3),
    build('diurnal', 'a day compressed to 2 h: 400-2400 rps sinusoid', 7200, (t) => 1400 - 1000 * Math.cos((2 * Math.PI * t) / 7200), N, 4),
    build('steady', '1200 rps, 1 h', 3600, () => 1200, N, 5),
  ];
}

export interface ModelParams {
  /** Requests per second one ready replica can serve. */
  readonly capacityRps: number;
  /** Mean latency of a request on an idle replica. */
  readonly serviceMs: number;
  /** A replica asked for becomes ready this long after. */
  readonly coldStartS: number;
  /** A second whose p95 latency is above this counts as an SLO violation. */
  readonly sloMs: number;
}

/** What the world looked like during one second. */
export interface Second {
  readonly t: number;
  readonly arrivals: number;
  /** Requests finished (served) in this second. */
  readonly completed: number;
  readonly ready: number;
  /** Replicas asked for (ready and starting): what is paid for. */
  readonly replicas: number;
  /** Share of the ready capacity in use, 0-1: what a CPU metric would show. */
  readonly utilization: number;
  /** Time a request finishing in this second waited in the backlog before being served. */
  readonly waitMs: number;
  /** Mean time in service (processor sharing: serviceMs / (1 − ρ)). */
  readonly serviceLatencyMs: number;
  readonly latencyMs: number;
  readonly p95Ms: number;
  /** Time-weighted mean of requests in flight (in service and queued): what the gateway sees. */
  readonly inFlight: number;
  /** Requests in flight at the end of the second (the gateway's gauge). */
  readonly inFlightNow: number;
}

/** ln 20: the 95th percentile of an exponential distribution is its mean × ln 20. */
const P95_FACTOR = Math.log(20);

/** The highest utilization at which a second without backlog keeps its p95 within the SLO: ln 20 × serviceMs ÷ (1 − ρ) ≤ sloMs. */
export function sloUtilization(p: Pick<ModelParams, 'serviceMs' | 'sloMs'>): number {
  return 1 - (P95_FACTOR * p.serviceMs) / p.sloMs;
}

/**
 * Replicas as a fluid queue, per second: ready capacity C = ready × capacityRps; what arrives beyond C waits in a
 * backlog B (as requests do at an instance, or held at the gateway, while replicas are cold-starting) and is served
 * first-come; time in service is processor-sharing, serviceMs / (1 − ρ) with ρ the busy share (capped at 0.95), and
 * exponentially distributed, so p95 = wait + 3.0 × mean. A scale-up starts replicas that are ready coldStartS later; a
 * scale-down removes starting replicas first, then ready ones at once.
 */
export class ReplicaModel {
  #ready: number;
  #starting: number[] = [];
  #backlog = 0;

  constructor(readonly p: ModelParams, initial: number) {
    this.#ready = initial;
  }

  get replicas(): number {
    return this.#ready + this.#starting.length;
  }

  get ready(): number {
    return this.#ready;
  }

  scaleTo(n: number, t: number): void {
    const current = this.replicas;
    for (let i = current; i < n; i++) this.#starting.push(t + this.p.coldStartS);
    for (let i = current; i > n; i--) {
      if (this.#starting.length) this.#starting.pop();
      else this.#ready--;
    }
  }

  step(t: number, arrivals: number): Second {
    while (this.#starting.length && (this.#starting[0] as number) <= t) { this.#starting.shift(); this.#ready++; }
    const capacity = this.#ready * this.p.capacityRps;
    const before = this.#backlog;
    const work = before + arrivals;
    const served = Math.min(work, capacity);
    this.#backlog = work - served;
    const utilization = capacity > 0 ? served / capacity : 1;
    const rho = Math.min(0.95, utilization);
    const serviceLatencyMs = this.p.serviceMs / (1 - rho);
    // A request served now waited behind the backlog that was there when it came: the mean of before and after.
    const waitMs = capacity > 0 ? ((before + this.#backlog) / 2 / capacity) * 1000 : 1000;
    const inService = (served * serviceLatencyMs) / 1000;
    return {
      t, arrivals, completed: served, ready: this.#ready, replicas: this.replicas, utilization, waitMs, serviceLatencyMs,
      latencyMs: waitMs + serviceLatencyMs, p95Ms: waitMs + P95_FACTOR * serviceLatencyMs,
      inFlight: inService + (before + this.#backlog) / 2, inFlightNow: inService + this.#backlog,
    };
  }
}

/** The q-quantile of the latency of requests finished over `seconds` (a mix of shifted exponentials), by bisection. */
export function latencyQuantile(seconds: readonly Second[], q: number): number | null {
  let total = 0, hi = 0;
  for (const s of seconds) { total += s.completed; hi = Math.max(hi, s.waitMs + 10 * s.serviceLatencyMs); }
  if (total === 0) return null;
  const tail = (1 - q) * total;
  let lo = 0;
  for (let i = 0; i < 30; i++) {
    const x = (lo + hi) / 2;
    let above = 0;
    for (const s of seconds) above += s.completed * (x <= s.waitMs ? 1 : Math.exp(-(x - s.waitMs) / s.serviceLatencyMs));
    if (above > tail) lo = x; else hi = x;
  }
  return (lo + hi) / 2;
}
