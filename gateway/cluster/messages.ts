import type { ReloadOutcome } from '../runtime/reloader.js';

/** Primary → worker. */
export type ToWorker =
  | { readonly type: 'prepare'; readonly id: number; readonly hash: string }
  | { readonly type: 'commit'; readonly id: number }
  | { readonly type: 'abort'; readonly id: number }
  | { readonly type: 'shutdown' };

/** Worker → primary. */
export type ToPrimary =
  | { readonly type: 'ready'; readonly port: number }
  | { readonly type: 'prepared'; readonly id: number; readonly result: ReloadOutcome['result']; readonly message?: string }
  | { readonly type: 'committed'; readonly id: number; readonly generation: number };
