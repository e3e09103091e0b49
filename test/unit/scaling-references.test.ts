import t from 'tap';
import { ReplicaModel, sloUtilization, type Second } from '../../bench/scaling-model.js';
import { hpaDefault } from '../../bench/scaling-references.js';

/** A second of the model with only what HPA-default reads: the ready pods and their CPU utilization. */
function second(t: number, ready: number, utilization: number): Second {
  return {
    t, arrivals: 0, completed: 0, ready, replicas: ready, utilization, waitMs: 0, serviceLatencyMs: 0, latencyMs: 0, p95Ms: 0,
    inFlight: 0, inFlightNow: 0,
  };
}

/** Replays seconds 0…until through HPA-default (70 % CPU) and returns what it asks for at `until`. */
function hpaAt(until: number, world: (t: number) => { ready: number; current: number; utilization: number }): number | null {
  const hpa = hpaDefault(0.7, 100);
  const history: Second[] = [];
  let last: number | null = null;
  for (let t = 0; t <= until; t++) {
    const w = world(t);
    history.push(second(t, w.ready, w.utilization));
    last = hpa.decide(t, history, w.current, w.ready);
  }
  return last;
}

t.test('HPA-default reads the CPU rate over the 15 s between two metrics-server scrapes', async (t) => {
  // 10 pods at 70 %, then at 98 % for the 15 s before the scrape at 600: the controller's sync at 607 sees 98 %.
  const desired = hpaAt(607, (s) => ({ ready: 10, current: 10, utilization: s > 585 ? 0.98 : 0.7 }));
  t.equal(desired, 14, '98 % ÷ 70 % × 10 pods (a 30 s mean says 84 %, 12-13)');
});

t.test('HPA-default counts a pod ready for less than one metric window at 0 % on the way up', async (t) => {
  // 12 pods asked for at 580, 2 of them ready at 595: at the scrape at 600 only the 10 older ones have a sample.
  const desired = hpaAt(607, (s) => ({ ready: s >= 595 ? 12 : 10, current: s >= 580 ? 12 : 10, utilization: s > 585 ? 0.98 : 0.7 }));
  t.equal(desired, 14, '10 pods at 98 % and 2 at 0 % are 81 % over 12: ceil(81 ÷ 70 × 12) (all 12 counted at 98 %: 17)');
});

t.test('HPA-default leaves out pods without a sample on the way down and keeps the highest of the last 300 s', async (t) => {
  // 12 pods, 2 just ready; 10 at 35 %: ceil(35 ÷ 70 × 10) = 5, held at 12 by the 300 s stabilization window…
  const world = (s: number) => ({ ready: s >= 595 ? 12 : 10, current: 12, utilization: s > 585 ? 0.35 : 0.7 });
  t.equal(hpaAt(607, world), 12);
  // …whose recommendations at 70 % (within tolerance: the current count) leave it by 892; from then on all say 6.
  t.equal(hpaAt(907, world), 6, 'after 300 s of 35 % on 12 pods: ceil(35 ÷ 70 × 12)');
});

t.test('the SLO oracle\'s utilization is the highest whose p95 stays within the SLO in the model', async (t) => {
  const p = { capacityRps: 200, serviceMs: 15, sloMs: 250, coldStartS: 10 };
  const rho = sloUtilization(p);
  t.ok(Math.abs(rho - 0.8203) < 0.0001, `ρ = ${rho}`);
  const at = (rps: number) => new ReplicaModel(p, 1).step(0, rps).p95Ms;
  t.ok(at(Math.floor(200 * rho)) <= 250, 'just below: within');
  t.ok(at(Math.ceil(200 * rho)) > 250, 'just above: over');
});
