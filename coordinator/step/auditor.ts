// Exact verification of workers' results: probation, then random audits.
//
// An honest result has exactly one byte pattern, so checking it is recomputing the
// task here (the run's kernels, the weights the worker was sent) and comparing bits.
//
// - Probation: a new connection's first `probation` results are checked before they
//   count (the scheduler holds each until its verdict). A reconnection is a new
//   connection, so it starts over.
// - Audits: past probation, a result counts at once and is checked afterwards with
//   probability rate(worker): 1/2 for its first result past probation, halved with
//   each audit it passes, never below `auditRate`. The draw is unpredictable
//   (crypto), so a worker cannot tell which results will be checked. Audits run off
//   the critical path: the result's digest (SHA-256 of its gradient bytes and node
//   statistics) and the weights of its version are kept, and the recomputation runs
//   later on this thread between other work; no step waits for it.
// - An audit may instead go to an idle worker (a CheckerPool: drawn at random among those
//   that are not the author and not computing a task of the current step, a sole one
//   only half the time, none more than a few times in a row for one author without an
//   audit of that author's here), which sends back only the digest of its
//   recomputation. An equal digest passes the audit; a different one, or none by the
//   deadline, sends it back here, and the recomputation bans whichever of the two lied.
//   Probation checks and claims of divergence always run here: their verdict is awaited.
// - A mismatch (on probation or in an audit) is a forgery: the worker is banned and
//   every step from its first unverified result on is undone (the sink). A worker
//   caught past probation has had results count that were never checked, so all of
//   them go, whether audited or not.
//
// A forger that sends k forged results past probation escapes every audit with
// probability at most (1 - auditRate)^k, unless an accomplice is the idle worker that
// checks them and vouches with the forged result's digest; with one accomplice, at most
// (1 - auditRate / 2)^k (docs/security.md, "Colluding workers").

import { createHash, getRandomValues } from 'node:crypto';
import type { NodeStats } from '../../shared/protocol/messages.js';
import { resultDigestParts } from '../../shared/result-digest.js';
import type { NodeGradient } from '../../worker/compute.js';
import {
  type CheckerPool,
  type Claim,
  nodeMismatch,
  type Recompute,
  resultMismatch,
  StructuralVerifier,
  type Verdict,
  type VerificationTally,
  type Verifier,
  type VerifierSink,
} from './verifier.js';
import type { StepWorker } from './worker.js';

export interface AuditOptions {
  /** Results of a new connection checked before they count. */
  readonly probation: number;
  /** Lowest probability that a result past probation is audited, in [0, 1]. */
  readonly auditRate: number;
}

/** Where the auditor gets its randomness: a float in [0, 1). Unpredictable by default. */
export type Draw = () => number;

/** How audits get their turn: default setImmediate, so results and messages in between are served first. */
export type Defer = (job: () => void) => void;

/** Pending audits beyond this are run at once rather than queued: a bound on the digests and weights kept. */
const MAX_QUEUED_AUDITS = 64;

interface WorkerRecord {
  /** Results still to check before they count. */
  probationLeft: number;
  /** Audits passed past probation; halves the audit rate each. */
  auditsPassed: number;
  /** Weights version of the first result that counted unchecked (and is still applied), or null. */
  firstUnverified: number | null;
  banned: boolean;
}

interface QueuedAudit {
  readonly claim: Claim;
  /** SHA-256 of the result as it arrived (its buffer is reduced into afterwards). */
  readonly digest: string;
  readonly shards: { id: number; indices: Uint32Array }[];
}

export class AuditingVerifier implements Verifier {
  readonly #recompute: Recompute;
  readonly #options: AuditOptions;
  readonly #draw: Draw;
  readonly #defer: Defer;
  readonly #structural: StructuralVerifier;
  readonly #records = new Map<StepWorker, WorkerRecord>();
  readonly #queue: QueuedAudit[] = [];
  /** Copies of the weights of each version with audits queued, as the workers received them. */
  readonly #weights = new Map<number, { weights: Float32Array; uses: number }>();
  #sink: VerifierSink | null = null;
  #checkers: CheckerPool | null = null;
  /** Audits handed to a checker whose digest has not come back; drain() finishes them here. */
  readonly #delegated = new Set<QueuedAudit>();
  #scheduled = false;
  #audited = 0;
  #banned = 0;

  constructor(recompute: Recompute, options: AuditOptions, draw: Draw = secureDraw, defer: Defer = setImmediate) {
    if (!(Number.isInteger(options.probation) && options.probation >= 0))
      throw new RangeError(`probation must be an integer ≥ 0, got ${options.probation}`);
    if (!(options.auditRate >= 0 && options.auditRate <= 1))
      throw new RangeError(`the audit rate must be in [0, 1], got ${options.auditRate}`);
    this.#recompute = recompute;
    this.#options = options;
    this.#draw = draw;
    this.#defer = defer;
    this.#structural = new StructuralVerifier(recompute);
  }

