// How much of their time a run's workers spend computing, measured over windows of
// steps: the compute ms their results report against the wall time of the steps they
// took part in (from one step's dispatch to the next's, so the wire, the coordinator's
// reduce and optimizer and any wait for a slower peer all count as not computing).
// A run whose workers compute less than half the time is communication-bound: adding
// workers cannot make it faster, and a larger batch or a model with more compute per
// weight would.

/** What one window of steps measured. */
export interface UtilizationReport {
  readonly steps: number;
  /** Mean ms from one step's dispatch to the next's. */
  readonly stepMs: number;
  /** Mean ms a worker that took part in a step spent computing in it. */
  readonly computeMsPerWorker: number;
  /** computeMsPerWorker / stepMs: 1 when the workers never wait. */
  readonly computeShare: number;
}

export interface UtilizationOptions {
  /** Steps measured per window. */
  readonly windowSteps: number;
  /** Steps left out at the start (joining, warm-up, first compilation). */
  readonly skipSteps: number;
}

export const UTILIZATION_DEFAULTS: UtilizationOptions = { windowSteps: 50, skipSteps: 10 };

export class Utilization {
  readonly #options: UtilizationOptions;
  #seen = 0;
  #steps = 0;
  #periodMs = 0;
  /** Σ over steps of period × workers that computed in it: the worker time available. */
  #workerMs = 0;
  /** Σ over steps of the workers that computed in it. */
  #workerSteps = 0;
  #computeMs = 0;

  constructor(options: UtilizationOptions = UTILIZATION_DEFAULTS) {
    if (!(Number.isInteger(options.windowSteps) && options.windowSteps >= 1))
      throw new RangeError(`windowSteps must be an integer ≥ 1, got ${options.windowSteps}`);
    this.#options = options;
  }

  /**
   * One finished step: `periodMs` from its dispatch to the next step's, `computeMs` the
   * sum its accepted results report, `workers` how many workers computed in it. Returns
   * the window's report when this step closes one, else null.
   */
  add(periodMs: number, computeMs: number, workers: number): UtilizationReport | null {
    if (this.#seen++ < this.#options.skipSteps || workers === 0) return null;
    this.#steps++;
    this.#periodMs += periodMs;
    this.#workerMs += periodMs * workers;
    this.#workerSteps += workers;
    this.#computeMs += computeMs;
    if (this.#steps < this.#options.windowSteps) return null;
    const report: UtilizationReport = {
      steps: this.#steps,
      stepMs: this.#periodMs / this.#steps,
      computeMsPerWorker: this.#computeMs / this.#workerSteps,
      computeShare: this.#workerMs > 0 ? this.#computeMs / this.#workerMs : 0,
    };
    this.#steps = 0;
    this.#periodMs = 0;
    this.#workerMs = 0;
    this.#workerSteps = 0;
    this.#computeMs = 0;
    return report;
  }
}
