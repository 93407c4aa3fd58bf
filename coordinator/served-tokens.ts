// The tokens a coordinator's server takes besides its main one: the named tokens of
// --tokens FILE, kept in step with the file while it serves (token-file.ts), and the
// dashboard's read-only --dashboard-token. `flocktrain coordinator` and `flocktrain
// relay` serve through the same assembly and take these flags alike, so both set
// them up here.

import type { Logger } from 'pino';
import type { CoordinatorSetup, RunningCoordinator } from './assembly.js';
import { readTokenFile, watchTokenFile } from './token-file.js';

export interface TokenFlags {
  /** A file of named tokens besides the main one; null: none. */
  readonly tokensFile: string | null;
  /** null: a random read-only dashboard token, printed at startup. */
  readonly dashboardToken: string | null;
}

export class ServedTokens {
  readonly #flags: TokenFlags;
  /** The file's tokens as last read; null without a file. */
  #named: ReadonlyMap<string, string> | null;

  /** Reads the file now, so a bad one is one line (a ConfigError) before anything listens. */
  constructor(flags: TokenFlags) {
    this.#flags = flags;
    this.#named = flags.tokensFile === null ? null : readTokenFile(flags.tokensFile);
  }

  /** startCoordinator's token fields: the named tokens as last read, and the dashboard's. */
  get setup(): Pick<CoordinatorSetup, 'namedTokens' | 'dashboardToken'> {
    const { dashboardToken } = this.#flags;
    return {
      ...(this.#named === null ? {} : { namedTokens: this.#named }),
      ...(dashboardToken === null ? {} : { dashboardToken }),
    };
  }

  /**
   * Rereads the file on SIGHUP and when it changes, giving its tokens to whatever
   * `serving` returns then (a relay serves none between runs, and another one per run;
   * a later setup has them too). A token gone from the file disconnects its workers.
   * Returns what stops following; without a file there is nothing to follow.
   */
  follow(serving: () => RunningCoordinator | null, log: Logger): () => void {
    if (this.#flags.tokensFile === null) return () => {};
    return watchTokenFile(
      this.#flags.tokensFile,
      (named) => {
        this.#named = named;
        const server = serving();
        return server === null ? [] : this.catchUp(server);
      },
      log,
    );
  }

  /**
   * Gives `server` the named tokens as last read; returns the names it revoked. For a
   * server set up while the file was being reread (a relay's, as a run starts).
   */
  catchUp(server: RunningCoordinator): string[] {
    return this.#named === null ? [] : server.replaceTokens(this.#named);
  }
}
