import type { ScalingDecisionRecord } from '../scaling/decision-history.js';
import type { PolicyState } from '../scaling/scale-policy.js';
import type { ServiceScalingStatus } from '../scaling/scaling-control.js';

/** Decisions the leader publishes per service: what a follower's /admin/scaling lists. */
export const PUBLISHED_DECISIONS = 10;

/**
 * What the fleet's leader publishes per scaled service after every evaluation (`scaling/SERVICE`): its policy history
 * (taken over by the next leader, so a new leader does not scale down at once), its status and latest decisions (shown
 * by the followers).
 */
export interface LeaderState {
  readonly leader: string;
  readonly at: number;
  readonly policy: PolicyState | null;
  readonly status: ServiceScalingStatus | null;
  readonly decisions: readonly ScalingDecisionRecord[];
}

export function decodeLeaderState(value: string): LeaderState | null {
  try {
    const s = JSON.parse(value) as Partial<LeaderState>;
    if (typeof s.leader !== 'string' || typeof s.at !== 'number' || !Array.isArray(s.decisions)) return null;
    const p = s.policy;
    if (p !== null && (typeof p !== 'object' || !Array.isArray(p?.recommendations) || !Array.isArray(p.events))) return null;
    return s as LeaderState;
  } catch {
    return null;
  }
}
