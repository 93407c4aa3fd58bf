// Every command of the flocktrain command line, in --help order. Each declares its flags
// beside its code (coordinator/commands/, worker/node/command.ts); adding a command is
// one entry here.

import { coordinatorCommand } from '../commands/coordinator.js';
import { evaluateCommand } from '../commands/evaluate.js';
import { predictCommand } from '../commands/predict.js';
import { relayCommand } from '../commands/relay.js';
import { trainCommand } from '../commands/train.js';
import { workerCommand } from '../../worker/node/command.js';
import type { AnyCommand } from '../../shared/node/flags.js';

export const COMMANDS: readonly AnyCommand[] = [
  trainCommand,
  coordinatorCommand,
  workerCommand,
  relayCommand,
  predictCommand,
  evaluateCommand,
];