  attach(sink: VerifierSink): void {
    this.#sink = sink;
  }

  /** Background audits may run on idle workers from now on (probation checks always run here). */
  delegateTo(checkers: CheckerPool): void {
    this.#checkers = checkers;
  }

  tally(): VerificationTally {
    return { audited: this.#audited, banned: this.#banned };
  }

  /** Audits queued and not yet run. */
  get queued(): number {
    return this.#queue.length;
  }

  verify(claim: Claim): Verdict | Promise<Verdict> {
    const mismatch = nodeMismatch(claim);
    const record = this.#record(claim.worker);
    if (record.banned)
      return { kind: 'reject', reason: 'forged', detail: `task ${claim.taskId}: worker already banned` };
    if (mismatch !== null) return this.#structural.verify(claim);
    if (claim.result.diverged) {
      // A claim of divergence is recomputed at once; one the recomputation finds finite is a forgery too.
      const verdict = this.#structural.verify(claim);
      this.#audited++;
      if (verdict.kind !== 'reject') return verdict;
      return { kind: 'forged', detail: verdict.detail, undoFrom: this.#ban(record) };
    }
    if (record.probationLeft > 0 || claim.mustVerify) {
      // Held: recomputed on a later turn, so results of other workers are decoded meanwhile.
      // The weights are kept: by then the step may be over and its buffer reused.
      const weights = this.#keepWeights(claim);
      return new Promise<Verdict>((resolve) =>
        this.#defer(() => {
          const verdict = this.#check(claim, record, weights);
          this.#releaseWeights(claim.version);
          resolve(verdict);
        }),
      );
    }
    record.firstUnverified ??= claim.version;
    if (this.#draw() < this.#rate(record)) this.#enqueue(claim);
    return { kind: 'accept', verified: false };
  }

  suspect(workers: readonly StepWorker[]): void {
    for (const w of workers) {
      const record = this.#record(w);
      record.probationLeft = Math.max(record.probationLeft, Math.max(1, this.#options.probation));
    }
  }

  unverifiedFrom(): number | null {
    let first: number | null = null;
    for (const r of this.#records.values())
      if (!r.banned && r.firstUnverified !== null && (first === null || r.firstUnverified < first))
        first = r.firstUnverified;
    return first;
  }

  rolledBack(version: number): void {
    for (const record of this.#records.values())
      if (record.firstUnverified !== null && record.firstUnverified >= version) record.firstUnverified = null;
  }

  /** Runs every queued audit now: the end of a run waits for them. */
  drain(): void {
    for (const audit of [...this.#delegated]) this.#settle(audit, null, null);
    while (this.#queue.length > 0) this.#runOne(false);
  }

  /** A probation check: recompute now and compare bits. */
  #check(claim: Claim, record: WorkerRecord, weights: Float32Array): Verdict {
    if (record.banned)
      return { kind: 'reject', reason: 'forged', detail: `task ${claim.taskId}: worker already banned` };
    const recomputed = this.#recompute(this.#shards(claim), claim.plan.shards.length, weights, claim.plan.globalStep);
    this.#audited++;
    const mismatch = resultMismatch(claim, recomputed);
    if (mismatch === null) {
      record.probationLeft = Math.max(0, record.probationLeft - 1);
      return { kind: 'accept', verified: true };
    }
    return { kind: 'forged', detail: mismatch, undoFrom: this.#ban(record) };
  }

  /** Past probation: 1/2, halved with each audit passed, never below the audit rate. */
  #rate(record: WorkerRecord): number {
    return Math.max(this.#options.auditRate, 0.5 ** (record.auditsPassed + 1));
  }

  /** A copy of the claim's weights, shared by every claim at its version until each releases it. */
  #keepWeights(claim: Claim): Float32Array {
    const kept = this.#weights.get(claim.version);
    if (kept !== undefined) {
      kept.uses++;
      return kept.weights;
    }
    const weights = claim.weights.slice();
    this.#weights.set(claim.version, { weights, uses: 1 });
    return weights;
  }

  #releaseWeights(version: number): void {
    const kept = this.#weights.get(version);
    if (kept !== undefined && --kept.uses === 0) this.#weights.delete(version);
  }

  #enqueue(claim: Claim): void {
    this.#keepWeights(claim);
    this.#queue.push({
      claim,
      digest: resultDigest(claim.result.nodes, claim.result.grads),
      shards: this.#shards(claim),
    });
    if (this.#queue.length > MAX_QUEUED_AUDITS) this.#runOne();
    this.#schedule();
  }

  #schedule(): void {
    if (this.#scheduled || this.#queue.length === 0) return;
    this.#scheduled = true;
    this.#defer(() => {
      this.#scheduled = false;
      this.#runOne();
      this.#schedule();
    });
  }

  /** Runs the oldest queued audit: on an idle worker when one exists (and `delegate`), else here. */
  #runOne(delegate = true): void {
    const audit = this.#queue.shift();
    if (audit === undefined) return;
    const { claim } = audit;
    if (this.#record(claim.worker).banned) return this.#releaseWeights(claim.version);
    const work = {
      version: claim.version,
      step: claim.plan.globalStep,
      numShards: claim.plan.shards.length,
      shards: audit.shards,
      weights: this.#weights.get(claim.version)!.weights,
    };
    const checker = delegate ? (this.#checkers?.idle(claim.worker, work) ?? null) : null;
    if (checker === null || this.#record(checker).banned) return this.#settle(audit, null, null);
    this.#delegated.add(audit);
    void this.#checkers!.check(checker, work).then(
      (digest) => this.#settle(audit, checker, digest),
      () => this.#settle(audit, checker, null),
    );
  }

  /**
   * Decides an audit. A checker's digest equal to the author's settles it; otherwise
   * (no checker, no answer, or a mismatch) the task is recomputed here, and whichever
   * of the author and the checker differs from it is banned.
   */
  #settle(audit: QueuedAudit, checker: StepWorker | null, checkerDigest: string | null): void {
    const { claim } = audit;
    // A digest that arrives after drain() decided its audit here is ignored.
    if (!this.#delegated.delete(audit) && checker !== null) return;
    const weights = this.#weights.get(claim.version)!.weights;
    const record = this.#record(claim.worker);
    try {
      if (record.banned) return;
      const about = { taskId: claim.taskId, version: claim.version, author: claim.worker.id };
      if (checkerDigest !== null && checkerDigest === audit.digest) {
        checker!.log.debug(about, 'check agreed: audit passed');
        this.#audited++;
        return this.#passed(audit, record);
      }
      if (checkerDigest !== null)
        checker!.log.info(about, "check's digest differs from the result's: recomputing here");
      const truth = recomputedDigest(
        this.#recompute(audit.shards, claim.plan.shards.length, weights, claim.plan.globalStep),
      );
      this.#audited++;
      if (checker !== null && checkerDigest !== null && checkerDigest !== truth) {
        const checkerRecord = this.#record(checker);
        if (!checkerRecord.banned) {
          const detail =
            `check of task ${claim.taskId} (weights version ${claim.version}): ` +
            'its digest differs from the recomputation';
          this.#sink?.forged(checker, detail, this.#ban(checkerRecord));
        }
      }
      if (truth === audit.digest) return this.#passed(audit, record);
      const detail = `task ${claim.taskId} (weights version ${claim.version}): its bits differ from the recomputation`;
      this.#sink?.forged(claim.worker, detail, this.#ban(record));
    } finally {
      this.#releaseWeights(claim.version);
    }
  }

  #passed(audit: QueuedAudit, record: WorkerRecord): void {
    record.auditsPassed++;
    this.#sink?.verified(audit.claim);
  }

  /** Marks the worker banned; returns the version from which its unverified results must be undone. */
  #ban(record: WorkerRecord): number | null {
    record.banned = true;
    this.#banned++;
    // Its queued audits no longer matter: everything it sent since firstUnverified goes.
    for (let i = this.#queue.length - 1; i >= 0; i--) {
      const audit = this.#queue[i];
      if (this.#records.get(audit.claim.worker) !== record) continue;
      this.#queue.splice(i, 1);
      this.#releaseWeights(audit.claim.version);
    }
    return record.firstUnverified;
  }

  #record(worker: StepWorker): WorkerRecord {
    let record = this.#records.get(worker);
    if (record === undefined) {
      record = { probationLeft: this.#options.probation, auditsPassed: 0, firstUnverified: null, banned: false };
      this.#records.set(worker, record);
    }
    return record;
  }

  #shards(claim: Claim): { id: number; indices: Uint32Array }[] {
    return claim.shards.map((id) => ({ id, indices: claim.plan.shards[id] }));
  }
}

/** SHA-256 over each node's statistics and gradient bytes, in order (shared/result-digest.ts). */
export function resultDigest(nodes: readonly NodeStats[], grads: Float32Array): string {
  const P = nodes.length === 0 ? 0 : grads.length / nodes.length;
  return sha256Sync(resultDigestParts(nodes.map((n, k) => ({ ...n, grad: grads.subarray(k * P, (k + 1) * P) }))));
}

/** The same digest of a recomputation. */
export function recomputedDigest(nodes: readonly NodeGradient[]): string {
  return sha256Sync(resultDigestParts(nodes.map((n) => n.partial)));
}

function sha256Sync(parts: readonly Uint8Array[]): string {
  const hash = createHash('sha256');
  for (const p of parts) hash.update(p);
  return hash.digest('hex');
}

/** 53 random bits from the OS's generator, as a float in [0, 1). */
function secureDraw(): number {
  const words = getRandomValues(new Uint32Array(2));
  return (words[0] * 2 ** 21 + (words[1] >>> 11)) / 2 ** 53;
}
