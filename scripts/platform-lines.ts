// The esbuild half of the platform lines (scripts/build-browser.ts states them): code
// bundled for a browser may not reach a Node module, and shared/ may not import from
// outside shared/ or from shared/node/ (its Node-only corner).

import type { Plugin } from 'esbuild';
import { builtinModules } from 'node:module';
import { dirname, join, relative, resolve, sep } from 'node:path';

/** Packages that only run under Node, besides its built-in modules. */
const NODE_PACKAGES = ['ws', 'pino', 'pino-pretty', 'yargs', 'mnist', 'bufferutil'];

/**
 * An esbuild plugin that fails the build on an import of a Node module, or on an import
 * from `root`/shared/ of a file outside it, naming the importing file.
 */
export function platformLines(root: string): Plugin {
  return {
    name: 'platform-lines',
    setup(b) {
      const names = new Set([...builtinModules, ...NODE_PACKAGES]);
      const shared = join(root, 'shared') + sep;
      const sharedNode = join(root, 'shared', 'node') + sep;
      const neutral = (file: string) => file.startsWith(shared) && !file.startsWith(sharedNode);
      // shared/ leaning on Node-only code: named here, where the step out of neutral shared/ is.
      b.onResolve({ filter: /^\./ }, (args) => {
        const target = resolve(dirname(args.importer), args.path);
        if (!neutral(args.importer) || neutral(target)) return undefined;
        const [from, to] = [relative(root, args.importer), relative(root, target)];
        return { errors: [{ text: `${from} imports ${to}: shared/ imports only shared/, never shared/node/` }] };
      });
      b.onResolve({ filter: /^[^./]/ }, (args) => {
        const bare = args.path.replace(/^node:/, '');
        const pkg = bare.startsWith('@') ? bare.split('/').slice(0, 2).join('/') : bare.split('/')[0];
        if (!args.path.startsWith('node:') && !names.has(pkg)) return undefined;
        const from = relative(root, args.importer);
        return { errors: [{ text: `${from} imports the Node module "${args.path}", which no browser has` }] };
      });
    },
  };
}
