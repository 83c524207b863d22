// Open-loop arrivals: the load generator's schedule, shared by the serving benchmark, the
// demo and the planner's simulator.
import { Rng } from '../data/rng.js';

/** Arrival times (ms from 0) of `n` queries of a Poisson process at `rate` per second. */
export function poissonSchedule(n: number, rate: number, seed: number): Float64Array {
  const rng = new Rng(seed);
  const t = new Float64Array(n);
  let now = 0;
  for (let i = 0; i < n; i++) {
    now += (-Math.log(1 - rng.float()) / rate) * 1000;
    t[i] = now;
  }
  return t;
}
