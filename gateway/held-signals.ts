const SIGNALS = ['SIGHUP', 'SIGTERM', 'SIGINT', 'SIGUSR2'] as const;

/**
 * Holds the control signals from the start of `gantry start` until the gateway has put its own handlers in place,
 * then delivers them. Without this, a SIGHUP (or a logrotate SIGUSR2) that arrives while the config loads or the
 * listeners open would end the process (their default action), and a SIGTERM would end it without a drain.
 */
export function holdSignals(): { release(): void } {
  const held = new Set<NodeJS.Signals>();
  const hold = (signal: NodeJS.Signals) => { held.add(signal); };
  for (const s of SIGNALS) process.on(s, hold);
  return {
    release() {
      for (const s of SIGNALS) process.off(s, hold);
      for (const s of held) process.emit(s, s);
    },
  };
}
