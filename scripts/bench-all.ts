// `npm run bench`: the kernel tables, then the training runs, in one process so that
// flags (`--anchors`, `--links-only`, `--layers SPEC`, `--repeats N`, `--links a,b`)
// reach both. Each part reads process.argv and runs when it is loaded.

await import('./bench-kernels.js');
await import('./bench.js');
