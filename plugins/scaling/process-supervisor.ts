import type { Logger } from 'pino';
import { backoffStepMs, type Backoff, type DiscoveryUpdate, type Endpoint, type ResourceUsage } from '../../gateway/plugin-api/index.js';
import { ProcessInstance, type InstanceSpec } from './process-instance.js';
import { sampleProcess } from './process-usage.js';

/** Every live supervisor, so one exit handler (not one per supervisor) can SIGKILL what is left. */
const live = new Set<ProcessSupervisor>();
let exitHandler: (() => void) | undefined;

export interface SupervisorOptions extends InstanceSpec {
  readonly stopGraceMs: number;
  readonly restartBackoff: Backoff;
  /** An instance up this long resets the restart backoff. */
  readonly stableAfterMs: number;
}

/**
 * Runs N instances of one command for one service: starts missing ones, health-gates them, restarts crashed ones
 * with exponential backoff, stops extra ones gracefully (not-yet-ready ones first, then the newest), and streams
 * the ready instances' addresses as discovery updates. `target` is what the scaling loop asked for.
 */
export class ProcessSupervisor {
  target = 0;
  readonly #instances = new Set<ProcessInstance>();
  readonly #stopping = new Set<Promise<void>>();
  readonly #watchers = new Set<() => void>();
  #failures = 0;
  #nextStartAt = 0;
  #restartTimer: NodeJS.Timeout | undefined;
  #closed = false;
  readonly #cpu = new Map<number, { cpuSeconds: number; at: number }>();
  constructor(private readonly o: SupervisorOptions, private readonly log: Logger) {
    // The gateway exiting (normally or on an uncaught error) must not leave orphans behind.
    live.add(this);
    if (!exitHandler) {
      exitHandler = () => { for (const s of live) s.killAll(); };
      process.once('exit', exitHandler);
    }
  }

