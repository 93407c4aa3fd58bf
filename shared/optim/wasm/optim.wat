;; The coordinator's Adam/AdamW step on WebAssembly SIMD: a port of shared/optim/adam.ts,
;; operation for operation, for shared/optim/wasm-adam.ts. Hand-written WAT, assembled by
;; scripts/build-wasm.mjs into a base64 module of its own (the kernels' module belongs to
;; the compute path; this one only to the optimizer).
;;
;; Bits are the point, as in the kernels: the JS computes in double from float32 values
;; and stores float32, and so does this: f32 lanes promoted to f64x2 (exact), the same
;; f64 operations in the same order (SIMD-128 has no fused multiply-add, and f64x2.sqrt,
;; like Math.sqrt, is correctly rounded), one demotion to f32 wherever the JS stores to a
;; Float32Array or calls Math.fround. The batch mean is an f32x4.div, which equals the
;; JS's double quotient stored as float32 (count ≤ 2^24: double rounding is innocuous;
;; see kernels.wat). The step's scalars arrive as f64, computed once by the JS.
;;
;; Memory is imported with maximum = initial. Pointers are byte offsets, 16-byte aligned;
;; sizes are element counts.
(module
  (import "env" "memory" (memory 1))

  ;; The step's scalars, splatted once per call for the lanes and kept as f64 for the tail.
  (global $decay (mut f64) (f64.const 0))
  (global $l2 (mut f64) (f64.const 0))
  (global $beta1 (mut f64) (f64.const 0))
  (global $c1 (mut f64) (f64.const 0))
  (global $beta2 (mut f64) (f64.const 0))
  (global $c2 (mut f64) (f64.const 0))
  (global $stepSize (mut f64) (f64.const 0))
  (global $bc2Sqrt (mut f64) (f64.const 0))
  (global $eps (mut f64) (f64.const 0))
  (global $vdecay (mut v128) (v128.const i64x2 0 0))
  (global $vl2 (mut v128) (v128.const i64x2 0 0))
  (global $vbeta1 (mut v128) (v128.const i64x2 0 0))
  (global $vc1 (mut v128) (v128.const i64x2 0 0))
  (global $vbeta2 (mut v128) (v128.const i64x2 0 0))
  (global $vc2 (mut v128) (v128.const i64x2 0 0))
  (global $vstepSize (mut v128) (v128.const i64x2 0 0))
  (global $vbc2Sqrt (mut v128) (v128.const i64x2 0 0))
  (global $veps (mut v128) (v128.const i64x2 0 0))

  ;; 1 when all N floats of buf are finite, else 0 (±Inf and NaN have all exponent bits set).
  (func $all_finite (param $buf i32) (param $N i32) (result i32)
    (local $k i32) (local $end i32) (local $bad v128) (local $badTail i32) (local $exponent v128)
    (local.set $exponent (i32x4.splat (i32.const 0x7f800000)))
    (local.set $end (i32.shl (i32.and (local.get $N) (i32.const -4)) (i32.const 2)))
    (block $done
      (loop $l
        (br_if $done (i32.ge_u (local.get $k) (local.get $end)))
        (local.set $bad (v128.or (local.get $bad)
          (i32x4.eq (v128.and (v128.load (i32.add (local.get $buf) (local.get $k))) (local.get $exponent)) (local.get $exponent))))
        (local.set $k (i32.add (local.get $k) (i32.const 16)))
        (br $l)))
    (local.set $end (i32.shl (local.get $N) (i32.const 2)))
    (block $done2
      (loop $t
        (br_if $done2 (i32.ge_u (local.get $k) (local.get $end)))
        (local.set $badTail (i32.or (local.get $badTail)
          (i32.eq (i32.and (i32.load (i32.add (local.get $buf) (local.get $k))) (i32.const 0x7f800000)) (i32.const 0x7f800000))))
        (local.set $k (i32.add (local.get $k) (i32.const 4)))
        (br $t)))
    (i32.eqz (i32.or (local.get $badTail) (v128.any_true (local.get $bad)))))

  ;; One Adam step on the batch mean g = sum[i] / count (f32), for i < N:
  ;;   p ← p·decay;  g ← g + l2·p
  ;;   m ← beta1·m + c1·g;  v ← beta2·v + (c2·g)·g      (stored as f32, then used as stored)
  ;;   p ← p − (stepSize·m) / (sqrt(v) / bc2Sqrt + eps)
  ;; params, m, v (N each) updated in place; sum (N) the gradient summed over count
  ;; samples. With check ≠ 0 and a non-finite value in sum, returns 0 having changed
  ;; nothing (for count ≥ 1 the mean is finite exactly when the sum is); else 1.
  ;; Quads: one f32x4.div, then each half (floats 0-1, 2-3) through $adam_pair; then the
  ;; N mod 4 tail through $adam_one, the same sequence one float at a time.
  (func (export "adam_step")
    (param $params i32) (param $m i32) (param $v i32) (param $sum i32) (param $N i32) (param $count f32) (param $check i32)
    (param $decay f64) (param $l2 f64) (param $beta1 f64) (param $c1 f64) (param $beta2 f64) (param $c2 f64)
    (param $stepSize f64) (param $bc2Sqrt f64) (param $eps f64)
    (result i32)
    (local $k i32) (local $end i32) (local $n v128) (local $g v128)
    (if (i32.and (i32.ne (local.get $check) (i32.const 0)) (i32.eqz (call $all_finite (local.get $sum) (local.get $N))))
      (then (return (i32.const 0))))
    (global.set $decay (local.get $decay))
    (global.set $l2 (local.get $l2))
    (global.set $beta1 (local.get $beta1))
    (global.set $c1 (local.get $c1))
    (global.set $beta2 (local.get $beta2))
    (global.set $c2 (local.get $c2))
    (global.set $stepSize (local.get $stepSize))
    (global.set $bc2Sqrt (local.get $bc2Sqrt))
    (global.set $eps (local.get $eps))
    (global.set $vdecay (f64x2.splat (local.get $decay)))
    (global.set $vl2 (f64x2.splat (local.get $l2)))
    (global.set $vbeta1 (f64x2.splat (local.get $beta1)))
    (global.set $vc1 (f64x2.splat (local.get $c1)))
    (global.set $vbeta2 (f64x2.splat (local.get $beta2)))
    (global.set $vc2 (f64x2.splat (local.get $c2)))
    (global.set $vstepSize (f64x2.splat (local.get $stepSize)))
    (global.set $vbc2Sqrt (f64x2.splat (local.get $bc2Sqrt)))
    (global.set $veps (f64x2.splat (local.get $eps)))
    (local.set $n (f32x4.splat (local.get $count)))
    (local.set $end (i32.shl (i32.and (local.get $N) (i32.const -4)) (i32.const 2)))
    (block $quadsDone
      (loop $quads
        (br_if $quadsDone (i32.ge_u (local.get $k) (local.get $end)))
        (local.set $g (f32x4.div (v128.load (i32.add (local.get $sum) (local.get $k))) (local.get $n)))
        (call $adam_pair
          (i32.add (local.get $params) (local.get $k)) (i32.add (local.get $m) (local.get $k)) (i32.add (local.get $v) (local.get $k))
          (f64x2.promote_low_f32x4 (local.get $g)))
        (call $adam_pair
          (i32.add (local.get $params) (i32.add (local.get $k) (i32.const 8)))
          (i32.add (local.get $m) (i32.add (local.get $k) (i32.const 8)))
          (i32.add (local.get $v) (i32.add (local.get $k) (i32.const 8)))
          (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $g) (local.get $g))))
        (local.set $k (i32.add (local.get $k) (i32.const 16)))
        (br $quads)))
    (local.set $end (i32.shl (local.get $N) (i32.const 2)))
    (block $tailDone
      (loop $tail
        (br_if $tailDone (i32.ge_u (local.get $k) (local.get $end)))
        (call $adam_one
          (i32.add (local.get $params) (local.get $k)) (i32.add (local.get $m) (local.get $k)) (i32.add (local.get $v) (local.get $k))
          (f64.promote_f32 (f32.div (f32.load (i32.add (local.get $sum) (local.get $k))) (local.get $count))))
        (local.set $k (i32.add (local.get $k) (i32.const 4)))
        (br $tail)))
    (i32.const 1))

  ;; adam_step's update of the two floats at byte addresses pp, mp, vp, with their means g (f64x2).
  (func $adam_pair (param $pp i32) (param $mp i32) (param $vp i32) (param $g v128)
    (local $p v128) (local $mi v128) (local $vi v128)
    (local.set $p (f64x2.mul (f64x2.promote_low_f32x4 (v128.load64_zero (local.get $pp))) (global.get $vdecay)))
    (local.set $g (f64x2.add (local.get $g) (f64x2.mul (global.get $vl2) (local.get $p))))
    (local.set $mi (f32x4.demote_f64x2_zero (f64x2.add
      (f64x2.mul (global.get $vbeta1) (f64x2.promote_low_f32x4 (v128.load64_zero (local.get $mp))))
      (f64x2.mul (global.get $vc1) (local.get $g)))))
    (local.set $vi (f32x4.demote_f64x2_zero (f64x2.add
      (f64x2.mul (global.get $vbeta2) (f64x2.promote_low_f32x4 (v128.load64_zero (local.get $vp))))
      (f64x2.mul (f64x2.mul (global.get $vc2) (local.get $g)) (local.get $g)))))
    (v128.store64_lane 0 (local.get $mp) (local.get $mi))
    (v128.store64_lane 0 (local.get $vp) (local.get $vi))
    (v128.store64_lane 0 (local.get $pp) (f32x4.demote_f64x2_zero (f64x2.sub (local.get $p)
      (f64x2.div
        (f64x2.mul (global.get $vstepSize) (f64x2.promote_low_f32x4 (local.get $mi)))
        (f64x2.add (f64x2.div (f64x2.sqrt (f64x2.promote_low_f32x4 (local.get $vi))) (global.get $vbc2Sqrt)) (global.get $veps)))))))

  ;; The same for one float.
  (func $adam_one (param $pp i32) (param $mp i32) (param $vp i32) (param $g f64)
    (local $p f64) (local $mi f32) (local $vi f32)
    (local.set $p (f64.mul (f64.promote_f32 (f32.load (local.get $pp))) (global.get $decay)))
    (local.set $g (f64.add (local.get $g) (f64.mul (global.get $l2) (local.get $p))))
    (local.set $mi (f32.demote_f64 (f64.add
      (f64.mul (global.get $beta1) (f64.promote_f32 (f32.load (local.get $mp))))
      (f64.mul (global.get $c1) (local.get $g)))))
    (local.set $vi (f32.demote_f64 (f64.add
      (f64.mul (global.get $beta2) (f64.promote_f32 (f32.load (local.get $vp))))
      (f64.mul (f64.mul (global.get $c2) (local.get $g)) (local.get $g)))))
    (f32.store (local.get $mp) (local.get $mi))
    (f32.store (local.get $vp) (local.get $vi))
    (f32.store (local.get $pp) (f32.demote_f64 (f64.sub (local.get $p)
      (f64.div
        (f64.mul (global.get $stepSize) (f64.promote_f32 (local.get $mi)))
        (f64.add (f64.div (f64.sqrt (f64.promote_f32 (local.get $vi))) (global.get $bc2Sqrt)) (global.get $eps)))))))
)
