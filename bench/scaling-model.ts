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

/** The five traces; every one has ±10 % noise per second. */
export function traces(): Trace[] {
  const N = 0.1;
  return [
    build('step', '300 → 900 rps at 10 min, 40 min', 2400, (t) => (t < 600 ? 300 : 900), N, 1),
    build('ramp', '200 → 1400 rps over 30 min, then 10 min flat', 2400, (t) => (t < 1800 ? 200 + (1200 * t) / 1800 : 1400), N, 2),
    build('spike', '400 rps with a 4× spike for 2 min at 10 min, 30 min', 1800, (t) => (t >= 600 && t < 720 ? 1600 : 400), N, 3),
    build('diurnal', 'a day compressed to 2 h: 200-1200 rps sinusoid', 7200, (t) => 700 - 500 * Math.cos((2 * Math.PI * t) / 7200), N, 4),
    build('steady', '600 rps, 1 h', 3600, () => 600, N, 5),
  ];
}

export interface ModelParams {
  /** Requests per second one ready replica can serve. */
  readonly capacityRps: number;
  /** Latency of a request on an idle replica. */
  readonly serviceMs: number;
  /** A replica asked for becomes ready this long after. */
  readonly coldStartS: number;
  /** A second whose latency is above this counts as an SLO violation. */
  readonly sloMs: number;
}

/** What the world looked like during one second. */
export interface Second {
  readonly t: number;
  readonly arrivals: number;
  readonly ready: number;
  /** Replicas asked for (ready and starting): what is paid for. */
  readonly replicas: number;
  /** Share of the ready capacity in use, 0-1: what a CPU metric would show. */
  readonly utilization: number;
  readonly latencyMs: number;
  /** Requests in flight (Little: arrivals × latency, queueing included): what the gateway sees. */
  readonly inFlight: number;
}

/**
 * Replicas as a fluid queue: ready capacity C = ready × capacityRps; a backlog B carries over when arrivals exceed
 * it; latency = service time inflated by utilization (processor sharing, serviceMs / (1 − ρ), ρ capped at 0.95) plus
 * the backlog's wait (B / C). A scale-up starts replicas that are ready coldStartS later; a scale-down removes ready
 * replicas at once (starting ones first).
 */
export class ReplicaModel {
  #ready: number;
  #starting: { readyAt: number }[] = [];
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
    if (n > current) for (let i = current; i < n; i++) this.#starting.push({ readyAt: t + this.p.coldStartS });
    for (let i = current; i > n; i--) {
      if (this.#starting.length) this.#starting.pop();
      else this.#ready--;
    }
  }

  step(t: number, arrivals: number): Second {
    const started = this.#starting.filter((s) => s.readyAt <= t).length;
    this.#starting = this.#starting.filter((s) => s.readyAt > t);
    this.#ready += started;
    const capacity = this.#ready * this.p.capacityRps;
    const work = this.#backlog + arrivals;
    const served = Math.min(work, capacity);
    this.#backlog = work - served;
    const utilization = capacity > 0 ? Math.min(1, served / capacity) : 1;
    const rho = capacity > 0 ? Math.min(0.95, arrivals / capacity) : 0.95;
    const latencyMs = capacity > 0 ? this.p.serviceMs / (1 - rho) + (this.#backlog / capacity) * 1000 : 30_000;
    return {
      t, arrivals, ready: this.#ready, replicas: this.replicas, utilization, latencyMs,
      inFlight: (arrivals * latencyMs) / 1000,
    };
  }
}