  /** No grace: the gateway process is exiting. */
  killAll(): void {
    for (const i of this.#instances) i.kill();
  }

  /** Instances not being stopped: starting or ready. */
  get active(): ProcessInstance[] {
    return [...this.#instances].filter((i) => i.state === 'starting' || i.state === 'ready');
  }

  ready(): Endpoint[] {
    return [...this.#instances].filter((i) => i.state === 'ready').map((i) => ({ address: i.address, weight: 1, metadata: { instance: String(i.id) } }));
  }

  /** No instance is still starting: the endpoint list means something. */
  settled(): boolean {
    return !this.active.some((i) => i.state === 'starting');
  }

  scale(desired: number): void {
    if (this.#closed) throw new Error('the process scaler is closed');
    this.target = desired;
    this.#reconcile();
  }

  #notify(): void {
    for (const w of this.#watchers) w();
  }

  #reconcile(): void {
    if (this.#closed) return;
    const active = this.active;
    if (active.length > this.target) {
      // Not-yet-ready ones first (they serve nothing), then the newest (the oldest have warm caches).
      const victims = active.sort((a, b) => (a.state === b.state ? b.startedAt - a.startedAt || b.id - a.id : a.state === 'starting' ? -1 : 1))
        .slice(0, active.length - this.target);
      for (const v of victims) this.#stop(v);
      return;
    }
    const missing = this.target - active.length;
    if (missing <= 0) return;
    const wait = this.#nextStartAt - Date.now();
    if (wait > 0) {
      if (!this.#restartTimer) this.#restartTimer = setTimeout(() => { this.#restartTimer = undefined; this.#reconcile(); }, wait);
      return;
    }
    for (let k = 0; k < missing; k++) this.#launch();
  }

  #launch(): void {
    const instance = new ProcessInstance(this.o, this.log, Date.now());
    this.#instances.add(instance);
    void instance.start().then((ok) => {
      if (ok) {
        this.log.info({ event: 'instance-ready', instance: instance.id, port: instance.port, pid: instance.pid, startMs: instance.readyAt - instance.startedAt }, `instance ${instance.id} ready on ${instance.address}`);
      }
      this.#notify();
    });
    void instance.exited.then((how) => {
      this.#instances.delete(instance);
      this.#cpu.delete(instance.id);
      const wanted = instance.state === 'exited' && !this.#closed && !this.#stopRequested.has(instance);
      this.#stopRequested.delete(instance);
      if (wanted) {
        const upMs = instance.readyAt ? Date.now() - instance.readyAt : 0;
        if (upMs >= this.o.stableAfterMs) this.#failures = 0;
        this.#failures++;
        const delayMs = backoffStepMs(this.#failures, this.o.restartBackoff);
        this.#nextStartAt = Date.now() + delayMs;
        this.log.warn({ event: 'instance-crashed', instance: instance.id, code: how.code, signal: how.signal, err: how.error, restartInMs: delayMs, failures: this.#failures },
          `instance ${instance.id} exited unexpectedly (${how.error ?? how.signal ?? `code ${how.code}`}); restarting in ${delayMs} ms`);
      }
      this.#notify();
      this.#reconcile();
    });
    this.#notify();
  }

  readonly #stopRequested = new Set<ProcessInstance>();

  #stop(instance: ProcessInstance): void {
    this.#stopRequested.add(instance);
    // Out of the endpoint list first (the pool stops picking it), then SIGTERM: in-flight requests finish.
    const stopping = instance.stop(this.o.stopGraceMs);
    this.#notify();
    this.log.info({ event: 'instance-stopping', instance: instance.id, port: instance.port }, `stopping instance ${instance.id}`);
    this.#stopping.add(stopping);
    void stopping.then(() => this.#stopping.delete(stopping));
  }

  /** Discovery updates: a `reset` with the ready instances once nothing is starting, then one per change. */
  async *watch(signal: AbortSignal): AsyncIterable<DiscoveryUpdate> {
    let wake: (() => void) | null = null;
    let dirty = true;
    const listener = () => { dirty = true; wake?.(); };
    const onAbort = () => wake?.();
    this.#watchers.add(listener);
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      // The first update waits until the instances asked for have started (or failed), so a warming config sees them.
      while (!signal.aborted && !this.settled()) await new Promise<void>((r) => { wake = r; });
      let last: string | null = null;
      while (!signal.aborted) {
        if (dirty) {
          dirty = false;
          const endpoints = this.ready();
          const key = endpoints.map((e) => e.address).join(',');
          if (key !== last) {
            last = key;
            yield { kind: 'reset', endpoints };
            continue;
          }
        }
        await new Promise<void>((r) => { wake = r; });
      }
    } finally {
      this.#watchers.delete(listener);
      signal.removeEventListener('abort', onAbort);
    }
  }

  /** Mean CPU (cores, since the previous sample) and resident memory of the ready instances. */
  async resources(): Promise<ResourceUsage | null> {
    const ready = [...this.#instances].filter((i) => i.state === 'ready' && i.pid !== undefined);
    if (ready.length === 0) return null;
    const samples = await Promise.all(ready.map(async (i) => ({ i, s: await sampleProcess(i.pid as number) })));
    const now = Date.now();
    let cpuSum = 0, cpuCount = 0, memSum = 0, memCount = 0;
    for (const { i, s } of samples) {
      if (s === null) continue;
      memSum += s.rssBytes;
      memCount++;
      const prev = this.#cpu.get(i.id);
      this.#cpu.set(i.id, { cpuSeconds: s.cpuSeconds, at: now });
      if (prev && now > prev.at) {
        cpuSum += (s.cpuSeconds - prev.cpuSeconds) / ((now - prev.at) / 1000);
        cpuCount++;
      }
    }
    if (memCount === 0) return null;
    return { instances: ready.length, cpuCoresMean: cpuCount ? cpuSum / cpuCount : null, memoryBytesMean: memSum / memCount };
  }

  /** Stops every instance gracefully (in parallel) and waits for them. */
  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#restartTimer);
    this.target = 0;
    const all = [...this.#instances];
    for (const i of all) {
      this.#stopRequested.add(i);
      this.log.info({ event: 'instance-stopping', instance: i.id, port: i.port }, `stopping instance ${i.id} (scaler closing)`);
    }
    await Promise.all([...all.map((i) => i.stop(this.o.stopGraceMs)), ...this.#stopping]);
    this.#notify();
    live.delete(this);
  }
}
