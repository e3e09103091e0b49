import { NO_NOTES, type System } from './system.js';

/** Straight at the upstream: no proxy, so the most any proxy could reach in this setup. */
export const direct: System = {
  name: 'direct',
  kind: 'direct',
  summary: 'straight to the upstream (no proxy): the limit',
  pinned: true,
  unavailable: () => null,
  async start(ctx) {
    return { child: null, port: ctx.upstreamPort, setup: '`node dist/bench/upstream-server.js`', ready: async () => {}, finish: async () => NO_NOTES };
  },
};
