// The optimizer a run asks for, by name: `sgd` (sgd.ts), `adam` or `adamw` (adam.ts),
// each as its WebAssembly twin where this engine has WebAssembly SIMD and the model
// fits the twin's memory, else as the JS reference. Twins give the same bits, so the
// choice of twin is not part of the run's configuration; the optimizer's name is.
//
// The options are named as the run configuration names them, so a config object can be
// passed as it is: each optimizer takes the fields it knows and ignores the others.

import { ConfigError } from '../errors.js';
import { Adam, ADAM_DEFAULTS, type AdamOptions } from './adam.js';
import type { Optimizer } from './optimizer.js';
import { SGD_DEFAULTS, type SgdOptions } from './sgd.js';
import { WASM_ADAM_MAX_PARAMS, WasmAdam, wasmAdamAvailable } from './wasm-adam.js';
import { createSgd } from './wasm-sgd.js';

export const OPTIMIZER_NAMES = ['sgd', 'adam', 'adamw'] as const;
export type OptimizerName = (typeof OPTIMIZER_NAMES)[number];

export interface OptimizerOptions extends SgdOptions, Omit<AdamOptions, 'decoupled'> {
  /** sgd, adam (L2 weight decay) or adamw (decoupled weight decay). */
  readonly optimizer: OptimizerName;
}

/**
 * A new optimizer for `size` parameters. Unset fields take the chosen optimizer's
 * defaults (lr 0.1 for SGD, 0.001 for Adam); momentum and nesterov are SGD's, beta1,
 * beta2 and eps Adam's. A ConfigError names any value out of range.
 */
export function createOptimizer(size: number, options: Partial<OptimizerOptions>): Optimizer {
  const name = options.optimizer ?? 'sgd';
  switch (name) {
    case 'sgd': {
      const { lr, momentum, nesterov, weightDecay } = { ...SGD_DEFAULTS, ...defined(options) };
      return createSgd(size, { lr, momentum, nesterov, weightDecay });
    }
    case 'adam':
    case 'adamw': {
      if (options.nesterov) throw new ConfigError(`nesterov momentum is SGD's; ${name} has beta1 instead`);
      const { lr, beta1, beta2, eps, weightDecay } = { ...ADAM_DEFAULTS, ...defined(options) };
      const o: AdamOptions = { lr, beta1, beta2, eps, weightDecay, decoupled: name === 'adamw' };
      return size <= WASM_ADAM_MAX_PARAMS && wasmAdamAvailable() ? new WasmAdam(size, o) : new Adam(size, o);
    }
    default:
      throw new ConfigError(`optimizer must be one of ${OPTIMIZER_NAMES.join(', ')}, got ${String(name)}`);
  }
}

/** The fields that are not undefined (so that an unset field keeps its default when spread). */
function defined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
