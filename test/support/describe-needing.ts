// A suite that needs something npm does not bring (Debian's chromium, PyTorch): run
// it when that is there; otherwise skip it loudly, except under CI=true, where the
// missing piece is a failure (.ci/run installs it).

import { describe, it } from 'vitest';

export interface Requirement {
  /** Whether it is installed here. */
  readonly present: boolean;
  /** What is missing, e.g. "/usr/bin/chromium is missing". */
  readonly missing: string;
  /** The command that installs it. */
  readonly install: string;
}

export function describeNeeding(requirement: Requirement, name: string, body: () => void): void {
  if (requirement.present) {
    describe(name, body);
    return;
  }
  if (process.env.CI === 'true') {
    describe(name, () => {
      it(`needs: ${requirement.install}`, () => {
        throw new Error(`${requirement.missing}: "${name}" cannot run (CI=true). Install it: ${requirement.install}`);
      });
    });
    return;
  }
  process.stderr.write(
    `\n!!!!! SKIPPING "${name}": ${requirement.missing}. Install it with: ${requirement.install} !!!!!\n\n`,
  );
  describe.skip(name, body);
}
