#!/usr/bin/env node
// The `flocktrain` executable (package.json "bin"): the one module that does something
// when loaded. Everything else is in main.ts.

import { main } from './main.js';

process.exitCode = await main(process.argv.slice(2));
