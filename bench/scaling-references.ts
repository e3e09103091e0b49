/**
 * The scaling-quality benchmark's references, written from the projects' documented algorithms and independent of
 * Gantry's policy code (so a change to gateway/scaling/scale-policy.ts cannot move its yardstick):
 *
 * - HPA-default: Kubernetes' HorizontalPodAutoscaler with its defaults on CPU (pkg/controller/podautoscaler in
 *   kubernetes/kubernetes: replica_calculator.go, horizontal.go). The controller syncs every 15 s
 *   (--horizontal-pod-autoscaler-sync-period), here 7 s after metrics-server's scrape, itself every 15 s
 *   (--metric-resolution in its manifests), whose CPU figure is the rate between its last two scrapes: the mean over
 *   the previous 15 s, saturating at 100 % of the request. A pod's sample counts only once the pod has been ready
 *   for a whole window (the --horizontal-pod-autoscaler-cpu-initialization-period rule, 5 min, covers every pod
 *   here); the others (starting or just ready) count at 0 % when the ratio says up, and are left out when it says
 *   down. Desired = ceil(utilization / target × pods with a sample) outside a 10 % tolerance (also on the ratio with
 *   the 0 % pods, which may not flip the direction); the highest recommendation of the last 300 s on the way down;
 *   at most +100 % or +4 pods (the larger) and −100 % per 15 s, counted from the replicas at the period's start.
 * - KPA-like: Knative's autoscaler on concurrency: every 2 s, desired = ceil(mean in flight / target) over the 60 s
 *   stable window, or over the 6 s panic window in panic mode (entered when the panic window wants 2× the ready pods,
 *   left after 60 s without; it never scales down while panicking); at most halving per tick; no scale-down delay.
 */
import type { Second } from './scaling-model.js';

export interface BenchPolicy {
  readonly name: string;
  /** Called every second with the history so far (newest last); returns the replica count to set, or null. */
  decide(t: number, history: readonly Second[], current: number, ready: number): number | null;
  /** The count was changed from `from` to `to` at `t`. */
  record(t: number, from: number, to: number): void;
}

function mean(history: readonly Second[], seconds: number, of: (s: Second) => number): number {
  const n = Math.min(seconds, history.length);
  let sum = 0;
  for (let i = history.length - n; i < history.length; i++) sum += of(history[i] as Second);
  return n > 0 ? sum / n : 0;
}

export function hpaDefault(targetUtilization: number, max: number): BenchPolicy {
  const TOLERANCE = 0.1, SCRAPE_S = 15, SYNC_S = 15, DOWN_WINDOW_S = 300, PERIOD_S = 15;
  const targetPercent = Math.round(100 * targetUtilization);
  let sample: { utilization: number; pods: number } | null = null;
  const recommendations: { t: number; n: number }[] = [];
  const events: { t: number; change: number }[] = [];
  const changed = (t: number, sign: number) => events.filter((e) => t - e.t < PERIOD_S && Math.sign(e.change) === sign).reduce((a, e) => a + Math.abs(e.change), 0);
  return {
    name: 'HPA-default',
    decide(t, history, current, ready) {
      if (t % SCRAPE_S === 0) {
        // The rate over the last window, for the pods ready through all of it (ready when the previous scrape ran).
        const window = history.slice(-(SCRAPE_S + 1));
        sample = { utilization: mean(history, SCRAPE_S, (s) => s.utilization), pods: Math.min(...window.map((s) => s.ready)) };
      }
      if (t % SYNC_S !== 7 || sample === null) return null;
      // A pod stopped since the scrape has no sample any more; the ones left are the oldest.
      const pods = Math.min(sample.pods, ready);
      if (pods === 0) return null;   // no pod with a sample: the controller reports an error and keeps the count
      // Utilization is a whole percentage (truncated), as the controller computes it from the pods' milli-CPU.
      const ratio = Math.floor(100 * sample.utilization) / targetPercent;
      let rec = current;
      if (ratio > 1 && pods < current) {
        // Up with pods that have no sample yet: they count at 0 %, which may hold the count but not turn it down.
        const all = Math.floor((100 * sample.utilization * pods) / current) / targetPercent;
        if (all > 1 + TOLERANCE) rec = Math.ceil(all * current);
      } else if (Math.abs(ratio - 1) > TOLERANCE) {
        rec = Math.ceil(ratio * pods);
      }
      recommendations.push({ t, n: rec });
      while (recommendations.length && t - (recommendations[0] as { t: number }).t >= DOWN_WINDOW_S) recommendations.shift();
      let desired = rec;
      if (rec < current) desired = Math.min(current, Math.max(...recommendations.map((r) => r.n)));
      const start = current - changed(t, 1) + changed(t, -1);
      const upLimit = Math.max(2 * start, start + 4);
      const downLimit = 0;   // −100 % per period
      return Math.min(max, Math.max(1, Math.min(desired, upLimit), downLimit));
    },
    record(t, from, to) {
      events.push({ t, change: to - from });
      while (events.length && t - (events[0] as { t: number }).t >= PERIOD_S) events.shift();
    },
  };
}

export function kpaLike(inFlightTarget: number, max: number): BenchPolicy {
  const TICK_S = 2, STABLE_S = 60, PANIC_S = 6, PANIC_THRESHOLD = 2, MAX_DOWN_RATE = 2;
  let panicSince: number | null = null;
  let panicMax = 0;
  return {
    name: 'KPA-like',
    decide(t, history, current, ready) {
      if (t % TICK_S !== 0) return null;
      const stable = Math.ceil(mean(history, STABLE_S, (s) => s.inFlight) / inFlightTarget);
      const panicWants = Math.ceil(mean(history, PANIC_S, (s) => s.inFlight) / inFlightTarget);
      const base = Math.max(1, ready);
      if (panicWants / base >= PANIC_THRESHOLD) panicSince = t;
      else if (panicSince !== null && t - panicSince >= STABLE_S) { panicSince = null; panicMax = 0; }
      let desired = stable;
      if (panicSince !== null) {
        desired = Math.max(panicWants, panicMax, current);
        panicMax = desired;
      }
      desired = Math.max(desired, Math.floor(base / MAX_DOWN_RATE));
      return Math.min(max, Math.max(1, desired));
    },
    record() {},
  };
}
