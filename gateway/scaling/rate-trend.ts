/**
 * The trend of a service's request rate, for the scale policy to meet a rise that is under way before it arrives:
 * a least-squares line through the rate seen at each evaluation, older points weighted down by e^(−age / DECAY_MS),
 * kept as running sums so the policy's state stays a few numbers (and survives JSON, for a fleet's next leader).
 * Times are seconds relative to the newest point and shifted on each add: sums of epoch-sized times squared would
 * lose the slope to rounding.
 */
export interface RateTrend {
  /** Epoch ms of the newest point: time 0 of the sums. */
  readonly at: number;
  readonly w: number;
  readonly x: number;
  readonly y: number;
  readonly xx: number;
  readonly xy: number;
  readonly yy: number;
}

/**
 * "The last minutes": weights halve every ~40 s, so a ramp is believed within a minute or two and a step is no
 * longer read as a slope a few minutes after it. On steady noisy traffic (1200 rps ± 10 % per second) the slope's
 * own noise projects at most ~5 rps over 60 s (test/unit/scale-policy-trend.test.ts), nothing against a replica.
 */
const DECAY_MS = 60_000;
/** The slope says nothing before this much weight (about this many evaluations). */
const MIN_WEIGHT = 30;

/** The trend with one more point: `rps` measured at `now` (epoch ms). */
export function addRate(trend: RateTrend | null, now: number, rps: number): RateTrend {
  if (trend === null || now < trend.at) return { at: now, w: 1, x: 0, y: rps, xx: 0, xy: 0, yy: rps * rps };
  const dt = (now - trend.at) / 1000;
  const k = Math.exp(-(now - trend.at) / DECAY_MS);
  // Every older point moves dt seconds into the past: x → x − dt in each sum, then all decay by k.
  return {
    at: now,
    w: k * trend.w + 1,
    x: k * (trend.x - dt * trend.w),
    y: k * trend.y + rps,
    xx: k * (trend.xx - 2 * dt * trend.x + dt * dt * trend.w),
    xy: k * (trend.xy - dt * trend.y),
    yy: k * trend.yy + rps * rps,
  };
}

/**
 * How much the rate will have risen `horizonS` seconds after the newest point, as the line says, damped by how well
 * a line fits (R²: 1 on a clean ramp, near 0 on steady noise, in between on a step); 0 when the rate is falling.
 */
export function projectedRise(trend: RateTrend | null, horizonS: number): number {
  if (trend === null || trend.w < MIN_WEIGHT || !(horizonS > 0)) return 0;
  const mx = trend.x / trend.w, my = trend.y / trend.w;
  const vx = trend.xx / trend.w - mx * mx, vy = trend.yy / trend.w - my * my, cxy = trend.xy / trend.w - mx * my;
  if (!(vx > 0) || !(vy > 0) || !(cxy > 0)) return 0;
  const slope = cxy / vx;
  const fit = Math.min(1, (cxy * cxy) / (vx * vy));
  return slope * horizonS * fit;
}

/**
 * The rate's noise around its line: the residuals' standard deviation (requests per second) and the share of the
 * variance the line explains (R²: near 0 on steady noise, near 1 on a clean ramp). Null until the trend has enough
 * points.
 */
export function rateNoise(trend: RateTrend | null): { readonly sd: number; readonly explained: number } | null {
  if (trend === null || trend.w < MIN_WEIGHT) return null;
  const mx = trend.x / trend.w, my = trend.y / trend.w;
  const vx = trend.xx / trend.w - mx * mx, vy = trend.yy / trend.w - my * my, cxy = trend.xy / trend.w - mx * my;
  if (!(vy > 0)) return { sd: 0, explained: 0 };
  const explained = vx > 0 ? Math.min(1, (cxy * cxy) / (vx * vy)) : 0;
  return { sd: Math.sqrt(vy * (1 - explained)), explained };
}
