import type { Worker } from 'node:cluster';
import type { ToPrimary, ToWorker } from './messages.js';

/**
 * Sends `message` to a worker and waits for its answer of type `expect` carrying `id`: the answer; null if none came
 * within `timeoutMs`; 'gone' if the worker exited (or was already gone).
 */
export function askWorker(worker: Worker, message: ToWorker, expect: ToPrimary['type'], id: number, timeoutMs: number): Promise<ToPrimary | null | 'gone'> {
  return new Promise((resolve) => {
    const done = (answer: ToPrimary | null | 'gone') => {
      clearTimeout(timer);
      worker.off('message', onMessage);
      worker.off('exit', onExit);
      resolve(answer);
    };
    const timer = setTimeout(() => done(null), timeoutMs);
    function onMessage(m: ToPrimary) {
      if (m.type === expect && 'id' in m && m.id === id) done(m);
    }
    const onExit = () => done('gone');
    worker.on('message', onMessage);
    worker.once('exit', onExit);
    if (worker.isConnected()) worker.send(message);
    else done('gone');
  });
}
