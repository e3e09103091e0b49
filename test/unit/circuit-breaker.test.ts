import { CircuitState } from 'cockatiel';
import t from 'tap';
import { EndpointHealth } from '../../gateway/resilience/endpoint-health.js';
import { failure } from '../../gateway/resilience/attempt-failure.js';
import { closedFailure, closedSuccess } from '../../gateway/resilience/circuit-breaker.js';

const BREAKER = { enabled: true, consecutiveFailures: 3, halfOpenAfterMs: 60_000, maxHalfOpenAfterMs: 60_000 };
/** Lets the breaker's execute, through which a failure is recorded, finish. */
const settled = () => new Promise((resolve) => setImmediate(resolve));

// Tries made while the circuit is closed report straight to the breaker (service-pipeline.ts), not through
// cockatiel's execute: these hold that the breaker still counts as cockatiel's own execute would.
t.test('closed-circuit tries: consecutive breaker failures open it; an answer in between resets the count', async (t) => {
  const health = new EndpointHealth();
  health.configure(BREAKER);
  for (const outcome of ['fail', 'fail', 'answer', 'fail', 'fail'] as const) {
    if (outcome === 'answer') closedSuccess(health.circuit);
    else closedFailure(health.circuit, failure('connect'));
    await settled();
  }
  t.equal(health.breaker?.state, CircuitState.Closed, 'two failures since the answer: still closed');
  closedFailure(health.circuit, failure('bad-response'));   // a malformed answer is the endpoint's failure too
  await settled();
  t.equal(health.breaker?.state, CircuitState.Open, 'the third in a row opens it');
  t.equal(health.view(Date.now()), 'open');
});

t.test('closed-circuit tries: failures that are not the endpoint\'s do not count', async (t) => {
  const health = new EndpointHealth();
  health.configure(BREAKER);
  for (let i = 0; i < 5; i++) {
    closedFailure(health.circuit, failure('cancelled'));
    closedFailure(health.circuit, failure('broken-circuit'));
  }
  await settled();
  t.equal(health.breaker?.state, CircuitState.Closed);
});

t.test('closed-circuit tries: a failure from before the circuit opened does not count against it once a probe closed it', async (t) => {
  const health = new EndpointHealth();
  health.configure({ ...BREAKER, consecutiveFailures: 1, halfOpenAfterMs: 20, maxHalfOpenAfterMs: 20 });
  const changes: unknown[] = [];
  health.onChange = (c) => changes.push(c);
  closedFailure(health.circuit, failure('timeout'));
  await settled();
  await new Promise((r) => setTimeout(r, 40));   // past halfOpenAfterMs: the next call is the probe
  let answer!: () => void;
  const probe = health.breaker!.execute(() => new Promise<void>((r) => { answer = r; }));
  t.equal(health.breaker?.state, CircuitState.HalfOpen, 'the probe is running');
  closedFailure(health.circuit, failure('timeout'));   // a try that started while the circuit was still closed
  answer();
  await probe;
  await settled();
  t.same(changes, [{ breaker: 'open' }, { breaker: 'half-open' }, { breaker: 'closed' }], 'the successful probe closed it, and it stays closed');
  t.equal(health.breaker?.state, CircuitState.Closed);
});

t.test('no breaker configured: reports are ignored', async (t) => {
  const health = new EndpointHealth();
  health.configure({ ...BREAKER, enabled: false });
  closedSuccess(health.circuit);
  closedFailure(health.circuit, failure('connect'));
  await settled();
  t.equal(health.breaker, null);
  t.equal(health.view(Date.now()), 'healthy');
});
