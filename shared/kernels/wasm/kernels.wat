;; flocktrain's WebAssembly SIMD kernels: the dense layer's forward and both
;; gradients, 2-D convolution's (NCHW) forward and both gradients, ReLU, leaky ReLU,
;; sigmoid, tanh, max pooling, the reduction tree's add, bfloat16 rounding, and the
;; coordinator's optimizer step (batch mean, finiteness check, SGD). Hand-written
;; WAT, assembled by scripts/build-wasm.mjs (wabt) into a base64 module that
;; shared/kernels/wasm/kernels.ts instantiates in Node and in the browser's Web Worker alike.
;;
;; Bits are the point. WebAssembly fixes the result of every f32, f64 and SIMD lane
;; operation (IEEE, round to nearest even, no contraction: f32x4.mul then f32x4.add is
;; never fused; only a NaN's sign and payload are left open), so each kernel below
;; yields the same bits on every CPU and engine. Each
;; output element is produced by one sequence of f32 operations that does not depend
;; on the tiling: edge tiles run the same sequence through $dot / scalar loops.
;; That sequence is not the JS kernels' (they accumulate in double), so the two
;; kernel sets give different, each deterministic, bits; a run picks one. The
;; elementwise and pooling kernels are the exception: each is a port of its JS
;; twin, operation for operation, and gives its bits.
;;
;; Memory is imported with maximum = initial (sized once by the caller, never grown).
;; Pointers are byte offsets, 16-byte aligned by the caller's arena; sizes are
;; element counts. Shapes are row-major: weight (OC, C) as PyTorch's nn.Linear.
(module
  (import "env" "memory" (memory 1))

  ;; (l0 + l1) + (l2 + l3): the fixed horizontal sum of a lane accumulator.
  (func $hsum (param $v v128) (result f32)
    (f32.add
      (f32.add (f32x4.extract_lane 0 (local.get $v)) (f32x4.extract_lane 1 (local.get $v)))
      (f32.add (f32x4.extract_lane 2 (local.get $v)) (f32x4.extract_lane 3 (local.get $v)))))

  ;; Σ_c x[c]·w[c] for c < C, in the forward kernel's order: lane j accumulates the
  ;; products with c ≡ j (mod 4) over whole quads, then $hsum, then the tail c in order.
  (func $dot (param $x i32) (param $w i32) (param $C i32) (result f32)
    (local $k i32) (local $end i32) (local $acc v128) (local $s f32)
    (local.set $end (i32.shl (i32.and (local.get $C) (i32.const -4)) (i32.const 2)))
    (block $done
      (loop $quads
        (br_if $done (i32.ge_u (local.get $k) (local.get $end)))
        (local.set $acc (f32x4.add (local.get $acc)
          (f32x4.mul (v128.load (i32.add (local.get $x) (local.get $k)))
                     (v128.load (i32.add (local.get $w) (local.get $k))))))
        (local.set $k (i32.add (local.get $k) (i32.const 16)))
        (br $quads)))
    (local.set $s (call $hsum (local.get $acc)))
    (local.set $end (i32.shl (local.get $C) (i32.const 2)))
    (block $done2
      (loop $tail
        (br_if $done2 (i32.ge_u (local.get $k) (local.get $end)))
        (local.set $s (f32.add (local.get $s)
          (f32.mul (f32.load (i32.add (local.get $x) (local.get $k)))
                   (f32.load (i32.add (local.get $w) (local.get $k))))))
        (local.set $k (i32.add (local.get $k) (i32.const 4)))
        (br $tail)))
    (local.get $s))

  ;; out[b, o] = dot(inp[b], weight[o]) + bias[o]
  ;; out (B, OC), inp (B, C), weight (OC, C), bias (OC)
  ;; Register tile: 4 samples × 2 outputs, 8 lane accumulators over c.
  (func (export "matmul_forward")
    (param $out i32) (param $inp i32) (param $w i32) (param $bias i32)
    (param $B i32) (param $C i32) (param $OC i32)
    (local $rs i32) (local $qend i32) (local $b i32) (local $o i32) (local $k i32)
    (local $x0 i32) (local $x1 i32) (local $x2 i32) (local $x3 i32) (local $w0 i32) (local $w1 i32)
    (local $v0 v128) (local $v1 v128) (local $t v128)
    (local $a00 v128) (local $a01 v128) (local $a10 v128) (local $a11 v128)
    (local $a20 v128) (local $a21 v128) (local $a30 v128) (local $a31 v128)
    (local $p i32) (local $ob i32) (local $b0 f32) (local $b1 f32)
    (local.set $rs (i32.shl (local.get $C) (i32.const 2)))
    (local.set $qend (i32.shl (i32.and (local.get $C) (i32.const -4)) (i32.const 2)))
    (local.set $ob (i32.shl (local.get $OC) (i32.const 2)))
    (block $bdone
      (loop $brows
        (br_if $bdone (i32.gt_u (i32.add (local.get $b) (i32.const 4)) (local.get $B)))
        (local.set $x0 (i32.add (local.get $inp) (i32.mul (local.get $b) (local.get $rs))))
        (local.set $x1 (i32.add (local.get $x0) (local.get $rs)))
        (local.set $x2 (i32.add (local.get $x1) (local.get $rs)))
        (local.set $x3 (i32.add (local.get $x2) (local.get $rs)))
        (local.set $o (i32.const 0))
        (block $odone
          (loop $ocols
            (br_if $odone (i32.gt_u (i32.add (local.get $o) (i32.const 2)) (local.get $OC)))
            (local.set $w0 (i32.add (local.get $w) (i32.mul (local.get $o) (local.get $rs))))
            (local.set $w1 (i32.add (local.get $w0) (local.get $rs)))
            (local.set $a00 (v128.const i32x4 0 0 0 0)) (local.set $a01 (v128.const i32x4 0 0 0 0))
            (local.set $a10 (v128.const i32x4 0 0 0 0)) (local.set $a11 (v128.const i32x4 0 0 0 0))
            (local.set $a20 (v128.const i32x4 0 0 0 0)) (local.set $a21 (v128.const i32x4 0 0 0 0))
            (local.set $a30 (v128.const i32x4 0 0 0 0)) (local.set $a31 (v128.const i32x4 0 0 0 0))
            (local.set $k (i32.const 0))
            (block $kdone
              (loop $kq
                (br_if $kdone (i32.ge_u (local.get $k) (local.get $qend)))
                (local.set $v0 (v128.load (i32.add (local.get $w0) (local.get $k))))
                (local.set $v1 (v128.load (i32.add (local.get $w1) (local.get $k))))
                (local.set $t (v128.load (i32.add (local.get $x0) (local.get $k))))
                (local.set $a00 (f32x4.add (local.get $a00) (f32x4.mul (local.get $t) (local.get $v0))))
                (local.set $a01 (f32x4.add (local.get $a01) (f32x4.mul (local.get $t) (local.get $v1))))
                (local.set $t (v128.load (i32.add (local.get $x1) (local.get $k))))
                (local.set $a10 (f32x4.add (local.get $a10) (f32x4.mul (local.get $t) (local.get $v0))))
                (local.set $a11 (f32x4.add (local.get $a11) (f32x4.mul (local.get $t) (local.get $v1))))
                (local.set $t (v128.load (i32.add (local.get $x2) (local.get $k))))
                (local.set $a20 (f32x4.add (local.get $a20) (f32x4.mul (local.get $t) (local.get $v0))))
                (local.set $a21 (f32x4.add (local.get $a21) (f32x4.mul (local.get $t) (local.get $v1))))
                (local.set $t (v128.load (i32.add (local.get $x3) (local.get $k))))
                (local.set $a30 (f32x4.add (local.get $a30) (f32x4.mul (local.get $t) (local.get $v0))))
                (local.set $a31 (f32x4.add (local.get $a31) (f32x4.mul (local.get $t) (local.get $v1))))
                (local.set $k (i32.add (local.get $k) (i32.const 16)))
                (br $kq)))
            ;; out row b+i, column o+j: hsum, then the tail c ≥ qend in order, then bias.
            (local.set $b0 (f32.load (i32.add (local.get $bias) (i32.shl (local.get $o) (i32.const 2)))))
            (local.set $b1 (f32.load offset=4 (i32.add (local.get $bias) (i32.shl (local.get $o) (i32.const 2)))))
            (local.set $p (i32.add (local.get $out)
              (i32.shl (i32.add (i32.mul (local.get $b) (local.get $OC)) (local.get $o)) (i32.const 2))))
            (f32.store (local.get $p) (f32.add (call $tail (call $hsum (local.get $a00)) (local.get $x0) (local.get $w0) (local.get $qend) (local.get $rs)) (local.get $b0)))
            (f32.store offset=4 (local.get $p) (f32.add (call $tail (call $hsum (local.get $a01)) (local.get $x0) (local.get $w1) (local.get $qend) (local.get $rs)) (local.get $b1)))
            (local.set $p (i32.add (local.get $p) (local.get $ob)))
            (f32.store (local.get $p) (f32.add (call $tail (call $hsum (local.get $a10)) (local.get $x1) (local.get $w0) (local.get $qend) (local.get $rs)) (local.get $b0)))
            (f32.store offset=4 (local.get $p) (f32.add (call $tail (call $hsum (local.get $a11)) (local.get $x1) (local.get $w1) (local.get $qend) (local.get $rs)) (local.get $b1)))
            (local.set $p (i32.add (local.get $p) (local.get $ob)))
            (f32.store (local.get $p) (f32.add (call $tail (call $hsum (local.get $a20)) (local.get $x2) (local.get $w0) (local.get $qend) (local.get $rs)) (local.get $b0)))
            (f32.store offset=4 (local.get $p) (f32.add (call $tail (call $hsum (local.get $a21)) (local.get $x2) (local.get $w1) (local.get $qend) (local.get $rs)) (local.get $b1)))
            (local.set $p (i32.add (local.get $p) (local.get $ob)))
            (f32.store (local.get $p) (f32.add (call $tail (call $hsum (local.get $a30)) (local.get $x3) (local.get $w0) (local.get $qend) (local.get $rs)) (local.get $b0)))
            (f32.store offset=4 (local.get $p) (f32.add (call $tail (call $hsum (local.get $a31)) (local.get $x3) (local.get $w1) (local.get $qend) (local.get $rs)) (local.get $b1)))
            (local.set $o (i32.add (local.get $o) (i32.const 2)))
            (br $ocols)))
        ;; A last odd output column for these 4 rows.
        (if (i32.lt_u (local.get $o) (local.get $OC))
          (then
            (call $fwd_one (local.get $out) (local.get $inp) (local.get $w) (local.get $bias) (local.get $b) (local.get $o) (local.get $C) (local.get $OC))
            (call $fwd_one (local.get $out) (local.get $inp) (local.get $w) (local.get $bias) (i32.add (local.get $b) (i32.const 1)) (local.get $o) (local.get $C) (local.get $OC))
            (call $fwd_one (local.get $out) (local.get $inp) (local.get $w) (local.get $bias) (i32.add (local.get $b) (i32.const 2)) (local.get $o) (local.get $C) (local.get $OC))
            (call $fwd_one (local.get $out) (local.get $inp) (local.get $w) (local.get $bias) (i32.add (local.get $b) (i32.const 3)) (local.get $o) (local.get $C) (local.get $OC))))
        (local.set $b (i32.add (local.get $b) (i32.const 4)))
        (br $brows)))
    ;; Leftover rows (B mod 4), one element at a time.
    (block $rdone
      (loop $rows
        (br_if $rdone (i32.ge_u (local.get $b) (local.get $B)))
        (local.set $o (i32.const 0))
        (block $cdone
          (loop $cols
            (br_if $cdone (i32.ge_u (local.get $o) (local.get $OC)))
            (call $fwd_one (local.get $out) (local.get $inp) (local.get $w) (local.get $bias) (local.get $b) (local.get $o) (local.get $C) (local.get $OC))
            (local.set $o (i32.add (local.get $o) (i32.const 1)))
            (br $cols)))
        (local.set $b (i32.add (local.get $b) (i32.const 1)))
        (br $rows))))

  ;; s + Σ x[c]·w[c] over the bytes [k, end) in order: the forward tail after the quads.
  (func $tail (param $s f32) (param $x i32) (param $w i32) (param $k i32) (param $end i32) (result f32)
    (block $done
      (loop $l
        (br_if $done (i32.ge_u (local.get $k) (local.get $end)))
        (local.set $s (f32.add (local.get $s)
          (f32.mul (f32.load (i32.add (local.get $x) (local.get $k)))
                   (f32.load (i32.add (local.get $w) (local.get $k))))))
        (local.set $k (i32.add (local.get $k) (i32.const 4)))
        (br $l)))
    (local.get $s))

  ;; One forward element out[b, o], same sequence as the tile.
  (func $fwd_one (param $out i32) (param $inp i32) (param $w i32) (param $bias i32)
    (param $b i32) (param $o i32) (param $C i32) (param $OC i32)
    (f32.store
      (i32.add (local.get $out) (i32.shl (i32.add (i32.mul (local.get $b) (local.get $OC)) (local.get $o)) (i32.const 2)))
      (f32.add
        (call $dot
          (i32.add (local.get $inp) (i32.shl (i32.mul (local.get $b) (local.get $C)) (i32.const 2)))
          (i32.add (local.get $w) (i32.shl (i32.mul (local.get $o) (local.get $C)) (i32.const 2)))
          (local.get $C))
        (f32.load (i32.add (local.get $bias) (i32.shl (local.get $o) (i32.const 2)))))))

  ;; dweight[o, c] += s, s = Σ_b dout[b, o]·inp[b, c] summed in f32 from 0 in b order;
  ;; dbias[o] += Σ_b dout[b, o] (f32, b order). With $acc = 0 the old values are taken
  ;; as +0 instead of read: dweight = 0 + s, the very bits of zeroing first and adding,
  ;; without the memset (a whole gradient's worth per shard).
  ;; dweight (OC, C), dbias (OC), dout (B, OC), inp (B, C)
  ;; Every element is its own lane, so the tile (4 outputs × 8 inputs, 8 accumulators
  ;; over b) and the scalar edges give identical bits.
  (func (export "matmul_backward_weight")
    (param $dw i32) (param $dbias i32) (param $dout i32) (param $inp i32)
    (param $B i32) (param $C i32) (param $OC i32) (param $acc i32)
    (local $rs i32) (local $ob i32) (local $o i32) (local $c i32) (local $b i32)
    (local $d i32) (local $x i32) (local $w i32) (local $s f32)
    (local $t0 v128) (local $t1 v128) (local $g v128)
    (local $a00 v128) (local $a01 v128) (local $a10 v128) (local $a11 v128)
    (local $a20 v128) (local $a21 v128) (local $a30 v128) (local $a31 v128)
    (local.set $rs (i32.shl (local.get $C) (i32.const 2)))
    (local.set $ob (i32.shl (local.get $OC) (i32.const 2)))
    ;; dbias
    (block $bdone
      (loop $bias
        (br_if $bdone (i32.ge_u (local.get $o) (local.get $OC)))
        (local.set $s (f32.const 0))
        (local.set $d (i32.add (local.get $dout) (i32.shl (local.get $o) (i32.const 2))))
        (local.set $b (i32.const 0))
        (block $sdone
          (loop $samples
            (br_if $sdone (i32.ge_u (local.get $b) (local.get $B)))
            (local.set $s (f32.add (local.get $s) (f32.load (local.get $d))))
            (local.set $d (i32.add (local.get $d) (local.get $ob)))
            (local.set $b (i32.add (local.get $b) (i32.const 1)))
            (br $samples)))
        (local.set $w (i32.add (local.get $dbias) (i32.shl (local.get $o) (i32.const 2))))
        (f32.store (local.get $w) (f32.add (select (f32.load (local.get $w)) (f32.const 0) (local.get $acc)) (local.get $s)))
        (local.set $o (i32.add (local.get $o) (i32.const 1)))
        (br $bias)))
    ;; 4 outputs × 8 inputs tiles
    (local.set $o (i32.const 0))
    (block $odone
      (loop $orows
        (br_if $odone (i32.gt_u (i32.add (local.get $o) (i32.const 4)) (local.get $OC)))
        (local.set $c (i32.const 0))
        (block $cdone
          (loop $ccols
            (br_if $cdone (i32.gt_u (i32.add (local.get $c) (i32.const 8)) (local.get $C)))
            (local.set $a00 (v128.const i32x4 0 0 0 0)) (local.set $a01 (v128.const i32x4 0 0 0 0))
            (local.set $a10 (v128.const i32x4 0 0 0 0)) (local.set $a11 (v128.const i32x4 0 0 0 0))
            (local.set $a20 (v128.const i32x4 0 0 0 0)) (local.set $a21 (v128.const i32x4 0 0 0 0))
            (local.set $a30 (v128.const i32x4 0 0 0 0)) (local.set $a31 (v128.const i32x4 0 0 0 0))
            (local.set $x (i32.add (local.get $inp) (i32.shl (local.get $c) (i32.const 2))))
            (local.set $d (i32.add (local.get $dout) (i32.shl (local.get $o) (i32.const 2))))
            (local.set $b (i32.const 0))
            (block $kdone
              (loop $k
                (br_if $kdone (i32.ge_u (local.get $b) (local.get $B)))
                (local.set $t0 (v128.load (local.get $x)))
                (local.set $t1 (v128.load offset=16 (local.get $x)))
                (local.set $g (v128.load32_splat (local.get $d)))
                (local.set $a00 (f32x4.add (local.get $a00) (f32x4.mul (local.get $g) (local.get $t0))))
                (local.set $a01 (f32x4.add (local.get $a01) (f32x4.mul (local.get $g) (local.get $t1))))
                (local.set $g (v128.load32_splat offset=4 (local.get $d)))
                (local.set $a10 (f32x4.add (local.get $a10) (f32x4.mul (local.get $g) (local.get $t0))))
                (local.set $a11 (f32x4.add (local.get $a11) (f32x4.mul (local.get $g) (local.get $t1))))
                (local.set $g (v128.load32_splat offset=8 (local.get $d)))
                (local.set $a20 (f32x4.add (local.get $a20) (f32x4.mul (local.get $g) (local.get $t0))))
                (local.set $a21 (f32x4.add (local.get $a21) (f32x4.mul (local.get $g) (local.get $t1))))
                (local.set $g (v128.load32_splat offset=12 (local.get $d)))
                (local.set $a30 (f32x4.add (local.get $a30) (f32x4.mul (local.get $g) (local.get $t0))))
                (local.set $a31 (f32x4.add (local.get $a31) (f32x4.mul (local.get $g) (local.get $t1))))
                (local.set $x (i32.add (local.get $x) (local.get $rs)))
                (local.set $d (i32.add (local.get $d) (local.get $ob)))
                (local.set $b (i32.add (local.get $b) (i32.const 1)))
                (br $k)))
            (local.set $w (i32.add (local.get $dw)
              (i32.shl (i32.add (i32.mul (local.get $o) (local.get $C)) (local.get $c)) (i32.const 2))))
            (v128.store (local.get $w) (f32x4.add (select (result v128) (v128.load (local.get $w)) (v128.const i32x4 0 0 0 0) (local.get $acc)) (local.get $a00)))
            (v128.store offset=16 (local.get $w) (f32x4.add (select (result v128) (v128.load offset=16 (local.get $w)) (v128.const i32x4 0 0 0 0) (local.get $acc)) (local.get $a01)))
            (local.set $w (i32.add (local.get $w) (local.get $rs)))
            (v128.store (local.get $w) (f32x4.add (select (result v128) (v128.load (local.get $w)) (v128.const i32x4 0 0 0 0) (local.get $acc)) (local.get $a10)))
            (v128.store offset=16 (local.get $w) (f32x4.add (select (result v128) (v128.load offset=16 (local.get $w)) (v128.const i32x4 0 0 0 0) (local.get $acc)) (local.get $a11)))
            (local.set $w (i32.add (local.get $w) (local.get $rs)))
            (v128.store (local.get $w) (f32x4.add (select (result v128) (v128.load (local.get $w)) (v128.const i32x4 0 0 0 0) (local.get $acc)) (local.get $a20)))
            (v128.store offset=16 (local.get $w) (f32x4.add (select (result v128) (v128.load offset=16 (local.get $w)) (v128.const i32x4 0 0 0 0) (local.get $acc)) (local.get $a21)))
            (local.set $w (i32.add (local.get $w) (local.get $rs)))
            (v128.store (local.get $w) (f32x4.add (select (result v128) (v128.load (local.get $w)) (v128.const i32x4 0 0 0 0) (local.get $acc)) (local.get $a30)))
            (v128.store offset=16 (local.get $w) (f32x4.add (select (result v128) (v128.load offset=16 (local.get $w)) (v128.const i32x4 0 0 0 0) (local.get $acc)) (local.get $a31)))
            (local.set $c (i32.add (local.get $c) (i32.const 8)))
            (br $ccols)))
        ;; columns c ≥ C − C mod 8 of these 4 rows, one element at a time
        (call $dw_block (local.get $dw) (local.get $dout) (local.get $inp) (local.get $B) (local.get $C) (local.get $OC)
          (local.get $o) (i32.add (local.get $o) (i32.const 4)) (local.get $c) (local.get $acc))
        (local.set $o (i32.add (local.get $o) (i32.const 4)))
        (br $orows)))
    ;; rows o ≥ OC − OC mod 4, one at a time
    (block $rdone
      (loop $rows
        (br_if $rdone (i32.ge_u (local.get $o) (local.get $OC)))
        (call $dw_row (local.get $dw) (local.get $dout) (local.get $inp) (local.get $B) (local.get $C) (local.get $OC) (local.get $o) (local.get $acc))
        (local.set $o (i32.add (local.get $o) (i32.const 1)))
        (br $rows))))

  ;; dweight[o, c] += Σ_b dout[b, o]·inp[b, c] for one row o, every column: 1 × 8 tiles
  ;; (2 accumulators over b), then the columns past C − C mod 8 through $dw_block.
  (func $dw_row (param $dw i32) (param $dout i32) (param $inp i32) (param $B i32) (param $C i32) (param $OC i32) (param $o i32) (param $acc i32)
    (local $rs i32) (local $ob i32) (local $c i32) (local $b i32) (local $x i32) (local $d i32) (local $w i32)
    (local $g v128) (local $a0 v128) (local $a1 v128)
    (local.set $rs (i32.shl (local.get $C) (i32.const 2)))
    (local.set $ob (i32.shl (local.get $OC) (i32.const 2)))
    (block $cdone
      (loop $ccols
        (br_if $cdone (i32.gt_u (i32.add (local.get $c) (i32.const 8)) (local.get $C)))
        (local.set $a0 (v128.const i32x4 0 0 0 0))
        (local.set $a1 (v128.const i32x4 0 0 0 0))
        (local.set $x (i32.add (local.get $inp) (i32.shl (local.get $c) (i32.const 2))))
        (local.set $d (i32.add (local.get $dout) (i32.shl (local.get $o) (i32.const 2))))
        (local.set $b (i32.const 0))
        (block $kdone
          (loop $k
            (br_if $kdone (i32.ge_u (local.get $b) (local.get $B)))
            (local.set $g (v128.load32_splat (local.get $d)))
            (local.set $a0 (f32x4.add (local.get $a0) (f32x4.mul (local.get $g) (v128.load (local.get $x)))))
            (local.set $a1 (f32x4.add (local.get $a1) (f32x4.mul (local.get $g) (v128.load offset=16 (local.get $x)))))
            (local.set $x (i32.add (local.get $x) (local.get $rs)))
            (local.set $d (i32.add (local.get $d) (local.get $ob)))
            (local.set $b (i32.add (local.get $b) (i32.const 1)))
            (br $k)))
        (local.set $w (i32.add (local.get $dw)
          (i32.shl (i32.add (i32.mul (local.get $o) (local.get $C)) (local.get $c)) (i32.const 2))))
        (v128.store (local.get $w) (f32x4.add (select (result v128) (v128.load (local.get $w)) (v128.const i32x4 0 0 0 0) (local.get $acc)) (local.get $a0)))
        (v128.store offset=16 (local.get $w) (f32x4.add (select (result v128) (v128.load offset=16 (local.get $w)) (v128.const i32x4 0 0 0 0) (local.get $acc)) (local.get $a1)))
        (local.set $c (i32.add (local.get $c) (i32.const 8)))
        (br $ccols)))
    (call $dw_block (local.get $dw) (local.get $dout) (local.get $inp) (local.get $B) (local.get $C) (local.get $OC)
      (local.get $o) (i32.add (local.get $o) (i32.const 1)) (local.get $c) (local.get $acc)))

  ;; dweight[o, c] += Σ_b dout[b, o]·inp[b, c] for o in [o0, o1), c in [c0, C), one element
  ;; at a time in the tile's sequence (f32, from 0, b order).
  (func $dw_block (param $dw i32) (param $dout i32) (param $inp i32) (param $B i32) (param $C i32) (param $OC i32)
    (param $o0 i32) (param $o1 i32) (param $c0 i32) (param $acc i32)
    (local $o i32) (local $c i32) (local $b i32) (local $s f32) (local $p i32)
    (local.set $o (local.get $o0))
    (block $odone
      (loop $orows
        (br_if $odone (i32.ge_u (local.get $o) (local.get $o1)))
        (local.set $c (local.get $c0))
        (block $cdone
          (loop $ccols
            (br_if $cdone (i32.ge_u (local.get $c) (local.get $C)))
            (local.set $s (f32.const 0))
            (local.set $b (i32.const 0))
            (block $bdone
              (loop $samples
                (br_if $bdone (i32.ge_u (local.get $b) (local.get $B)))
                (local.set $s (f32.add (local.get $s) (f32.mul
                  (f32.load (i32.add (local.get $dout) (i32.shl (i32.add (i32.mul (local.get $b) (local.get $OC)) (local.get $o)) (i32.const 2))))
                  (f32.load (i32.add (local.get $inp) (i32.shl (i32.add (i32.mul (local.get $b) (local.get $C)) (local.get $c)) (i32.const 2)))))))
                (local.set $b (i32.add (local.get $b) (i32.const 1)))
                (br $samples)))
            (local.set $p (i32.add (local.get $dw) (i32.shl (i32.add (i32.mul (local.get $o) (local.get $C)) (local.get $c)) (i32.const 2))))
            (f32.store (local.get $p) (f32.add (select (f32.load (local.get $p)) (f32.const 0) (local.get $acc)) (local.get $s)))
            (local.set $c (i32.add (local.get $c) (i32.const 1)))
            (br $ccols)))
        (local.set $o (i32.add (local.get $o) (i32.const 1)))
        (br $orows))))

  ;; dinp[b, c] = Σ_o dout[b, o]·weight[o, c], summed in f32 from 0 in o order.
  ;; dinp (B, C), dout (B, OC), weight (OC, C)
  ;; Tile: 4 samples × 8 inputs, 8 accumulators over o; edges run the same sequence.
  (func (export "matmul_backward_input")
    (param $dinp i32) (param $dout i32) (param $w i32)
    (param $B i32) (param $C i32) (param $OC i32)
    (local $rs i32) (local $ob i32) (local $b i32) (local $c i32) (local $o i32)
    (local $d i32) (local $wp i32) (local $p i32)
    (local $t0 v128) (local $t1 v128) (local $g v128)
    (local $a00 v128) (local $a01 v128) (local $a10 v128) (local $a11 v128)
    (local $a20 v128) (local $a21 v128) (local $a30 v128) (local $a31 v128)
    (local.set $rs (i32.shl (local.get $C) (i32.const 2)))
    (local.set $ob (i32.shl (local.get $OC) (i32.const 2)))
    (block $bdone
      (loop $brows
        (br_if $bdone (i32.gt_u (i32.add (local.get $b) (i32.const 4)) (local.get $B)))
        (local.set $c (i32.const 0))
        (block $cdone
          (loop $ccols
            (br_if $cdone (i32.gt_u (i32.add (local.get $c) (i32.const 8)) (local.get $C)))
            (local.set $a00 (v128.const i32x4 0 0 0 0)) (local.set $a01 (v128.const i32x4 0 0 0 0))
            (local.set $a10 (v128.const i32x4 0 0 0 0)) (local.set $a11 (v128.const i32x4 0 0 0 0))
            (local.set $a20 (v128.const i32x4 0 0 0 0)) (local.set $a21 (v128.const i32x4 0 0 0 0))
            (local.set $a30 (v128.const i32x4 0 0 0 0)) (local.set $a31 (v128.const i32x4 0 0 0 0))
            (local.set $wp (i32.add (local.get $w) (i32.shl (local.get $c) (i32.const 2))))
            (local.set $d (i32.add (local.get $dout) (i32.mul (local.get $b) (local.get $ob))))
            (local.set $o (i32.const 0))
            (block $kdone
              (loop $k
                (br_if $kdone (i32.ge_u (local.get $o) (local.get $OC)))
                (local.set $t0 (v128.load (local.get $wp)))
                (local.set $t1 (v128.load offset=16 (local.get $wp)))
                (local.set $g (v128.load32_splat (local.get $d)))
                (local.set $a00 (f32x4.add (local.get $a00) (f32x4.mul (local.get $g) (local.get $t0))))
                (local.set $a01 (f32x4.add (local.get $a01) (f32x4.mul (local.get $g) (local.get $t1))))
                (local.set $g (v128.load32_splat (i32.add (local.get $d) (local.get $ob))))
                (local.set $a10 (f32x4.add (local.get $a10) (f32x4.mul (local.get $g) (local.get $t0))))
                (local.set $a11 (f32x4.add (local.get $a11) (f32x4.mul (local.get $g) (local.get $t1))))
                (local.set $g (v128.load32_splat (i32.add (local.get $d) (i32.shl (local.get $ob) (i32.const 1)))))
                (local.set $a20 (f32x4.add (local.get $a20) (f32x4.mul (local.get $g) (local.get $t0))))
                (local.set $a21 (f32x4.add (local.get $a21) (f32x4.mul (local.get $g) (local.get $t1))))
                (local.set $g (v128.load32_splat (i32.add (local.get $d) (i32.mul (local.get $ob) (i32.const 3)))))
                (local.set $a30 (f32x4.add (local.get $a30) (f32x4.mul (local.get $g) (local.get $t0))))
                (local.set $a31 (f32x4.add (local.get $a31) (f32x4.mul (local.get $g) (local.get $t1))))
                (local.set $wp (i32.add (local.get $wp) (local.get $rs)))
                (local.set $d (i32.add (local.get $d) (i32.const 4)))
                (local.set $o (i32.add (local.get $o) (i32.const 1)))
                (br $k)))
            (local.set $p (i32.add (local.get $dinp)
              (i32.shl (i32.add (i32.mul (local.get $b) (local.get $C)) (local.get $c)) (i32.const 2))))
            (v128.store (local.get $p) (local.get $a00))
            (v128.store offset=16 (local.get $p) (local.get $a01))
            (local.set $p (i32.add (local.get $p) (local.get $rs)))
            (v128.store (local.get $p) (local.get $a10))
            (v128.store offset=16 (local.get $p) (local.get $a11))
            (local.set $p (i32.add (local.get $p) (local.get $rs)))
            (v128.store (local.get $p) (local.get $a20))
            (v128.store offset=16 (local.get $p) (local.get $a21))
            (local.set $p (i32.add (local.get $p) (local.get $rs)))
            (v128.store (local.get $p) (local.get $a30))
            (v128.store offset=16 (local.get $p) (local.get $a31))
            (local.set $c (i32.add (local.get $c) (i32.const 8)))
            (br $ccols)))
        (call $dinp_block (local.get $dinp) (local.get $dout) (local.get $w) (local.get $C) (local.get $OC)
          (local.get $b) (i32.add (local.get $b) (i32.const 4)) (local.get $c))
        (local.set $b (i32.add (local.get $b) (i32.const 4)))
        (br $brows)))
    (call $dinp_block (local.get $dinp) (local.get $dout) (local.get $w) (local.get $C) (local.get $OC)
      (local.get $b) (local.get $B) (i32.const 0)))

  ;; dinp[b, c] for b in [b0, b1), c in [c0, C), one element at a time (f32, from 0, o order).
  (func $dinp_block (param $dinp i32) (param $dout i32) (param $w i32) (param $C i32) (param $OC i32)
    (param $b0 i32) (param $b1 i32) (param $c0 i32)
    (local $b i32) (local $c i32) (local $o i32) (local $s f32)
    (local.set $b (local.get $b0))
    (block $bdone
      (loop $brows
        (br_if $bdone (i32.ge_u (local.get $b) (local.get $b1)))
        (local.set $c (local.get $c0))
        (block $cdone
          (loop $ccols
            (br_if $cdone (i32.ge_u (local.get $c) (local.get $C)))
            (local.set $s (f32.const 0))
            (local.set $o (i32.const 0))
            (block $odone
              (loop $outs
                (br_if $odone (i32.ge_u (local.get $o) (local.get $OC)))
                (local.set $s (f32.add (local.get $s) (f32.mul
                  (f32.load (i32.add (local.get $dout) (i32.shl (i32.add (i32.mul (local.get $b) (local.get $OC)) (local.get $o)) (i32.const 2))))
                  (f32.load (i32.add (local.get $w) (i32.shl (i32.add (i32.mul (local.get $o) (local.get $C)) (local.get $c)) (i32.const 2)))))))
                (local.set $o (i32.add (local.get $o) (i32.const 1)))
                (br $outs)))
            (f32.store (i32.add (local.get $dinp) (i32.shl (i32.add (i32.mul (local.get $b) (local.get $C)) (local.get $c)) (i32.const 2)))
              (local.get $s))
            (local.set $c (i32.add (local.get $c) (i32.const 1)))
            (br $ccols)))
        (local.set $b (i32.add (local.get $b) (i32.const 1)))
        (br $brows))))

  ;; out[i] = inp[i] > 0 ? inp[i] : 0 (NaN and −0 give +0, as the JS kernel); N values.
  (func (export "relu_forward") (param $out i32) (param $inp i32) (param $N i32)
    (local $k i32) (local $end i32) (local $v v128) (local $x f32)
    (local.set $end (i32.shl (i32.and (local.get $N) (i32.const -4)) (i32.const 2)))
    (block $done
      (loop $l
        (br_if $done (i32.ge_u (local.get $k) (local.get $end)))
        (local.set $v (v128.load (i32.add (local.get $inp) (local.get $k))))
        (v128.store (i32.add (local.get $out) (local.get $k))
          (v128.and (local.get $v) (f32x4.gt (local.get $v) (v128.const i32x4 0 0 0 0))))
        (local.set $k (i32.add (local.get $k) (i32.const 16)))
        (br $l)))
    (local.set $end (i32.shl (local.get $N) (i32.const 2)))
    (block $done2
      (loop $t
        (br_if $done2 (i32.ge_u (local.get $k) (local.get $end)))
        (local.set $x (f32.load (i32.add (local.get $inp) (local.get $k))))
        (f32.store (i32.add (local.get $out) (local.get $k))
          (select (local.get $x) (f32.const 0) (f32.gt (local.get $x) (f32.const 0))))
        (local.set $k (i32.add (local.get $k) (i32.const 4)))
        (br $t))))

;; out[i] += inp[i] in f32; N values. Bit-equal to JS's Float32Array `a[i] += b[i]`:
  ;; the double sum of two floats rounds to the same float as their f32 sum.
  (func (export "add_into") (param $out i32) (param $inp i32) (param $N i32)
    (local $k i32) (local $end i32)
    (local.set $end (i32.shl (i32.and (local.get $N) (i32.const -4)) (i32.const 2)))
    (block $done
      (loop $l
        (br_if $done (i32.ge_u (local.get $k) (local.get $end)))
        (v128.store (i32.add (local.get $out) (local.get $k))
          (f32x4.add (v128.load (i32.add (local.get $out) (local.get $k))) (v128.load (i32.add (local.get $inp) (local.get $k)))))
        (local.set $k (i32.add (local.get $k) (i32.const 16)))
        (br $l)))
    (local.set $end (i32.shl (local.get $N) (i32.const 2)))
    (block $done2
      (loop $t
        (br_if $done2 (i32.ge_u (local.get $k) (local.get $end)))
        (f32.store (i32.add (local.get $out) (local.get $k))
          (f32.add (f32.load (i32.add (local.get $out) (local.get $k))) (f32.load (i32.add (local.get $inp) (local.get $k)))))
        (local.set $k (i32.add (local.get $k) (i32.const 4)))
        (br $t))))

  ;; buf[i] = buf[i] rounded to bfloat16 (nearest, ties to even), kept as an f32 whose
  ;; low 16 bits are zero; N values. Integer operations on the bit patterns only, the
  ;; same as roundBf16 in shared/kernels/bf16.ts: ±Inf stay, NaN stays NaN (quiet).
  (func (export "round_bf16") (param $buf i32) (param $N i32)
    (local $k i32) (local $end i32) (local $x v128) (local $special v128) (local $nan v128)
    (local.set $end (i32.shl (i32.and (local.get $N) (i32.const -4)) (i32.const 2)))
    (block $done
      (loop $l
        (br_if $done (i32.ge_u (local.get $k) (local.get $end)))
        (local.set $x (v128.load (i32.add (local.get $buf) (local.get $k))))
        (local.set $special (i32x4.eq (v128.and (local.get $x) (v128.const i32x4 0x7f800000 0x7f800000 0x7f800000 0x7f800000))
                                      (v128.const i32x4 0x7f800000 0x7f800000 0x7f800000 0x7f800000)))
        (local.set $nan (v128.and (local.get $special)
          (v128.not (i32x4.eq (v128.and (local.get $x) (v128.const i32x4 0x007fffff 0x007fffff 0x007fffff 0x007fffff)) (v128.const i32x4 0 0 0 0)))))
        (v128.store (i32.add (local.get $buf) (local.get $k))
          (v128.and
            (v128.bitselect
              (v128.or (local.get $x) (v128.and (local.get $nan) (v128.const i32x4 0x00400000 0x00400000 0x00400000 0x00400000)))
              (i32x4.add (i32x4.add (local.get $x) (v128.const i32x4 0x7fff 0x7fff 0x7fff 0x7fff))
                         (v128.and (i32x4.shr_u (local.get $x) (i32.const 16)) (v128.const i32x4 1 1 1 1)))
              (local.get $special))
            (v128.const i32x4 0xffff0000 0xffff0000 0xffff0000 0xffff0000)))
        (local.set $k (i32.add (local.get $k) (i32.const 16)))
        (br $l)))
    (local.set $end (i32.shl (local.get $N) (i32.const 2)))
    (block $done2
      (loop $t
        (br_if $done2 (i32.ge_u (local.get $k) (local.get $end)))
        (i32.store (i32.add (local.get $buf) (local.get $k))
          (call $round_bf16_bits (i32.load (i32.add (local.get $buf) (local.get $k)))))
        (local.set $k (i32.add (local.get $k) (i32.const 4)))
        (br $t))))

  (func $round_bf16_bits (param $x i32) (result i32)
    (if (result i32) (i32.eq (i32.and (local.get $x) (i32.const 0x7f800000)) (i32.const 0x7f800000))
      (then (i32.and
        (select (i32.or (local.get $x) (i32.const 0x00400000)) (local.get $x) (i32.and (local.get $x) (i32.const 0x007fffff)))
        (i32.const 0xffff0000)))
      (else (i32.and
        (i32.add (i32.add (local.get $x) (i32.const 0x7fff)) (i32.and (i32.shr_u (local.get $x) (i32.const 16)) (i32.const 1)))
        (i32.const 0xffff0000)))))

  ;; dinp[i] = out[i] > 0 ? dout[i] : 0; N values.
  (func (export "relu_backward") (param $dinp i32) (param $dout i32) (param $out i32) (param $N i32)
    (local $k i32) (local $end i32)
    (local.set $end (i32.shl (i32.and (local.get $N) (i32.const -4)) (i32.const 2)))
    (block $done
      (loop $l
        (br_if $done (i32.ge_u (local.get $k) (local.get $end)))
        (v128.store (i32.add (local.get $dinp) (local.get $k))
          (v128.and (v128.load (i32.add (local.get $dout) (local.get $k)))
                    (f32x4.gt (v128.load (i32.add (local.get $out) (local.get $k))) (v128.const i32x4 0 0 0 0))))
        (local.set $k (i32.add (local.get $k) (i32.const 16)))
        (br $l)))
    (local.set $end (i32.shl (local.get $N) (i32.const 2)))
    (block $done2
      (loop $t
        (br_if $done2 (i32.ge_u (local.get $k) (local.get $end)))
        (f32.store (i32.add (local.get $dinp) (local.get $k))
          (select (f32.load (i32.add (local.get $dout) (local.get $k))) (f32.const 0)
            (f32.gt (f32.load (i32.add (local.get $out) (local.get $k))) (f32.const 0))))
        (local.set $k (i32.add (local.get $k) (i32.const 4)))
        (br $t))))

  ;; ---- sigmoid and tanh: a line-for-line port of shared/kernels/transcendental.ts ----
  ;; Same f64 operations in the same order (WebAssembly's f64 is IEEE like JS's
  ;; numbers; floor, abs and the bit tricks are exact), so the same bits as the JS
  ;; kernels: the test compares them bit for bit. Constants are the JS ones, as hex.
  (global $LN2_HI f64 (f64.const 0x1.62e42fee00000p-1))
  (global $LN2_LO f64 (f64.const 0x1.a39ef35793c76p-33))
  (global $INV_LN2 f64 (f64.const 0x1.71547652b82fep0))
  (global $HALF_LN2 f64 (f64.const 0x1.62e42fefa39efp-2))
  (global $E f64 (f64.const 0x1.5bf0a8b145769p1))
  (global $O_THRESHOLD f64 (f64.const 0x1.62e42fefa39efp9))
  (global $U_THRESHOLD f64 (f64.const -0x1.74910d52d3051p9))
  (global $TWO_M28 f64 (f64.const 0x1.0000000000000p-28))
  (global $TWO_M54 f64 (f64.const 0x1.0000000000000p-54))
  (global $TWO_M1000 f64 (f64.const 0x1.0000000000000p-1000))
  (global $P1 f64 (f64.const 0x1.555555555553ep-3))
  (global $P2 f64 (f64.const -0x1.6c16c16bebd93p-9))
  (global $P3 f64 (f64.const 0x1.1566aaf25de2cp-14))
  (global $P4 f64 (f64.const -0x1.bbd41c5d26bf1p-20))
  (global $P5 f64 (f64.const 0x1.6376972bea4d0p-25))
  (global $Q1 f64 (f64.const -0x1.11111111110f4p-5))
  (global $Q2 f64 (f64.const 0x1.a01a019fe5585p-10))
  (global $Q3 f64 (f64.const -0x1.4ce199eaadbb7p-14))
  (global $Q4 f64 (f64.const 0x1.0cfca86e65239p-18))
  (global $Q5 f64 (f64.const -0x1.afdb76e09c32dp-23))

  ;; 2^k for normal k, from bits.
  (func $pow2 (param $k i32) (result f64)
    (f64.reinterpret_i64 (i64.shl (i64.extend_i32_s (i32.add (local.get $k) (i32.const 1023))) (i64.const 52))))

  ;; y·2^k with a single rounding (transcendental.ts scaleByPow2).
  (func $scale (param $y f64) (param $k i32) (result f64)
    (if (i32.gt_s (local.get $k) (i32.const 1023))
      (then (return (f64.mul (f64.mul (local.get $y) (f64.const 2)) (call $pow2 (i32.sub (local.get $k) (i32.const 1)))))))
    (if (i32.lt_s (local.get $k) (i32.const -1021))
      (then (return (f64.mul (f64.mul (local.get $y) (call $pow2 (i32.add (local.get $k) (i32.const 1000)))) (global.get $TWO_M1000)))))
    (f64.mul (local.get $y) (call $pow2 (local.get $k))))

  (func $exp (param $x f64) (result f64)
    (local $k f64) (local $hi f64) (local $lo f64) (local $r f64) (local $t f64) (local $c f64)
    (if (f64.ne (local.get $x) (local.get $x)) (then (return (local.get $x))))
    (if (f64.gt (local.get $x) (global.get $O_THRESHOLD)) (then (return (f64.const inf))))
    (if (f64.lt (local.get $x) (global.get $U_THRESHOLD)) (then (return (f64.const 0))))
    (if (f64.lt (f64.abs (local.get $x)) (global.get $TWO_M28)) (then (return (f64.add (f64.const 1) (local.get $x)))))
    (if (f64.eq (local.get $x) (f64.const 1)) (then (return (global.get $E))))
    (if (f64.gt (f64.abs (local.get $x)) (global.get $HALF_LN2))
      (then (local.set $k (f64.floor (f64.add (f64.mul (local.get $x) (global.get $INV_LN2)) (f64.const 0.5))))))
    (local.set $hi (f64.sub (local.get $x) (f64.mul (local.get $k) (global.get $LN2_HI))))
    (local.set $lo (f64.mul (local.get $k) (global.get $LN2_LO)))
    (local.set $r (f64.sub (local.get $hi) (local.get $lo)))
    (local.set $t (f64.mul (local.get $r) (local.get $r)))
    (local.set $c (f64.sub (local.get $r) (f64.mul (local.get $t)
      (f64.add (global.get $P1) (f64.mul (local.get $t)
        (f64.add (global.get $P2) (f64.mul (local.get $t)
          (f64.add (global.get $P3) (f64.mul (local.get $t)
            (f64.add (global.get $P4) (f64.mul (local.get $t) (global.get $P5))))))))))))
    (if (f64.eq (local.get $k) (f64.const 0))
      (then (return (f64.sub (f64.const 1)
        (f64.sub (f64.div (f64.mul (local.get $r) (local.get $c)) (f64.sub (local.get $c) (f64.const 2))) (local.get $r))))))
    (call $scale
      (f64.sub (f64.const 1)
        (f64.sub (f64.sub (local.get $lo) (f64.div (f64.mul (local.get $r) (local.get $c)) (f64.sub (f64.const 2) (local.get $c))))
                 (local.get $hi)))
      (i32.trunc_f64_s (local.get $k))))

  (func $expm1 (param $x f64) (result f64)
    (local $ax f64) (local $hfx f64) (local $hxs f64) (local $r1 f64) (local $t f64) (local $e f64)
    (if (f64.ne (local.get $x) (local.get $x)) (then (return (local.get $x))))
    (local.set $ax (f64.abs (local.get $x)))
    (if (f64.gt (local.get $ax) (global.get $HALF_LN2)) (then (return (f64.sub (call $exp (local.get $x)) (f64.const 1)))))
    (if (f64.lt (local.get $ax) (global.get $TWO_M54)) (then (return (local.get $x))))
    (local.set $hfx (f64.mul (f64.const 0.5) (local.get $x)))
    (local.set $hxs (f64.mul (local.get $x) (local.get $hfx)))
    (local.set $r1 (f64.add (f64.const 1) (f64.mul (local.get $hxs)
      (f64.add (global.get $Q1) (f64.mul (local.get $hxs)
        (f64.add (global.get $Q2) (f64.mul (local.get $hxs)
          (f64.add (global.get $Q3) (f64.mul (local.get $hxs)
            (f64.add (global.get $Q4) (f64.mul (local.get $hxs) (global.get $Q5))))))))))))
    (local.set $t (f64.sub (f64.const 3) (f64.mul (local.get $r1) (local.get $hfx))))
    (local.set $e (f64.mul (local.get $hxs)
      (f64.div (f64.sub (local.get $r1) (local.get $t)) (f64.sub (f64.const 6) (f64.mul (local.get $x) (local.get $t))))))
    (f64.sub (local.get $x) (f64.sub (f64.mul (local.get $x) (local.get $e)) (local.get $hxs))))

  (func $tanh (param $x f64) (result f64)
    (local $t f64) (local $y f64)
    (if (i32.or (f64.eq (local.get $x) (f64.const 0)) (f64.ne (local.get $x) (local.get $x))) (then (return (local.get $x))))
    (if (f64.gt (f64.abs (local.get $x)) (f64.const 20))
      (then (return (select (f64.const 1) (f64.const -1) (f64.gt (local.get $x) (f64.const 0))))))
    (local.set $t (call $expm1 (f64.mul (f64.const 2) (f64.abs (local.get $x)))))
    (local.set $y (f64.div (local.get $t) (f64.add (local.get $t) (f64.const 2))))
    (select (local.get $y) (f64.neg (local.get $y)) (f64.gt (local.get $x) (f64.const 0))))

  (func $sigmoid (param $x f64) (result f64)
    (local $e f64)
    (if (f64.ge (local.get $x) (f64.const 0))
      (then (return (f64.div (f64.const 1) (f64.add (f64.const 1) (call $exp (f64.neg (local.get $x))))))))
    (local.set $e (call $exp (local.get $x)))
    (f64.div (local.get $e) (f64.add (f64.const 1) (local.get $e))))

  ;; out[i] = sigmoid(inp[i]), N values (computed in f64, rounded to f32 as JS stores do).
  (func (export "sigmoid_forward") (param $out i32) (param $inp i32) (param $N i32)
    (local $k i32) (local $end i32)
    (local.set $end (i32.shl (local.get $N) (i32.const 2)))
    (block $done
      (loop $l
        (br_if $done (i32.ge_u (local.get $k) (local.get $end)))
        (f32.store (i32.add (local.get $out) (local.get $k))
          (f32.demote_f64 (call $sigmoid (f64.promote_f32 (f32.load (i32.add (local.get $inp) (local.get $k)))))))
        (local.set $k (i32.add (local.get $k) (i32.const 4)))
        (br $l))))

  ;; out[i] = tanh(inp[i]), N values.
  (func (export "tanh_forward") (param $out i32) (param $inp i32) (param $N i32)
    (local $k i32) (local $end i32)
    (local.set $end (i32.shl (local.get $N) (i32.const 2)))
    (block $done
      (loop $l
        (br_if $done (i32.ge_u (local.get $k) (local.get $end)))
        (f32.store (i32.add (local.get $out) (local.get $k))
          (f32.demote_f64 (call $tanh (f64.promote_f32 (f32.load (i32.add (local.get $inp) (local.get $k)))))))
        (local.set $k (i32.add (local.get $k) (i32.const 4)))
        (br $l))))

  ;; dinp[i] = dout[i]·y·(1 − y) in f64 (y = out[i]), as activations.ts.
  (func (export "sigmoid_backward") (param $dinp i32) (param $dout i32) (param $out i32) (param $N i32)
    (local $k i32) (local $end i32) (local $y f64)
    (local.set $end (i32.shl (local.get $N) (i32.const 2)))
    (block $done
      (loop $l
        (br_if $done (i32.ge_u (local.get $k) (local.get $end)))
        (local.set $y (f64.promote_f32 (f32.load (i32.add (local.get $out) (local.get $k)))))
        (f32.store (i32.add (local.get $dinp) (local.get $k))
          (f32.demote_f64 (f64.mul (f64.mul (f64.promote_f32 (f32.load (i32.add (local.get $dout) (local.get $k)))) (local.get $y))
                                   (f64.sub (f64.const 1) (local.get $y)))))
        (local.set $k (i32.add (local.get $k) (i32.const 4)))
        (br $l))))

  ;; dinp[i] = dout[i]·(1 − y·y) in f64 (y = out[i]), as activations.ts.
  (func (export "tanh_backward") (param $dinp i32) (param $dout i32) (param $out i32) (param $N i32)
    (local $k i32) (local $end i32) (local $y f64)
    (local.set $end (i32.shl (local.get $N) (i32.const 2)))
    (block $done
      (loop $l
        (br_if $done (i32.ge_u (local.get $k) (local.get $end)))
        (local.set $y (f64.promote_f32 (f32.load (i32.add (local.get $out) (local.get $k)))))
        (f32.store (i32.add (local.get $dinp) (local.get $k))
          (f32.demote_f64 (f64.mul (f64.promote_f32 (f32.load (i32.add (local.get $dout) (local.get $k))))
                                   (f64.sub (f64.const 1) (f64.mul (local.get $y) (local.get $y))))))
        (local.set $k (i32.add (local.get $k) (i32.const 4)))
        (br $l))))


  ;; ---- the optimizer step: a port of shared/optim/sgd.ts (for shared/optim/wasm-sgd.ts) ----
  ;; The JS computes in double from float32 values and stores float32, and so do these,
  ;; operation for operation: f32 lanes promoted to f64x2 (exact), the same f64
  ;; operations in the same order (no fused multiply-add exists in SIMD-128), one
  ;; demotion to f32 wherever the JS stores to a Float32Array or calls Math.fround
  ;; (both round to nearest even, as demote does). lr, mu and wd arrive as f64: the JS
  ;; numbers, not their float32 roundings. The batch mean is an f32x4.div: JS divides
  ;; the float32 sum by the count in double and stores the quotient, and with both
  ;; operands floats (count ≤ 2^24) rounding the double quotient to float32 gives the
  ;; correctly rounded float32 quotient (53 ≥ 2·24 + 2: double rounding is innocuous,
  ;; subnormal results included), which is what f32x4.div returns.

  ;; 1 when all N floats of buf are finite, else 0 (±Inf and NaN have all exponent bits
  ;; set). The trainer's divergence check, on the gradient sum: for count ≥ 1 the mean
  ;; is finite exactly when the sum is. 16 floats per iteration into four accumulators
  ;; (one `or` chain would be the bottleneck), then the rest one at a time.
  (func (export "all_finite") (param $buf i32) (param $N i32) (result i32)
    (local $k i32) (local $end i32) (local $badTail i32)
    (local $bad0 v128) (local $bad1 v128) (local $bad2 v128) (local $bad3 v128) (local $exponent v128)
    (local.set $exponent (i32x4.splat (i32.const 0x7f800000)))
    (local.set $end (i32.shl (i32.and (local.get $N) (i32.const -16)) (i32.const 2)))
    (block $done
      (loop $l
        (br_if $done (i32.ge_u (local.get $k) (local.get $end)))
        (local.set $bad0 (v128.or (local.get $bad0) (i32x4.eq (v128.and (v128.load (i32.add (local.get $buf) (local.get $k))) (local.get $exponent)) (local.get $exponent))))
        (local.set $bad1 (v128.or (local.get $bad1) (i32x4.eq (v128.and (v128.load offset=16 (i32.add (local.get $buf) (local.get $k))) (local.get $exponent)) (local.get $exponent))))
        (local.set $bad2 (v128.or (local.get $bad2) (i32x4.eq (v128.and (v128.load offset=32 (i32.add (local.get $buf) (local.get $k))) (local.get $exponent)) (local.get $exponent))))
        (local.set $bad3 (v128.or (local.get $bad3) (i32x4.eq (v128.and (v128.load offset=48 (i32.add (local.get $buf) (local.get $k))) (local.get $exponent)) (local.get $exponent))))
        (local.set $k (i32.add (local.get $k) (i32.const 64)))
        (br $l)))
    (local.set $end (i32.shl (local.get $N) (i32.const 2)))
    (block $done2
      (loop $t
        (br_if $done2 (i32.ge_u (local.get $k) (local.get $end)))
        (local.set $badTail (i32.or (local.get $badTail)
          (i32.eq (i32.and (i32.load (i32.add (local.get $buf) (local.get $k))) (i32.const 0x7f800000)) (i32.const 0x7f800000))))
        (local.set $k (i32.add (local.get $k) (i32.const 4)))
        (br $t)))
    (i32.eqz (i32.or (local.get $badTail)
      (v128.any_true (v128.or (v128.or (local.get $bad0) (local.get $bad1)) (v128.or (local.get $bad2) (local.get $bad3)))))))

  ;; One SGD step on the batch mean g = sum[i] / count (f32), for i < N; with
  ;; d = g + wd·p in f64, and b and p stored as f32 (b then used as stored):
  ;;   rule 0, no momentum                     p ← p − lr·d
  ;;   rule 1, momentum's first step           b ← d;         p ← p − lr·b
  ;;   rule 2, Nesterov momentum's first step  b ← d;         p ← p − lr·(d + mu·b)
  ;;   rule 3, momentum                        b ← mu·b + d;  p ← p − lr·b
  ;;   rule 4, Nesterov momentum               b ← mu·b + d;  p ← p − lr·(d + mu·b)
  ;; params (N), buf (N) the momentum buffer (untouched by rule 0), sum (N) the
  ;; gradient summed over count samples (count 1: sum is the mean already).
  ;; One loop per rule over quads: one f32x4.div, then each half (l: floats 0-1, h:
  ;; 2-3) as an f64x2, p and b loaded and stored by halves (cheaper than shuffling
  ;; them: the loop is bound by vector instructions, not memory). Then the N mod 4
  ;; tail through $sgd_one, the same sequence one float at a time.
  (func (export "sgd_step")
    (param $params i32) (param $buf i32) (param $sum i32) (param $N i32) (param $count f32)
    (param $lr f64) (param $mu f64) (param $wd f64) (param $rule i32)
    (local $k i32) (local $end i32)
    (local $n v128) (local $vlr v128) (local $vmu v128) (local $vwd v128) (local $nesterov v128)
    (local $g v128) (local $pl v128) (local $ph v128) (local $dl v128) (local $dh v128) (local $bl v128) (local $bh v128)
    (local.set $n (f32x4.splat (local.get $count)))
    (local.set $vlr (f64x2.splat (local.get $lr)))
    (local.set $vmu (f64x2.splat (local.get $mu)))
    (local.set $vwd (f64x2.splat (local.get $wd)))
    (local.set $end (i32.shl (i32.and (local.get $N) (i32.const -4)) (i32.const 2)))
    (block $quadsDone
      (block $rule4
        (block $rule3
          (block $rule12
            (block $rule0
              (br_table $rule0 $rule12 $rule12 $rule3 $rule4 $quadsDone (local.get $rule)))
            ;; rule 0: p ← p − lr·d
            (loop $rule0Loop
              (br_if $quadsDone (i32.ge_u (local.get $k) (local.get $end)))
              (local.set $g (f32x4.div (v128.load (i32.add (local.get $sum) (local.get $k))) (local.get $n)))
              (local.set $pl (f64x2.promote_low_f32x4 (v128.load64_zero (i32.add (local.get $params) (local.get $k)))))
              (local.set $ph (f64x2.promote_low_f32x4 (v128.load64_zero offset=8 (i32.add (local.get $params) (local.get $k)))))
              (local.set $dl (f64x2.add (f64x2.promote_low_f32x4 (local.get $g)) (f64x2.mul (local.get $vwd) (local.get $pl))))
              (local.set $dh (f64x2.add (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $g) (local.get $g))) (f64x2.mul (local.get $vwd) (local.get $ph))))
              (v128.store64_lane 0 (i32.add (local.get $params) (local.get $k))
                (f32x4.demote_f64x2_zero (f64x2.sub (local.get $pl) (f64x2.mul (local.get $vlr) (local.get $dl)))))
              (v128.store64_lane offset=8 0 (i32.add (local.get $params) (local.get $k))
                (f32x4.demote_f64x2_zero (f64x2.sub (local.get $ph) (f64x2.mul (local.get $vlr) (local.get $dh)))))
              (local.set $k (i32.add (local.get $k) (i32.const 16)))
              (br $rule0Loop)))
          ;; rules 1 and 2: b ← d; p ← p − lr·b, or p − lr·(d + mu·b) for Nesterov (once per run: a select)
          (local.set $nesterov (i8x16.splat (i32.sub (i32.const 0) (i32.eq (local.get $rule) (i32.const 2)))))
          (loop $rule12Loop
            (br_if $quadsDone (i32.ge_u (local.get $k) (local.get $end)))
            (local.set $g (f32x4.div (v128.load (i32.add (local.get $sum) (local.get $k))) (local.get $n)))
            (local.set $pl (f64x2.promote_low_f32x4 (v128.load64_zero (i32.add (local.get $params) (local.get $k)))))
            (local.set $ph (f64x2.promote_low_f32x4 (v128.load64_zero offset=8 (i32.add (local.get $params) (local.get $k)))))
            (local.set $dl (f64x2.add (f64x2.promote_low_f32x4 (local.get $g)) (f64x2.mul (local.get $vwd) (local.get $pl))))
            (local.set $dh (f64x2.add (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $g) (local.get $g))) (f64x2.mul (local.get $vwd) (local.get $ph))))
            (local.set $bl (f32x4.demote_f64x2_zero (local.get $dl)))
            (local.set $bh (f32x4.demote_f64x2_zero (local.get $dh)))
            (v128.store64_lane 0 (i32.add (local.get $buf) (local.get $k)) (local.get $bl))
            (v128.store64_lane offset=8 0 (i32.add (local.get $buf) (local.get $k)) (local.get $bh))
            (local.set $bl (f64x2.promote_low_f32x4 (local.get $bl)))
            (local.set $bh (f64x2.promote_low_f32x4 (local.get $bh)))
            (v128.store64_lane 0 (i32.add (local.get $params) (local.get $k))
              (f32x4.demote_f64x2_zero (f64x2.sub (local.get $pl) (f64x2.mul (local.get $vlr)
              (v128.bitselect (f64x2.add (local.get $dl) (f64x2.mul (local.get $vmu) (local.get $bl))) (local.get $bl) (local.get $nesterov))))))
            (v128.store64_lane offset=8 0 (i32.add (local.get $params) (local.get $k))
              (f32x4.demote_f64x2_zero (f64x2.sub (local.get $ph) (f64x2.mul (local.get $vlr)
              (v128.bitselect (f64x2.add (local.get $dh) (f64x2.mul (local.get $vmu) (local.get $bh))) (local.get $bh) (local.get $nesterov))))))
            (local.set $k (i32.add (local.get $k) (i32.const 16)))
            (br $rule12Loop)))
        ;; rule 3: b ← mu·b + d; p ← p − lr·b
        (loop $rule3Loop
          (br_if $quadsDone (i32.ge_u (local.get $k) (local.get $end)))
          (local.set $g (f32x4.div (v128.load (i32.add (local.get $sum) (local.get $k))) (local.get $n)))
          (local.set $pl (f64x2.promote_low_f32x4 (v128.load64_zero (i32.add (local.get $params) (local.get $k)))))
          (local.set $ph (f64x2.promote_low_f32x4 (v128.load64_zero offset=8 (i32.add (local.get $params) (local.get $k)))))
          (local.set $dl (f64x2.add (f64x2.promote_low_f32x4 (local.get $g)) (f64x2.mul (local.get $vwd) (local.get $pl))))
          (local.set $dh (f64x2.add (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $g) (local.get $g))) (f64x2.mul (local.get $vwd) (local.get $ph))))
          (local.set $bl (f32x4.demote_f64x2_zero (f64x2.add (f64x2.mul (local.get $vmu)
            (f64x2.promote_low_f32x4 (v128.load64_zero (i32.add (local.get $buf) (local.get $k))))) (local.get $dl))))
          (local.set $bh (f32x4.demote_f64x2_zero (f64x2.add (f64x2.mul (local.get $vmu)
            (f64x2.promote_low_f32x4 (v128.load64_zero offset=8 (i32.add (local.get $buf) (local.get $k))))) (local.get $dh))))
          (v128.store64_lane 0 (i32.add (local.get $buf) (local.get $k)) (local.get $bl))
          (v128.store64_lane offset=8 0 (i32.add (local.get $buf) (local.get $k)) (local.get $bh))
          (local.set $bl (f64x2.promote_low_f32x4 (local.get $bl)))
          (local.set $bh (f64x2.promote_low_f32x4 (local.get $bh)))
          (v128.store64_lane 0 (i32.add (local.get $params) (local.get $k))
            (f32x4.demote_f64x2_zero (f64x2.sub (local.get $pl) (f64x2.mul (local.get $vlr) (local.get $bl)))))
          (v128.store64_lane offset=8 0 (i32.add (local.get $params) (local.get $k))
            (f32x4.demote_f64x2_zero (f64x2.sub (local.get $ph) (f64x2.mul (local.get $vlr) (local.get $bh)))))
          (local.set $k (i32.add (local.get $k) (i32.const 16)))
          (br $rule3Loop)))
      ;; rule 4: b ← mu·b + d; p ← p − lr·(d + mu·b)
      (loop $rule4Loop
        (br_if $quadsDone (i32.ge_u (local.get $k) (local.get $end)))
        (local.set $g (f32x4.div (v128.load (i32.add (local.get $sum) (local.get $k))) (local.get $n)))
        (local.set $pl (f64x2.promote_low_f32x4 (v128.load64_zero (i32.add (local.get $params) (local.get $k)))))
        (local.set $ph (f64x2.promote_low_f32x4 (v128.load64_zero offset=8 (i32.add (local.get $params) (local.get $k)))))
        (local.set $dl (f64x2.add (f64x2.promote_low_f32x4 (local.get $g)) (f64x2.mul (local.get $vwd) (local.get $pl))))
        (local.set $dh (f64x2.add (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $g) (local.get $g))) (f64x2.mul (local.get $vwd) (local.get $ph))))
        (local.set $bl (f32x4.demote_f64x2_zero (f64x2.add (f64x2.mul (local.get $vmu)
          (f64x2.promote_low_f32x4 (v128.load64_zero (i32.add (local.get $buf) (local.get $k))))) (local.get $dl))))
        (local.set $bh (f32x4.demote_f64x2_zero (f64x2.add (f64x2.mul (local.get $vmu)
          (f64x2.promote_low_f32x4 (v128.load64_zero offset=8 (i32.add (local.get $buf) (local.get $k))))) (local.get $dh))))
        (v128.store64_lane 0 (i32.add (local.get $buf) (local.get $k)) (local.get $bl))
        (v128.store64_lane offset=8 0 (i32.add (local.get $buf) (local.get $k)) (local.get $bh))
        (local.set $bl (f64x2.promote_low_f32x4 (local.get $bl)))
        (local.set $bh (f64x2.promote_low_f32x4 (local.get $bh)))
        (v128.store64_lane 0 (i32.add (local.get $params) (local.get $k))
          (f32x4.demote_f64x2_zero (f64x2.sub (local.get $pl) (f64x2.mul (local.get $vlr) (f64x2.add (local.get $dl) (f64x2.mul (local.get $vmu) (local.get $bl)))))))
        (v128.store64_lane offset=8 0 (i32.add (local.get $params) (local.get $k))
          (f32x4.demote_f64x2_zero (f64x2.sub (local.get $ph) (f64x2.mul (local.get $vlr) (f64x2.add (local.get $dh) (f64x2.mul (local.get $vmu) (local.get $bh)))))))
        (local.set $k (i32.add (local.get $k) (i32.const 16)))
        (br $rule4Loop)))
    (local.set $end (i32.shl (local.get $N) (i32.const 2)))
    (block $tailDone
      (loop $tail
        (br_if $tailDone (i32.ge_u (local.get $k) (local.get $end)))
        (call $sgd_one (i32.add (local.get $params) (local.get $k)) (i32.add (local.get $buf) (local.get $k)) (i32.add (local.get $sum) (local.get $k))
          (local.get $count) (local.get $lr) (local.get $mu) (local.get $wd) (local.get $rule))
        (local.set $k (i32.add (local.get $k) (i32.const 4)))
        (br $tail))))

  ;; sgd_step's rules for one float at the byte addresses p, b, s.
  (func $sgd_one (param $pp i32) (param $bp i32) (param $sp i32) (param $count f32)
    (param $lr f64) (param $mu f64) (param $wd f64) (param $rule i32)
    (local $p f64) (local $d f64) (local $b f32) (local $u f64)
    (local.set $p (f64.promote_f32 (f32.load (local.get $pp))))
    (local.set $d (f64.add (f64.promote_f32 (f32.div (f32.load (local.get $sp)) (local.get $count))) (f64.mul (local.get $wd) (local.get $p))))
    (local.set $u (local.get $d))
    (if (i32.ne (local.get $rule) (i32.const 0))
      (then
        (local.set $b (f32.demote_f64 (if (result f64) (i32.le_u (local.get $rule) (i32.const 2))
          (then (local.get $d))
          (else (f64.add (f64.mul (local.get $mu) (f64.promote_f32 (f32.load (local.get $bp)))) (local.get $d))))))
        (f32.store (local.get $bp) (local.get $b))
        (local.set $u (f64.promote_f32 (local.get $b)))
        (if (i32.or (i32.eq (local.get $rule) (i32.const 2)) (i32.eq (local.get $rule) (i32.const 4)))
          (then (local.set $u (f64.add (local.get $d) (f64.mul (local.get $mu) (local.get $u))))))))
    (f32.store (local.get $pp) (f32.demote_f64 (f64.sub (local.get $p) (f64.mul (local.get $lr) (local.get $u))))))

  ;; ---- 2-D convolution (NCHW, weight (OC, C, KH, KW)): im2col + one GEMM per sample ----
  ;; Shapes: P = OH·OW output positions, K = C·KH·KW taps. col (K, P) is the im2col of
  ;; one sample (row k = (c, kh, kw), zeros where a tap falls in the padding). Every GEMM
  ;; below is in broadcast form, out[m, n] (+)= Σ_k A[m, k]·Bm[k, n]: a splat of A times a
  ;; row of Bm, so each output element is its own lane and its value is one f32 sum in k
  ;; order (from 0, or from the value already there), whatever the tile: the 4 × 8
  ;; tiles and the scalar edges give the same bits, and so does any future retiling.

  ;; The first output index whose tap t (kh or kw) lands at or after 0: ceil((pad − t) / S), at least 0.
  (func $first_in (param $pad i32) (param $t i32) (param $S i32) (result i32)
    (if (result i32) (i32.le_s (local.get $pad) (local.get $t))
      (then (i32.const 0))
      (else (i32.div_u (i32.add (i32.sub (local.get $pad) (local.get $t)) (i32.sub (local.get $S) (i32.const 1))) (local.get $S)))))

  ;; One past the last output index whose tap t lands before H: min(O, floor((H − 1 + pad − t) / S) + 1), at least 0.
  (func $end_in (param $H i32) (param $pad i32) (param $t i32) (param $S i32) (param $O i32) (result i32)
    (local $num i32) (local $e i32)
    (local.set $num (i32.sub (i32.add (local.get $H) (local.get $pad)) (i32.add (local.get $t) (i32.const 1))))
    (if (i32.lt_s (local.get $num) (i32.const 0)) (then (return (i32.const 0))))
    (local.set $e (i32.add (i32.div_u (local.get $num) (local.get $S)) (i32.const 1)))
    (select (local.get $e) (local.get $O) (i32.lt_u (local.get $e) (local.get $O))))

  ;; col (K, P) = im2col of one sample x (C, H, W). Rows of taps inside the image are
  ;; copied (a v128 at a time when S = 1), the rest zeroed.
  (func $im2col (param $col i32) (param $x i32) (param $C i32) (param $H i32) (param $W i32)
    (param $KH i32) (param $KW i32) (param $S i32) (param $pad i32) (param $OH i32) (param $OW i32)
    (local $c i32) (local $kh i32) (local $kw i32) (local $oh i32) (local $ow i32)
    (local $ohLo i32) (local $ohHi i32) (local $owLo i32) (local $owHi i32)
    (local $row i32) (local $src i32) (local $dst i32) (local $rb i32) (local $vEnd i32)
    (local.set $rb (i32.shl (local.get $OW) (i32.const 2)))
    (local.set $row (local.get $col))
    (block $cDone (loop $cLoop
      (br_if $cDone (i32.ge_u (local.get $c) (local.get $C)))
      (local.set $kh (i32.const 0))
      (block $khDone (loop $khLoop
        (br_if $khDone (i32.ge_u (local.get $kh) (local.get $KH)))
        (local.set $ohLo (call $first_in (local.get $pad) (local.get $kh) (local.get $S)))
        (local.set $ohHi (call $end_in (local.get $H) (local.get $pad) (local.get $kh) (local.get $S) (local.get $OH)))
        (local.set $kw (i32.const 0))
        (block $kwDone (loop $kwLoop
          (br_if $kwDone (i32.ge_u (local.get $kw) (local.get $KW)))
          (local.set $owLo (call $first_in (local.get $pad) (local.get $kw) (local.get $S)))
          (local.set $owHi (call $end_in (local.get $W) (local.get $pad) (local.get $kw) (local.get $S) (local.get $OW)))
          (if (i32.gt_u (local.get $owLo) (local.get $owHi)) (then (local.set $owLo (local.get $owHi))))
          ;; The whole row (OH·OW) zeroed when any tap of it is padding; the inside part is then overwritten.
          (if (i32.or (i32.or (i32.ne (local.get $ohLo) (i32.const 0)) (i32.ne (local.get $ohHi) (local.get $OH)))
                      (i32.or (i32.ne (local.get $owLo) (i32.const 0)) (i32.ne (local.get $owHi) (local.get $OW))))
            (then (memory.fill (local.get $row) (i32.const 0) (i32.mul (local.get $rb) (local.get $OH)))))
          (local.set $oh (local.get $ohLo))
          (block $ohDone (loop $ohLoop
            (br_if $ohDone (i32.ge_u (local.get $oh) (local.get $ohHi)))
            ;; src = x[c, oh·S − pad + kh, owLo·S − pad + kw], dst = col[k, oh·OW + owLo]
            (local.set $src (i32.add (local.get $x) (i32.shl
              (i32.add (i32.mul (i32.add (i32.mul (local.get $c) (local.get $H))
                                         (i32.sub (i32.add (i32.mul (local.get $oh) (local.get $S)) (local.get $kh)) (local.get $pad)))
                                (local.get $W))
                       (i32.sub (i32.add (i32.mul (local.get $owLo) (local.get $S)) (local.get $kw)) (local.get $pad)))
              (i32.const 2))))
            (local.set $dst (i32.add (local.get $row) (i32.shl (i32.add (i32.mul (local.get $oh) (local.get $OW)) (local.get $owLo)) (i32.const 2))))
            (local.set $ow (local.get $owLo))
            (if (i32.eq (local.get $S) (i32.const 1))
              (then
                (local.set $vEnd (i32.sub (local.get $owHi) (i32.const 4)))
                (block $vDone (loop $vLoop
                  (br_if $vDone (i32.gt_s (local.get $ow) (local.get $vEnd)))
                  (v128.store (local.get $dst) (v128.load (local.get $src)))
                  (local.set $src (i32.add (local.get $src) (i32.const 16)))
                  (local.set $dst (i32.add (local.get $dst) (i32.const 16)))
                  (local.set $ow (i32.add (local.get $ow) (i32.const 4)))
                  (br $vLoop)))))
            (block $sDone (loop $sLoop
              (br_if $sDone (i32.ge_u (local.get $ow) (local.get $owHi)))
              (f32.store (local.get $dst) (f32.load (local.get $src)))
              (local.set $src (i32.add (local.get $src) (i32.shl (local.get $S) (i32.const 2))))
              (local.set $dst (i32.add (local.get $dst) (i32.const 4)))
              (local.set $ow (i32.add (local.get $ow) (i32.const 1)))
              (br $sLoop)))
            (local.set $oh (i32.add (local.get $oh) (i32.const 1)))
            (br $ohLoop)))
          (local.set $row (i32.add (local.get $row) (i32.mul (local.get $rb) (local.get $OH))))
          (local.set $kw (i32.add (local.get $kw) (i32.const 1)))
          (br $kwLoop)))
        (local.set $kh (i32.add (local.get $kh) (i32.const 1)))
        (br $khLoop)))
      (local.set $c (i32.add (local.get $c) (i32.const 1)))
      (br $cLoop))))

  ;; dx (C, H, W) = col2im of dcol (K, P): zeroed, then every tap inside the image adds its
  ;; dcol value, in (c, kh, kw, oh, ow) order (each element sees its taps in that order;
  ;; the S = 1 vector path adds 4 distinct elements at once, the same per-element sequence).
  (func $col2im (param $dx i32) (param $dcol i32) (param $C i32) (param $H i32) (param $W i32)
    (param $KH i32) (param $KW i32) (param $S i32) (param $pad i32) (param $OH i32) (param $OW i32)
    (local $c i32) (local $kh i32) (local $kw i32) (local $oh i32) (local $ow i32)
    (local $ohLo i32) (local $ohHi i32) (local $owLo i32) (local $owHi i32)
    (local $row i32) (local $src i32) (local $dst i32) (local $rb i32) (local $vEnd i32)
    (memory.fill (local.get $dx) (i32.const 0) (i32.shl (i32.mul (local.get $C) (i32.mul (local.get $H) (local.get $W))) (i32.const 2)))
    (local.set $rb (i32.shl (local.get $OW) (i32.const 2)))
    (local.set $row (local.get $dcol))
    (block $cDone (loop $cLoop
      (br_if $cDone (i32.ge_u (local.get $c) (local.get $C)))
      (local.set $kh (i32.const 0))
      (block $khDone (loop $khLoop
        (br_if $khDone (i32.ge_u (local.get $kh) (local.get $KH)))
        (local.set $ohLo (call $first_in (local.get $pad) (local.get $kh) (local.get $S)))
        (local.set $ohHi (call $end_in (local.get $H) (local.get $pad) (local.get $kh) (local.get $S) (local.get $OH)))
        (local.set $kw (i32.const 0))
        (block $kwDone (loop $kwLoop
          (br_if $kwDone (i32.ge_u (local.get $kw) (local.get $KW)))
          (local.set $owLo (call $first_in (local.get $pad) (local.get $kw) (local.get $S)))
          (local.set $owHi (call $end_in (local.get $W) (local.get $pad) (local.get $kw) (local.get $S) (local.get $OW)))
          (local.set $oh (local.get $ohLo))
          (block $ohDone (loop $ohLoop
            (br_if $ohDone (i32.ge_u (local.get $oh) (local.get $ohHi)))
            (local.set $dst (i32.add (local.get $dx) (i32.shl
              (i32.add (i32.mul (i32.add (i32.mul (local.get $c) (local.get $H))
                                         (i32.sub (i32.add (i32.mul (local.get $oh) (local.get $S)) (local.get $kh)) (local.get $pad)))
                                (local.get $W))
                       (i32.sub (i32.add (i32.mul (local.get $owLo) (local.get $S)) (local.get $kw)) (local.get $pad)))
              (i32.const 2))))
            (local.set $src (i32.add (local.get $row) (i32.shl (i32.add (i32.mul (local.get $oh) (local.get $OW)) (local.get $owLo)) (i32.const 2))))
            (local.set $ow (local.get $owLo))
            (if (i32.eq (local.get $S) (i32.const 1))
              (then
                (local.set $vEnd (i32.sub (local.get $owHi) (i32.const 4)))
                (block $vDone (loop $vLoop
                  (br_if $vDone (i32.gt_s (local.get $ow) (local.get $vEnd)))
                  (v128.store (local.get $dst) (f32x4.add (v128.load (local.get $dst)) (v128.load (local.get $src))))
                  (local.set $src (i32.add (local.get $src) (i32.const 16)))
                  (local.set $dst (i32.add (local.get $dst) (i32.const 16)))
                  (local.set $ow (i32.add (local.get $ow) (i32.const 4)))
                  (br $vLoop)))))
            (block $sDone (loop $sLoop
              (br_if $sDone (i32.ge_u (local.get $ow) (local.get $owHi)))
              (f32.store (local.get $dst) (f32.add (f32.load (local.get $dst)) (f32.load (local.get $src))))
              (local.set $dst (i32.add (local.get $dst) (i32.shl (local.get $S) (i32.const 2))))
              (local.set $src (i32.add (local.get $src) (i32.const 4)))
              (local.set $ow (i32.add (local.get $ow) (i32.const 1)))
              (br $sLoop)))
            (local.set $oh (i32.add (local.get $oh) (i32.const 1)))
            (br $ohLoop)))
          (local.set $row (i32.add (local.get $row) (i32.mul (local.get $rb) (local.get $OH))))
          (local.set $kw (i32.add (local.get $kw) (i32.const 1)))
          (br $kwLoop)))
        (local.set $kh (i32.add (local.get $kh) (i32.const 1)))
        (br $khLoop)))
      (local.set $c (i32.add (local.get $c) (i32.const 1)))
      (br $cLoop))))

  ;; One element of $gemm: acc (0, or out[m, n] in mode 2) + Σ_k A[m, k]·Bm[k, n] in k order, + bias[m] in mode 1.
  (func $gemm_one (param $out i32) (param $ldo i32) (param $A i32) (param $ars i32) (param $acs i32)
    (param $Bm i32) (param $ldb i32) (param $bias i32) (param $K i32) (param $mode i32) (param $m i32) (param $n i32)
    (local $s f32) (local $pa i32) (local $pb i32) (local $k i32) (local $po i32)
    (local.set $po (i32.add (local.get $out) (i32.add (i32.mul (local.get $m) (local.get $ldo)) (i32.shl (local.get $n) (i32.const 2)))))
    (if (i32.eq (local.get $mode) (i32.const 2)) (then (local.set $s (f32.load (local.get $po)))))
    (local.set $pa (i32.add (local.get $A) (i32.mul (local.get $m) (local.get $ars))))
    (local.set $pb (i32.add (local.get $Bm) (i32.shl (local.get $n) (i32.const 2))))
    (block $done (loop $l
      (br_if $done (i32.ge_u (local.get $k) (local.get $K)))
      (local.set $s (f32.add (local.get $s) (f32.mul (f32.load (local.get $pa)) (f32.load (local.get $pb)))))
      (local.set $pa (i32.add (local.get $pa) (local.get $acs)))
      (local.set $pb (i32.add (local.get $pb) (local.get $ldb)))
      (local.set $k (i32.add (local.get $k) (i32.const 1)))
      (br $l)))
    (if (i32.eq (local.get $mode) (i32.const 1))
      (then (local.set $s (f32.add (local.get $s) (f32.load (i32.add (local.get $bias) (i32.shl (local.get $m) (i32.const 2))))))))
    (f32.store (local.get $po) (local.get $s)))

  ;; out (M, N) = A (M, K)·Bm (K, N), broadcast form. Byte strides: A[m, k] at A + m·ars + k·acs
  ;; (any layout: A is only ever splatted), Bm rows ldb apart (contiguous in n), out rows ldo apart.
  ;; mode 0: out = Σ; 1: out = Σ + bias[m]; 2: out = ((out + t_0) + t_1) + … (accumulating in place).
  (func $gemm (param $out i32) (param $ldo i32) (param $A i32) (param $ars i32) (param $acs i32)
    (param $Bm i32) (param $ldb i32) (param $bias i32) (param $M i32) (param $N i32) (param $K i32) (param $mode i32)
    (local $m i32) (local $n i32) (local $pa i32) (local $paEnd i32) (local $pb i32) (local $po i32)
    (local $ars2 i32) (local $ars3 i32)
    (local $b0 v128) (local $b1 v128) (local $s v128)
    (local $a00 v128) (local $a01 v128) (local $a10 v128) (local $a11 v128)
    (local $a20 v128) (local $a21 v128) (local $a30 v128) (local $a31 v128)
    (local.set $ars2 (i32.shl (local.get $ars) (i32.const 1)))
    (local.set $ars3 (i32.add (local.get $ars2) (local.get $ars)))
    (block $mDone (loop $mLoop
      (br_if $mDone (i32.gt_u (i32.add (local.get $m) (i32.const 4)) (local.get $M)))
      (local.set $n (i32.const 0))
      (block $nDone (loop $nLoop
        (br_if $nDone (i32.gt_u (i32.add (local.get $n) (i32.const 8)) (local.get $N)))
        (local.set $po (i32.add (local.get $out) (i32.add (i32.mul (local.get $m) (local.get $ldo)) (i32.shl (local.get $n) (i32.const 2)))))
        (if (i32.eq (local.get $mode) (i32.const 2))
          (then
            (local.set $a00 (v128.load (local.get $po)))
            (local.set $a01 (v128.load offset=16 (local.get $po)))
            (local.set $a10 (v128.load (i32.add (local.get $po) (local.get $ldo))))
            (local.set $a11 (v128.load offset=16 (i32.add (local.get $po) (local.get $ldo))))
            (local.set $a20 (v128.load (i32.add (local.get $po) (i32.shl (local.get $ldo) (i32.const 1)))))
            (local.set $a21 (v128.load offset=16 (i32.add (local.get $po) (i32.shl (local.get $ldo) (i32.const 1)))))
            (local.set $a30 (v128.load (i32.add (local.get $po) (i32.mul (local.get $ldo) (i32.const 3)))))
            (local.set $a31 (v128.load offset=16 (i32.add (local.get $po) (i32.mul (local.get $ldo) (i32.const 3))))))
          (else
            (local.set $a00 (v128.const i32x4 0 0 0 0)) (local.set $a01 (v128.const i32x4 0 0 0 0))
            (local.set $a10 (v128.const i32x4 0 0 0 0)) (local.set $a11 (v128.const i32x4 0 0 0 0))
            (local.set $a20 (v128.const i32x4 0 0 0 0)) (local.set $a21 (v128.const i32x4 0 0 0 0))
            (local.set $a30 (v128.const i32x4 0 0 0 0)) (local.set $a31 (v128.const i32x4 0 0 0 0))))
        (local.set $pa (i32.add (local.get $A) (i32.mul (local.get $m) (local.get $ars))))
        (local.set $pb (i32.add (local.get $Bm) (i32.shl (local.get $n) (i32.const 2))))
        ;; pa runs to paEnd: no separate k counter. A's 4 rows adjacent (ars = 4, a transposed
        ;; or packed operand): the splats take constant offsets instead of address arithmetic.
        (local.set $paEnd (i32.add (local.get $pa) (i32.mul (local.get $K) (local.get $acs))))
        (if (i32.eq (local.get $ars) (i32.const 4))
          (then
        (block $kDone4 (loop $kLoop4
          (br_if $kDone4 (i32.eq (local.get $pa) (local.get $paEnd)))
          (local.set $b0 (v128.load (local.get $pb)))
          (local.set $b1 (v128.load offset=16 (local.get $pb)))
          (local.set $s (v128.load32_splat (local.get $pa)))
          (local.set $a00 (f32x4.add (local.get $a00) (f32x4.mul (local.get $s) (local.get $b0))))
          (local.set $a01 (f32x4.add (local.get $a01) (f32x4.mul (local.get $s) (local.get $b1))))
          (local.set $s (v128.load32_splat offset=4 (local.get $pa)))
          (local.set $a10 (f32x4.add (local.get $a10) (f32x4.mul (local.get $s) (local.get $b0))))
          (local.set $a11 (f32x4.add (local.get $a11) (f32x4.mul (local.get $s) (local.get $b1))))
          (local.set $s (v128.load32_splat offset=8 (local.get $pa)))
          (local.set $a20 (f32x4.add (local.get $a20) (f32x4.mul (local.get $s) (local.get $b0))))
          (local.set $a21 (f32x4.add (local.get $a21) (f32x4.mul (local.get $s) (local.get $b1))))
          (local.set $s (v128.load32_splat offset=12 (local.get $pa)))
          (local.set $a30 (f32x4.add (local.get $a30) (f32x4.mul (local.get $s) (local.get $b0))))
          (local.set $a31 (f32x4.add (local.get $a31) (f32x4.mul (local.get $s) (local.get $b1))))
          (local.set $pa (i32.add (local.get $pa) (local.get $acs)))
          (local.set $pb (i32.add (local.get $pb) (local.get $ldb)))
          (br $kLoop4))))
          (else
        (block $kDone (loop $kLoop
          (br_if $kDone (i32.eq (local.get $pa) (local.get $paEnd)))
          (local.set $b0 (v128.load (local.get $pb)))
          (local.set $b1 (v128.load offset=16 (local.get $pb)))
          (local.set $s (v128.load32_splat (local.get $pa)))
          (local.set $a00 (f32x4.add (local.get $a00) (f32x4.mul (local.get $s) (local.get $b0))))
          (local.set $a01 (f32x4.add (local.get $a01) (f32x4.mul (local.get $s) (local.get $b1))))
          (local.set $s (v128.load32_splat (i32.add (local.get $pa) (local.get $ars))))
          (local.set $a10 (f32x4.add (local.get $a10) (f32x4.mul (local.get $s) (local.get $b0))))
          (local.set $a11 (f32x4.add (local.get $a11) (f32x4.mul (local.get $s) (local.get $b1))))
          (local.set $s (v128.load32_splat (i32.add (local.get $pa) (local.get $ars2))))
          (local.set $a20 (f32x4.add (local.get $a20) (f32x4.mul (local.get $s) (local.get $b0))))
          (local.set $a21 (f32x4.add (local.get $a21) (f32x4.mul (local.get $s) (local.get $b1))))
          (local.set $s (v128.load32_splat (i32.add (local.get $pa) (local.get $ars3))))
          (local.set $a30 (f32x4.add (local.get $a30) (f32x4.mul (local.get $s) (local.get $b0))))
          (local.set $a31 (f32x4.add (local.get $a31) (f32x4.mul (local.get $s) (local.get $b1))))
          (local.set $pa (i32.add (local.get $pa) (local.get $acs)))
          (local.set $pb (i32.add (local.get $pb) (local.get $ldb)))
          (br $kLoop)))))
        (if (i32.eq (local.get $mode) (i32.const 1))
          (then
            (local.set $s (v128.load32_splat (i32.add (local.get $bias) (i32.shl (local.get $m) (i32.const 2)))))
            (local.set $a00 (f32x4.add (local.get $a00) (local.get $s)))
            (local.set $a01 (f32x4.add (local.get $a01) (local.get $s)))
            (local.set $s (v128.load32_splat offset=4 (i32.add (local.get $bias) (i32.shl (local.get $m) (i32.const 2)))))
            (local.set $a10 (f32x4.add (local.get $a10) (local.get $s)))
            (local.set $a11 (f32x4.add (local.get $a11) (local.get $s)))
            (local.set $s (v128.load32_splat offset=8 (i32.add (local.get $bias) (i32.shl (local.get $m) (i32.const 2)))))
            (local.set $a20 (f32x4.add (local.get $a20) (local.get $s)))
            (local.set $a21 (f32x4.add (local.get $a21) (local.get $s)))
            (local.set $s (v128.load32_splat offset=12 (i32.add (local.get $bias) (i32.shl (local.get $m) (i32.const 2)))))
            (local.set $a30 (f32x4.add (local.get $a30) (local.get $s)))
            (local.set $a31 (f32x4.add (local.get $a31) (local.get $s)))))
        (v128.store (local.get $po) (local.get $a00))
        (v128.store offset=16 (local.get $po) (local.get $a01))
        (local.set $po (i32.add (local.get $po) (local.get $ldo)))
        (v128.store (local.get $po) (local.get $a10))
        (v128.store offset=16 (local.get $po) (local.get $a11))
        (local.set $po (i32.add (local.get $po) (local.get $ldo)))
        (v128.store (local.get $po) (local.get $a20))
        (v128.store offset=16 (local.get $po) (local.get $a21))
        (local.set $po (i32.add (local.get $po) (local.get $ldo)))
        (v128.store (local.get $po) (local.get $a30))
        (v128.store offset=16 (local.get $po) (local.get $a31))
        (local.set $n (i32.add (local.get $n) (i32.const 8)))
        (br $nLoop)))
      ;; columns n ≥ N − N mod 8 of these 4 rows, one element at a time
      (call $gemm_block (local.get $out) (local.get $ldo) (local.get $A) (local.get $ars) (local.get $acs) (local.get $Bm) (local.get $ldb)
        (local.get $bias) (local.get $K) (local.get $mode) (local.get $m) (i32.add (local.get $m) (i32.const 4)) (local.get $n) (local.get $N))
      (local.set $m (i32.add (local.get $m) (i32.const 4)))
      (br $mLoop)))
    ;; rows m ≥ M − M mod 4, one element at a time
    (call $gemm_block (local.get $out) (local.get $ldo) (local.get $A) (local.get $ars) (local.get $acs) (local.get $Bm) (local.get $ldb)
      (local.get $bias) (local.get $K) (local.get $mode) (local.get $m) (local.get $M) (i32.const 0) (local.get $N)))

  ;; $gemm_one over rows [m0, m1) × columns [n0, n1).
  (func $gemm_block (param $out i32) (param $ldo i32) (param $A i32) (param $ars i32) (param $acs i32)
    (param $Bm i32) (param $ldb i32) (param $bias i32) (param $K i32) (param $mode i32)
    (param $m0 i32) (param $m1 i32) (param $n0 i32) (param $n1 i32)
    (local $m i32) (local $n i32)
    (local.set $m (local.get $m0))
    (block $mDone (loop $mLoop
      (br_if $mDone (i32.ge_u (local.get $m) (local.get $m1)))
      (local.set $n (local.get $n0))
      (block $nDone (loop $nLoop
        (br_if $nDone (i32.ge_u (local.get $n) (local.get $n1)))
        (call $gemm_one (local.get $out) (local.get $ldo) (local.get $A) (local.get $ars) (local.get $acs) (local.get $Bm) (local.get $ldb)
          (local.get $bias) (local.get $K) (local.get $mode) (local.get $m) (local.get $n))
        (local.set $n (i32.add (local.get $n) (i32.const 1)))
        (br $nLoop)))
      (local.set $m (i32.add (local.get $m) (i32.const 1)))
      (br $mLoop))))

  ;; out (B, OC, OH, OW) = conv(inp (B, C, H, W), weight (OC, C, KH, KW)) + bias (OC).
  ;; Per sample: col = im2col(x_b) in scratch (K·P floats), then out_b (OC, P) = weight (OC, K)·col + bias.
  (func (export "conv2d_forward")
    (param $out i32) (param $inp i32) (param $w i32) (param $bias i32)
    (param $B i32) (param $C i32) (param $H i32) (param $W i32) (param $OC i32) (param $KH i32) (param $KW i32)
    (param $S i32) (param $pad i32) (param $scratch i32) (param $allowSparse i32)
    (local $OH i32) (local $OW i32) (local $P i32) (local $K i32) (local $b i32)
    (local.set $OH (i32.add (i32.div_u (i32.sub (i32.add (local.get $H) (i32.shl (local.get $pad) (i32.const 1))) (local.get $KH)) (local.get $S)) (i32.const 1)))
    (local.set $OW (i32.add (i32.div_u (i32.sub (i32.add (local.get $W) (i32.shl (local.get $pad) (i32.const 1))) (local.get $KW)) (local.get $S)) (i32.const 1)))
    (local.set $P (i32.mul (local.get $OH) (local.get $OW)))
    (local.set $K (i32.mul (local.get $C) (i32.mul (local.get $KH) (local.get $KW))))
    (block $done (loop $samples
      (br_if $done (i32.ge_u (local.get $b) (local.get $B)))
      (call $im2col (local.get $scratch)
        (i32.add (local.get $inp) (i32.shl (i32.mul (local.get $b) (i32.mul (local.get $C) (i32.mul (local.get $H) (local.get $W)))) (i32.const 2)))
        (local.get $C) (local.get $H) (local.get $W) (local.get $KH) (local.get $KW) (local.get $S) (local.get $pad) (local.get $OH) (local.get $OW))
      (call $gemm
        (i32.add (local.get $out) (i32.shl (i32.mul (local.get $b) (i32.mul (local.get $OC) (local.get $P))) (i32.const 2)))
        (i32.shl (local.get $P) (i32.const 2))
        (local.get $w) (i32.shl (local.get $K) (i32.const 2)) (i32.const 4)
        (local.get $scratch) (i32.shl (local.get $P) (i32.const 2))
        (local.get $bias) (local.get $OC) (local.get $P) (local.get $K) (i32.const 1))
      (local.set $b (i32.add (local.get $b) (i32.const 1)))
      (br $samples))))

  ;; dweight (OC, C, KH, KW) = (acc ? dweight : 0) + s, dbias (OC) = (acc ? dbias : 0) + t, where
  ;; s[o, k] = Σ_{b, p} dout[b, o, p]·col_b[k, p], one f32 sum in (b, p) order from 0, and
  ;; t[o] = Σ dout[b, o, p] in 4 lanes over (b, whole quads of p), their hsum, then the
  ;; leftover p in (b, p) order. Scratch: col (K·P), doutᵀ (P·OC), sᵀ (K·OC). allowDirect 1:
  ;; K ≥ 32 (and OC ≥ 2) sums over dout's nonzeros alone ($dw_sparse_sample), else where
  ;; $dw_direct_sample applies it replaces im2col + $gemm; for finite operands all give the same bits.
  (func (export "conv2d_backward_weight")
    (param $dw i32) (param $dbias i32) (param $dout i32) (param $inp i32)
    (param $B i32) (param $C i32) (param $H i32) (param $W i32) (param $OC i32) (param $KH i32) (param $KW i32)
    (param $S i32) (param $pad i32) (param $scratch i32) (param $acc i32) (param $allowDirect i32)
    (local $OH i32) (local $OW i32) (local $P i32) (local $K i32) (local $b i32) (local $o i32) (local $p i32)
    (local $dT i32) (local $sT i32) (local $src i32) (local $q i32) (local $qEnd i32) (local $lanes v128) (local $t f32) (local $k i32) (local $pw i32)
    (local.set $OH (i32.add (i32.div_u (i32.sub (i32.add (local.get $H) (i32.shl (local.get $pad) (i32.const 1))) (local.get $KH)) (local.get $S)) (i32.const 1)))
    (local.set $OW (i32.add (i32.div_u (i32.sub (i32.add (local.get $W) (i32.shl (local.get $pad) (i32.const 1))) (local.get $KW)) (local.get $S)) (i32.const 1)))
    (local.set $P (i32.mul (local.get $OH) (local.get $OW)))
    (local.set $K (i32.mul (local.get $C) (i32.mul (local.get $KH) (local.get $KW))))
    (local.set $dT (i32.add (local.get $scratch) (i32.shl (i32.mul (local.get $K) (local.get $P)) (i32.const 2))))
    (local.set $sT (i32.add (local.get $dT) (i32.shl (i32.mul (local.get $P) (local.get $OC)) (i32.const 2))))
    ;; dbias
    (local.set $qEnd (i32.shl (i32.and (local.get $P) (i32.const -4)) (i32.const 2)))
    (block $oDone (loop $oLoop
      (br_if $oDone (i32.ge_u (local.get $o) (local.get $OC)))
      (local.set $lanes (v128.const i32x4 0 0 0 0))
      (local.set $b (i32.const 0))
      (block $bDone (loop $bLoop
        (br_if $bDone (i32.ge_u (local.get $b) (local.get $B)))
        (local.set $src (i32.add (local.get $dout) (i32.shl (i32.mul (i32.add (i32.mul (local.get $b) (local.get $OC)) (local.get $o)) (local.get $P)) (i32.const 2))))
        (local.set $q (i32.const 0))
        (block $qDone (loop $qLoop
          (br_if $qDone (i32.ge_u (local.get $q) (local.get $qEnd)))
          (local.set $lanes (f32x4.add (local.get $lanes) (v128.load (i32.add (local.get $src) (local.get $q)))))
          (local.set $q (i32.add (local.get $q) (i32.const 16)))
          (br $qLoop)))
        (local.set $b (i32.add (local.get $b) (i32.const 1)))
        (br $bLoop)))
      (local.set $t (call $hsum (local.get $lanes)))
      (local.set $b (i32.const 0))
      (block $tbDone (loop $tbLoop
        (br_if $tbDone (i32.ge_u (local.get $b) (local.get $B)))
        (local.set $src (i32.add (local.get $dout) (i32.shl (i32.mul (i32.add (i32.mul (local.get $b) (local.get $OC)) (local.get $o)) (local.get $P)) (i32.const 2))))
        (local.set $q (local.get $qEnd))
        (block $tDone (loop $tLoop
          (br_if $tDone (i32.ge_u (local.get $q) (i32.shl (local.get $P) (i32.const 2))))
          (local.set $t (f32.add (local.get $t) (f32.load (i32.add (local.get $src) (local.get $q)))))
          (local.set $q (i32.add (local.get $q) (i32.const 4)))
          (br $tLoop)))
        (local.set $b (i32.add (local.get $b) (i32.const 1)))
        (br $tbLoop)))
      (local.set $pw (i32.add (local.get $dbias) (i32.shl (local.get $o) (i32.const 2))))
      (f32.store (local.get $pw) (f32.add (select (f32.load (local.get $pw)) (f32.const 0) (local.get $acc)) (local.get $t)))
      (local.set $o (i32.add (local.get $o) (i32.const 1)))
      (br $oLoop)))
    (if (i32.and (local.get $allowDirect)
          (i32.and (i32.ge_u (local.get $K) (i32.const 32)) (i32.ge_u (local.get $OC) (i32.const 2))))
      (then
        ;; sW (OC, K) from dout's nonzeros (the dense sums for finite values, see $dw_sparse_sample);
        ;; its list of P offsets and P values fits where doutᵀ (P·OC) would go.
        (memory.fill (local.get $sT) (i32.const 0) (i32.shl (i32.mul (local.get $K) (local.get $OC)) (i32.const 2)))
        (local.set $b (i32.const 0))
        (block $sDone (loop $sLoop
          (br_if $sDone (i32.ge_u (local.get $b) (local.get $B)))
          (call $dw_sparse_sample (local.get $sT) (local.get $dT) (local.get $scratch)
            (i32.add (local.get $dout) (i32.shl (i32.mul (local.get $b) (i32.mul (local.get $OC) (local.get $P))) (i32.const 2)))
            (i32.add (local.get $inp) (i32.shl (i32.mul (local.get $b) (i32.mul (local.get $C) (i32.mul (local.get $H) (local.get $W)))) (i32.const 2)))
            (local.get $C) (local.get $H) (local.get $W) (local.get $KH) (local.get $KW) (local.get $OC) (local.get $OH) (local.get $OW) (local.get $S) (local.get $pad))
          (local.set $b (i32.add (local.get $b) (i32.const 1)))
          (br $sLoop)))
        ;; dweight = (acc ? dweight : 0) + sW, elementwise
        (local.set $k (i32.const 0))
        (block $fDone (loop $fLoop
          (br_if $fDone (i32.ge_u (local.get $k) (i32.mul (local.get $K) (local.get $OC))))
          (local.set $pw (i32.add (local.get $dw) (i32.shl (local.get $k) (i32.const 2))))
          (f32.store (local.get $pw) (f32.add (select (f32.load (local.get $pw)) (f32.const 0) (local.get $acc))
            (f32.load (i32.add (local.get $sT) (i32.shl (local.get $k) (i32.const 2))))))
          (local.set $k (i32.add (local.get $k) (i32.const 1)))
          (br $fLoop)))
        (return)))
    ;; sᵀ (K, OC) accumulated over the samples: sᵀ[k, o] += Σ_p col_b[k, p]·doutᵀ_b[p, o]
    (memory.fill (local.get $sT) (i32.const 0) (i32.shl (i32.mul (local.get $K) (local.get $OC)) (i32.const 2)))
    (local.set $b (i32.const 0))
    (block $done (loop $samples
      (br_if $done (i32.ge_u (local.get $b) (local.get $B)))
      (call $transpose (local.get $dT)
        (i32.add (local.get $dout) (i32.shl (i32.mul (local.get $b) (i32.mul (local.get $OC) (local.get $P))) (i32.const 2)))
        (local.get $OC) (local.get $P))
      (if (i32.and (i32.and (local.get $allowDirect) (i32.and (i32.eq (local.get $S) (i32.const 1)) (i32.eqz (local.get $pad))))
                   (i32.eqz (i32.and (local.get $OC) (i32.const 7))))
        (then
          ;; stride 1, no padding, OC % 8 = 0: col read from the image, no im2col (the same bits)
          (call $dw_direct_sample (local.get $sT) (local.get $dT)
            (i32.add (local.get $inp) (i32.shl (i32.mul (local.get $b) (i32.mul (local.get $C) (i32.mul (local.get $H) (local.get $W)))) (i32.const 2)))
            (local.get $C) (local.get $H) (local.get $W) (local.get $KH) (local.get $KW) (local.get $OC) (local.get $OH) (local.get $OW)))
        (else
          (call $im2col (local.get $scratch)
            (i32.add (local.get $inp) (i32.shl (i32.mul (local.get $b) (i32.mul (local.get $C) (i32.mul (local.get $H) (local.get $W)))) (i32.const 2)))
            (local.get $C) (local.get $H) (local.get $W) (local.get $KH) (local.get $KW) (local.get $S) (local.get $pad) (local.get $OH) (local.get $OW))
          (call $gemm (local.get $sT) (i32.shl (local.get $OC) (i32.const 2))
            (local.get $scratch) (i32.shl (local.get $P) (i32.const 2)) (i32.const 4)
            (local.get $dT) (i32.shl (local.get $OC) (i32.const 2))
            (i32.const 0) (local.get $K) (local.get $OC) (local.get $P) (i32.const 2))))
      (local.set $b (i32.add (local.get $b) (i32.const 1)))
      (br $samples)))
    ;; dweight[o, k] = (acc ? dweight[o, k] : 0) + sᵀ[k, o]
    (local.set $o (i32.const 0))
    (block $woDone (loop $woLoop
      (br_if $woDone (i32.ge_u (local.get $o) (local.get $OC)))
      (local.set $k (i32.const 0))
      (block $wkDone (loop $wkLoop
        (br_if $wkDone (i32.ge_u (local.get $k) (local.get $K)))
        (local.set $pw (i32.add (local.get $dw) (i32.shl (i32.add (i32.mul (local.get $o) (local.get $K)) (local.get $k)) (i32.const 2))))
        (f32.store (local.get $pw) (f32.add (select (f32.load (local.get $pw)) (f32.const 0) (local.get $acc))
          (f32.load (i32.add (local.get $sT) (i32.shl (i32.add (i32.mul (local.get $k) (local.get $OC)) (local.get $o)) (i32.const 2))))))
        (local.set $k (i32.add (local.get $k) (i32.const 1)))
        (br $wkLoop)))
      (local.set $o (i32.add (local.get $o) (i32.const 1)))
      (br $woLoop))))

  ;; dst (Cc, R) = srcᵀ, src (R, Cc): 4×4 blocks through shuffles when both sizes are
  ;; multiples of 4, else one float at a time (a copy either way: the same bits).
  (func $transpose (param $dst i32) (param $src i32) (param $R i32) (param $Cc i32)
    (local $r i32) (local $c i32) (local $s i32) (local $d i32) (local $rs i32) (local $ds i32)
    (local $v0 v128) (local $v1 v128) (local $v2 v128) (local $v3 v128) (local $t0 v128) (local $t1 v128) (local $t2 v128) (local $t3 v128)
    (if (i32.eqz (i32.and (i32.or (local.get $R) (local.get $Cc)) (i32.const 3)))
      (then
        (local.set $rs (i32.shl (local.get $Cc) (i32.const 2)))
        (local.set $ds (i32.shl (local.get $R) (i32.const 2)))
        (block $brDone (loop $brLoop
          (br_if $brDone (i32.ge_u (local.get $r) (local.get $R)))
          (local.set $c (i32.const 0))
          (block $bcDone (loop $bcLoop
            (br_if $bcDone (i32.ge_u (local.get $c) (local.get $Cc)))
            (local.set $s (i32.add (local.get $src) (i32.shl (i32.add (i32.mul (local.get $r) (local.get $Cc)) (local.get $c)) (i32.const 2))))
            (local.set $v0 (v128.load (local.get $s)))
            (local.set $v1 (v128.load (i32.add (local.get $s) (local.get $rs))))
            (local.set $v2 (v128.load (i32.add (local.get $s) (i32.shl (local.get $rs) (i32.const 1)))))
            (local.set $v3 (v128.load (i32.add (local.get $s) (i32.mul (local.get $rs) (i32.const 3)))))
            ;; t0 = v0[0] v1[0] v0[1] v1[1], t1 = v0[2] v1[2] v0[3] v1[3], t2, t3 likewise for v2, v3
            (local.set $t0 (i8x16.shuffle 0 1 2 3 16 17 18 19 4 5 6 7 20 21 22 23 (local.get $v0) (local.get $v1)))
            (local.set $t1 (i8x16.shuffle 8 9 10 11 24 25 26 27 12 13 14 15 28 29 30 31 (local.get $v0) (local.get $v1)))
            (local.set $t2 (i8x16.shuffle 0 1 2 3 16 17 18 19 4 5 6 7 20 21 22 23 (local.get $v2) (local.get $v3)))
            (local.set $t3 (i8x16.shuffle 8 9 10 11 24 25 26 27 12 13 14 15 28 29 30 31 (local.get $v2) (local.get $v3)))
            (local.set $d (i32.add (local.get $dst) (i32.shl (i32.add (i32.mul (local.get $c) (local.get $R)) (local.get $r)) (i32.const 2))))
            (v128.store (local.get $d) (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23 (local.get $t0) (local.get $t2)))
            (v128.store (i32.add (local.get $d) (local.get $ds)) (i8x16.shuffle 8 9 10 11 12 13 14 15 24 25 26 27 28 29 30 31 (local.get $t0) (local.get $t2)))
            (v128.store (i32.add (local.get $d) (i32.shl (local.get $ds) (i32.const 1))) (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23 (local.get $t1) (local.get $t3)))
            (v128.store (i32.add (local.get $d) (i32.mul (local.get $ds) (i32.const 3))) (i8x16.shuffle 8 9 10 11 12 13 14 15 24 25 26 27 28 29 30 31 (local.get $t1) (local.get $t3)))
            (local.set $c (i32.add (local.get $c) (i32.const 4)))
            (br $bcLoop)))
          (local.set $r (i32.add (local.get $r) (i32.const 4)))
          (br $brLoop)))
        (return)))
    (block $rDone (loop $rLoop
      (br_if $rDone (i32.ge_u (local.get $r) (local.get $R)))
      (local.set $c (i32.const 0))
      (local.set $s (i32.add (local.get $src) (i32.shl (i32.mul (local.get $r) (local.get $Cc)) (i32.const 2))))
      (block $cDone (loop $cLoop
        (br_if $cDone (i32.ge_u (local.get $c) (local.get $Cc)))
        (f32.store (i32.add (local.get $dst) (i32.shl (i32.add (i32.mul (local.get $c) (local.get $R)) (local.get $r)) (i32.const 2)))
          (f32.load (local.get $s)))
        (local.set $s (i32.add (local.get $s) (i32.const 4)))
        (local.set $c (i32.add (local.get $c) (i32.const 1)))
        (br $cLoop)))
      (local.set $r (i32.add (local.get $r) (i32.const 1)))
      (br $rLoop))))

  ;; dinp (B, C, H, W) = the input gradient: per sample, dcol (K, P) = weightᵀ·dout_b (each
  ;; element an f32 sum over o in order from 0), then col2im. Scratch: dcol (K·P). allowSparse 1
  ;; and K ≥ 32 (the default where it applies): $dinp_sparse_sample instead (dcolᵀ from dout's
  ;; nonzeros, then $col2im_t; the same sums, added into dinp in another order).
  (func (export "conv2d_backward_input")
    (param $dinp i32) (param $dout i32) (param $w i32)
    (param $B i32) (param $C i32) (param $H i32) (param $W i32) (param $OC i32) (param $KH i32) (param $KW i32)
    (param $S i32) (param $pad i32) (param $scratch i32) (param $allowSparse i32)
    (local $OH i32) (local $OW i32) (local $P i32) (local $K i32) (local $b i32)
    (local.set $OH (i32.add (i32.div_u (i32.sub (i32.add (local.get $H) (i32.shl (local.get $pad) (i32.const 1))) (local.get $KH)) (local.get $S)) (i32.const 1)))
    (local.set $OW (i32.add (i32.div_u (i32.sub (i32.add (local.get $W) (i32.shl (local.get $pad) (i32.const 1))) (local.get $KW)) (local.get $S)) (i32.const 1)))
    (local.set $P (i32.mul (local.get $OH) (local.get $OW)))
    (local.set $K (i32.mul (local.get $C) (i32.mul (local.get $KH) (local.get $KW))))
    (block $done (loop $samples
      (br_if $done (i32.ge_u (local.get $b) (local.get $B)))
      (if (i32.and (local.get $allowSparse) (i32.ge_u (local.get $K) (i32.const 32)))
        (then
          (call $dinp_sparse_sample
            (i32.add (local.get $dinp) (i32.shl (i32.mul (local.get $b) (i32.mul (local.get $C) (i32.mul (local.get $H) (local.get $W)))) (i32.const 2)))
            (i32.add (local.get $dout) (i32.shl (i32.mul (local.get $b) (i32.mul (local.get $OC) (local.get $P))) (i32.const 2)))
            (local.get $w) (local.get $C) (local.get $H) (local.get $W) (local.get $KH) (local.get $KW) (local.get $OC)
            (local.get $OH) (local.get $OW) (local.get $S) (local.get $pad) (local.get $scratch)))
        (else
          (call $gemm (local.get $scratch) (i32.shl (local.get $P) (i32.const 2))
            (local.get $w) (i32.const 4) (i32.shl (local.get $K) (i32.const 2))
            (i32.add (local.get $dout) (i32.shl (i32.mul (local.get $b) (i32.mul (local.get $OC) (local.get $P))) (i32.const 2)))
            (i32.shl (local.get $P) (i32.const 2))
            (i32.const 0) (local.get $K) (local.get $P) (local.get $OC) (i32.const 0))
          (call $col2im
            (i32.add (local.get $dinp) (i32.shl (i32.mul (local.get $b) (i32.mul (local.get $C) (i32.mul (local.get $H) (local.get $W)))) (i32.const 2)))
            (local.get $scratch)
            (local.get $C) (local.get $H) (local.get $W) (local.get $KH) (local.get $KW) (local.get $S) (local.get $pad) (local.get $OH) (local.get $OW))))
      (local.set $b (i32.add (local.get $b) (i32.const 1)))
      (br $samples))))

  ;; ---- max pooling: the rules of shared/kernels/pool.ts, bit for bit ----
  ;; A window's winner is its first maximum in row-major order (a later equal value does
  ;; not win: `v > m`), or its first NaN (a NaN v wins over a number m; nothing wins over
  ;; a NaN). Comparisons and selects only, no f32.max (which would pick +0 over an
  ;; earlier −0 and rewrite NaNs), so the output is the winner's own bits, as in JS.
  ;; Backward gives the winner 0 + dout (f32), everything else +0, and where windows
  ;; overlap adds in output order, as JS's zero-fill and `+=` do.

  ;; Byte address of the winner of the K×K window whose top-left is at byte address $base (rows $rb bytes apart).
  (func $max_winner (param $base i32) (param $rb i32) (param $K i32) (result i32)
    (local $best i32) (local $m f32) (local $v f32) (local $kh i32) (local $kw i32) (local $p i32)
    (local.set $best (local.get $base))
    (local.set $m (f32.load (local.get $base)))
    (block $hDone (loop $hLoop
      (br_if $hDone (i32.ge_u (local.get $kh) (local.get $K)))
      (local.set $p (i32.add (local.get $base) (i32.mul (local.get $kh) (local.get $rb))))
      (local.set $kw (i32.const 0))
      (block $wDone (loop $wLoop
        (br_if $wDone (i32.ge_u (local.get $kw) (local.get $K)))
        (local.set $v (f32.load (local.get $p)))
        (if (i32.or (f32.gt (local.get $v) (local.get $m))
                    (i32.and (f32.ne (local.get $v) (local.get $v)) (f32.eq (local.get $m) (local.get $m))))
          (then (local.set $m (local.get $v)) (local.set $best (local.get $p))))
        (local.set $p (i32.add (local.get $p) (i32.const 4)))
        (local.set $kw (i32.add (local.get $kw) (i32.const 1)))
        (br $wLoop)))
      (local.set $kh (i32.add (local.get $kh) (i32.const 1)))
      (br $hLoop)))
    (local.get $best))

  ;; Whether lane v replaces the running winner m: v > m, or v is NaN while m is not.
  (func $beats (param $v v128) (param $m v128) (result v128)
    (v128.or (f32x4.gt (local.get $v) (local.get $m))
             (v128.and (f32x4.ne (local.get $v) (local.get $v)) (f32x4.eq (local.get $m) (local.get $m)))))

  ;; out (B, C, OH, OW) = max of each K×K window moved by S over inp (B, C, H, W).
  ;; K = S = 2 runs 4 windows at a time (even/odd lanes of two rows); other shapes and
  ;; the last OW mod 4 windows go through $max_winner, the same rule.
  (func (export "maxpool2d_forward")
    (param $out i32) (param $inp i32) (param $B i32) (param $C i32) (param $H i32) (param $W i32) (param $K i32) (param $S i32)
    (local $OH i32) (local $OW i32) (local $plane i32) (local $oh i32) (local $ow i32) (local $rb i32) (local $x i32) (local $y i32)
    (local $r0 i32) (local $fast i32) (local $m v128) (local $v v128) (local $a v128) (local $b v128)
    (local.set $OH (i32.add (i32.div_u (i32.sub (local.get $H) (local.get $K)) (local.get $S)) (i32.const 1)))
    (local.set $OW (i32.add (i32.div_u (i32.sub (local.get $W) (local.get $K)) (local.get $S)) (i32.const 1)))
    (local.set $rb (i32.shl (local.get $W) (i32.const 2)))
    (local.set $fast (i32.and (i32.eq (local.get $K) (i32.const 2)) (i32.eq (local.get $S) (i32.const 2))))
    (local.set $x (local.get $inp))
    (local.set $y (local.get $out))
    (block $pDone (loop $pLoop
      (br_if $pDone (i32.ge_u (local.get $plane) (i32.mul (local.get $B) (local.get $C))))
      (local.set $oh (i32.const 0))
      (block $hDone (loop $hLoop
        (br_if $hDone (i32.ge_u (local.get $oh) (local.get $OH)))
        (local.set $r0 (i32.add (local.get $x) (i32.mul (i32.mul (local.get $oh) (local.get $S)) (local.get $rb))))
        (local.set $ow (i32.const 0))
        (if (local.get $fast)
          (then
            (block $qDone (loop $qLoop
              (br_if $qDone (i32.gt_u (i32.add (local.get $ow) (i32.const 4)) (local.get $OW)))
              ;; window positions 0 1 / 2 3: even and odd lanes of rows 2·oh and 2·oh + 1
              (local.set $a (v128.load (i32.add (local.get $r0) (i32.shl (local.get $ow) (i32.const 3)))))
              (local.set $b (v128.load offset=16 (i32.add (local.get $r0) (i32.shl (local.get $ow) (i32.const 3)))))
              (local.set $m (i8x16.shuffle 0 1 2 3 8 9 10 11 16 17 18 19 24 25 26 27 (local.get $a) (local.get $b)))
              (local.set $v (i8x16.shuffle 4 5 6 7 12 13 14 15 20 21 22 23 28 29 30 31 (local.get $a) (local.get $b)))
              (local.set $m (v128.bitselect (local.get $v) (local.get $m) (call $beats (local.get $v) (local.get $m))))
              (local.set $a (v128.load (i32.add (i32.add (local.get $r0) (local.get $rb)) (i32.shl (local.get $ow) (i32.const 3)))))
              (local.set $b (v128.load offset=16 (i32.add (i32.add (local.get $r0) (local.get $rb)) (i32.shl (local.get $ow) (i32.const 3)))))
              (local.set $v (i8x16.shuffle 0 1 2 3 8 9 10 11 16 17 18 19 24 25 26 27 (local.get $a) (local.get $b)))
              (local.set $m (v128.bitselect (local.get $v) (local.get $m) (call $beats (local.get $v) (local.get $m))))
              (local.set $v (i8x16.shuffle 4 5 6 7 12 13 14 15 20 21 22 23 28 29 30 31 (local.get $a) (local.get $b)))
              (local.set $m (v128.bitselect (local.get $v) (local.get $m) (call $beats (local.get $v) (local.get $m))))
              (v128.store (i32.add (local.get $y) (i32.shl (i32.add (i32.mul (local.get $oh) (local.get $OW)) (local.get $ow)) (i32.const 2))) (local.get $m))
              (local.set $ow (i32.add (local.get $ow) (i32.const 4)))
              (br $qLoop)))))
        (block $wDone (loop $wLoop
          (br_if $wDone (i32.ge_u (local.get $ow) (local.get $OW)))
          (f32.store (i32.add (local.get $y) (i32.shl (i32.add (i32.mul (local.get $oh) (local.get $OW)) (local.get $ow)) (i32.const 2)))
            (f32.load (call $max_winner (i32.add (local.get $r0) (i32.shl (i32.mul (local.get $ow) (local.get $S)) (i32.const 2))) (local.get $rb) (local.get $K))))
          (local.set $ow (i32.add (local.get $ow) (i32.const 1)))
          (br $wLoop)))
        (local.set $oh (i32.add (local.get $oh) (i32.const 1)))
        (br $hLoop)))
      (local.set $x (i32.add (local.get $x) (i32.mul (local.get $rb) (local.get $H))))
      (local.set $y (i32.add (local.get $y) (i32.shl (i32.mul (local.get $OH) (local.get $OW)) (i32.const 2))))
      (local.set $plane (i32.add (local.get $plane) (i32.const 1)))
      (br $pLoop))))

  ;; dinp (B, C, H, W) = each dout (B, C, OH, OW) routed to its window's winner, recomputed from inp.
  ;; K = S = 2: windows do not overlap, so 4 at a time every position of a window is written
  ;; (0 + dout at the winner, +0 elsewhere), after zeroing the plane only when H or W is odd.
  ;; Otherwise: zero the plane, then winner += dout window by window in output order.
  (func (export "maxpool2d_backward")
    (param $dinp i32) (param $dout i32) (param $inp i32) (param $B i32) (param $C i32) (param $H i32) (param $W i32) (param $K i32) (param $S i32)
    (local $OH i32) (local $OW i32) (local $plane i32) (local $oh i32) (local $ow i32) (local $rb i32) (local $x i32) (local $dx i32) (local $y i32)
    (local $r0 i32) (local $d0 i32) (local $fast i32) (local $p i32) (local $w i32)
    (local $m v128) (local $v v128) (local $a v128) (local $b v128) (local $sel v128) (local $idx v128) (local $g v128)
    (local $e0 v128) (local $e1 v128)
    (local.set $OH (i32.add (i32.div_u (i32.sub (local.get $H) (local.get $K)) (local.get $S)) (i32.const 1)))
    (local.set $OW (i32.add (i32.div_u (i32.sub (local.get $W) (local.get $K)) (local.get $S)) (i32.const 1)))
    (local.set $rb (i32.shl (local.get $W) (i32.const 2)))
    (local.set $fast (i32.and (i32.eq (local.get $K) (i32.const 2)) (i32.eq (local.get $S) (i32.const 2))))
    (local.set $x (local.get $inp))
    (local.set $dx (local.get $dinp))
    (local.set $y (local.get $dout))
    (block $pDone (loop $pLoop
      (br_if $pDone (i32.ge_u (local.get $plane) (i32.mul (local.get $B) (local.get $C))))
      (if (i32.or (i32.eqz (local.get $fast)) (i32.and (i32.or (local.get $H) (local.get $W)) (i32.const 1)))
        (then (memory.fill (local.get $dx) (i32.const 0) (i32.mul (local.get $rb) (local.get $H)))))
      (local.set $oh (i32.const 0))
      (block $hDone (loop $hLoop
        (br_if $hDone (i32.ge_u (local.get $oh) (local.get $OH)))
        (local.set $r0 (i32.mul (i32.mul (local.get $oh) (local.get $S)) (local.get $rb)))
        (local.set $ow (i32.const 0))
        (if (local.get $fast)
          (then
            (block $qDone (loop $qLoop
              (br_if $qDone (i32.gt_u (i32.add (local.get $ow) (i32.const 4)) (local.get $OW)))
              (local.set $p (i32.add (local.get $x) (i32.add (local.get $r0) (i32.shl (local.get $ow) (i32.const 3)))))
              (local.set $a (v128.load (local.get $p)))
              (local.set $b (v128.load offset=16 (local.get $p)))
              (local.set $m (i8x16.shuffle 0 1 2 3 8 9 10 11 16 17 18 19 24 25 26 27 (local.get $a) (local.get $b)))
              (local.set $idx (v128.const i32x4 0 0 0 0))
              (local.set $v (i8x16.shuffle 4 5 6 7 12 13 14 15 20 21 22 23 28 29 30 31 (local.get $a) (local.get $b)))
              (local.set $sel (call $beats (local.get $v) (local.get $m)))
              (local.set $m (v128.bitselect (local.get $v) (local.get $m) (local.get $sel)))
              (local.set $idx (v128.bitselect (v128.const i32x4 1 1 1 1) (local.get $idx) (local.get $sel)))
              (local.set $a (v128.load (i32.add (local.get $p) (local.get $rb))))
              (local.set $b (v128.load offset=16 (i32.add (local.get $p) (local.get $rb))))
              (local.set $v (i8x16.shuffle 0 1 2 3 8 9 10 11 16 17 18 19 24 25 26 27 (local.get $a) (local.get $b)))
              (local.set $sel (call $beats (local.get $v) (local.get $m)))
              (local.set $m (v128.bitselect (local.get $v) (local.get $m) (local.get $sel)))
              (local.set $idx (v128.bitselect (v128.const i32x4 2 2 2 2) (local.get $idx) (local.get $sel)))
              (local.set $v (i8x16.shuffle 4 5 6 7 12 13 14 15 20 21 22 23 28 29 30 31 (local.get $a) (local.get $b)))
              (local.set $sel (call $beats (local.get $v) (local.get $m)))
              (local.set $idx (v128.bitselect (v128.const i32x4 3 3 3 3) (local.get $idx) (local.get $sel)))
              (local.set $g (f32x4.add (v128.const i32x4 0 0 0 0)
                (v128.load (i32.add (local.get $y) (i32.shl (i32.add (i32.mul (local.get $oh) (local.get $OW)) (local.get $ow)) (i32.const 2))))))
              ;; row 2·oh: positions 0 and 1 interleaved; row 2·oh + 1: positions 2 and 3
              (local.set $p (i32.add (local.get $dx) (i32.add (local.get $r0) (i32.shl (local.get $ow) (i32.const 3)))))
              (local.set $e0 (v128.and (local.get $g) (i32x4.eq (local.get $idx) (v128.const i32x4 0 0 0 0))))
              (local.set $e1 (v128.and (local.get $g) (i32x4.eq (local.get $idx) (v128.const i32x4 1 1 1 1))))
              (v128.store (local.get $p) (i8x16.shuffle 0 1 2 3 16 17 18 19 4 5 6 7 20 21 22 23 (local.get $e0) (local.get $e1)))
              (v128.store offset=16 (local.get $p) (i8x16.shuffle 8 9 10 11 24 25 26 27 12 13 14 15 28 29 30 31 (local.get $e0) (local.get $e1)))
              (local.set $p (i32.add (local.get $p) (local.get $rb)))
              (local.set $e0 (v128.and (local.get $g) (i32x4.eq (local.get $idx) (v128.const i32x4 2 2 2 2))))
              (local.set $e1 (v128.and (local.get $g) (i32x4.eq (local.get $idx) (v128.const i32x4 3 3 3 3))))
              (v128.store (local.get $p) (i8x16.shuffle 0 1 2 3 16 17 18 19 4 5 6 7 20 21 22 23 (local.get $e0) (local.get $e1)))
              (v128.store offset=16 (local.get $p) (i8x16.shuffle 8 9 10 11 24 25 26 27 12 13 14 15 28 29 30 31 (local.get $e0) (local.get $e1)))
              (local.set $ow (i32.add (local.get $ow) (i32.const 4)))
              (br $qLoop)))
            ;; the last OW mod 4 windows: clear their 2×2 positions (the += below adds onto them)
            (local.set $w (local.get $ow))
            (block $cDone (loop $cLoop
              (br_if $cDone (i32.ge_u (local.get $w) (local.get $OW)))
              (local.set $p (i32.add (local.get $dx) (i32.add (local.get $r0) (i32.shl (local.get $w) (i32.const 3)))))
              (i64.store (local.get $p) (i64.const 0))
              (i64.store (i32.add (local.get $p) (local.get $rb)) (i64.const 0))
              (local.set $w (i32.add (local.get $w) (i32.const 1)))
              (br $cLoop)))))
        (block $wDone (loop $wLoop
          (br_if $wDone (i32.ge_u (local.get $ow) (local.get $OW)))
          (local.set $p (i32.add (local.get $dx) (i32.sub
            (call $max_winner (i32.add (local.get $x) (i32.add (local.get $r0) (i32.shl (i32.mul (local.get $ow) (local.get $S)) (i32.const 2)))) (local.get $rb) (local.get $K))
            (local.get $x))))
          (f32.store (local.get $p) (f32.add (f32.load (local.get $p))
            (f32.load (i32.add (local.get $y) (i32.shl (i32.add (i32.mul (local.get $oh) (local.get $OW)) (local.get $ow)) (i32.const 2))))))
          (local.set $ow (i32.add (local.get $ow) (i32.const 1)))
          (br $wLoop)))
        (local.set $oh (i32.add (local.get $oh) (i32.const 1)))
        (br $hLoop)))
      (local.set $x (i32.add (local.get $x) (i32.mul (local.get $rb) (local.get $H))))
      (local.set $dx (i32.add (local.get $dx) (i32.mul (local.get $rb) (local.get $H))))
      (local.set $y (i32.add (local.get $y) (i32.shl (i32.mul (local.get $OH) (local.get $OW)) (i32.const 2))))
      (local.set $plane (i32.add (local.get $plane) (i32.const 1)))
      (br $pLoop))))

  ;; out (B, OC, OH, OW) = conv(inp, weight) + bias by direct convolution, for stride 1,
  ;; no padding, OW a multiple of 8 and OC of 4 (the caller checks): the $gemm tile of
  ;; conv2d_forward with its col operand read straight from the image (8 outputs of one
  ;; row read 8 consecutive inputs per tap), so no im2col. Same k = (c, kh, kw) order and
  ;; the same f32 operations per element: the same bits as conv2d_forward.
  (func (export "conv2d_forward_direct")
    (param $out i32) (param $inp i32) (param $w i32) (param $bias i32)
    (param $B i32) (param $C i32) (param $H i32) (param $W i32) (param $OC i32) (param $KH i32) (param $KW i32) (param $panel i32)
    (local $OH i32) (local $OW i32) (local $P i32) (local $K i32) (local $b i32) (local $o i32) (local $oh i32) (local $ow i32)
    (local $x i32) (local $y i32) (local $pa i32) (local $pb i32) (local $po i32) (local $ars i32) (local $ars2 i32) (local $ars3 i32)
    (local $c i32) (local $kh i32) (local $kwEnd i32) (local $rowSkip i32) (local $k i32) (local $q i32) (local $planeSkip i32) (local $rb i32)
    (local $b0 v128) (local $b1 v128) (local $s v128)
    (local $a00 v128) (local $a01 v128) (local $a10 v128) (local $a11 v128)
    (local $a20 v128) (local $a21 v128) (local $a30 v128) (local $a31 v128)
    (local.set $OH (i32.add (i32.sub (local.get $H) (local.get $KH)) (i32.const 1)))
    (local.set $OW (i32.add (i32.sub (local.get $W) (local.get $KW)) (i32.const 1)))
    (local.set $P (i32.mul (local.get $OH) (local.get $OW)))
    (local.set $K (i32.mul (local.get $C) (i32.mul (local.get $KH) (local.get $KW))))
    (local.set $ars (i32.shl (local.get $K) (i32.const 2)))
    (local.set $ars2 (i32.shl (local.get $ars) (i32.const 1)))
    (local.set $ars3 (i32.add (local.get $ars2) (local.get $ars)))
    (local.set $rb (i32.shl (local.get $W) (i32.const 2)))
    ;; after a row of KW taps: on to the next image row; after KH rows: on to the next channel
    (local.set $rowSkip (i32.shl (i32.sub (local.get $W) (local.get $KW)) (i32.const 2)))
    (local.set $planeSkip (i32.mul (i32.sub (local.get $H) (local.get $KH)) (local.get $rb)))
    ;; weight (OC, K) packed into panel (OC/4, K, 4): a tile's 4 weights of one tap are adjacent,
    ;; so its splats take constant offsets from one pointer that steps 16 bytes a tap.
    (local.set $o (i32.const 0))
    (local.set $q (local.get $panel))
    (block $pkDone (loop $pkLoop
      (br_if $pkDone (i32.ge_u (local.get $o) (local.get $OC)))
      (local.set $k (i32.const 0))
      (block $pk2Done (loop $pk2Loop
        (br_if $pk2Done (i32.ge_u (local.get $k) (local.get $K)))
        (local.set $pa (i32.add (local.get $w) (i32.shl (i32.add (i32.mul (local.get $o) (local.get $K)) (local.get $k)) (i32.const 2))))
        (f32.store (local.get $q) (f32.load (local.get $pa)))
        (f32.store offset=4 (local.get $q) (f32.load (i32.add (local.get $pa) (local.get $ars))))
        (f32.store offset=8 (local.get $q) (f32.load (i32.add (local.get $pa) (local.get $ars2))))
        (f32.store offset=12 (local.get $q) (f32.load (i32.add (local.get $pa) (local.get $ars3))))
        (local.set $q (i32.add (local.get $q) (i32.const 16)))
        (local.set $k (i32.add (local.get $k) (i32.const 1)))
        (br $pk2Loop)))
      (local.set $o (i32.add (local.get $o) (i32.const 4)))
      (br $pkLoop)))
    (block $bDone (loop $bLoop
      (br_if $bDone (i32.ge_u (local.get $b) (local.get $B)))
      (local.set $x (i32.add (local.get $inp) (i32.shl (i32.mul (local.get $b) (i32.mul (local.get $C) (i32.mul (local.get $H) (local.get $W)))) (i32.const 2))))
      (local.set $y (i32.add (local.get $out) (i32.shl (i32.mul (local.get $b) (i32.mul (local.get $OC) (local.get $P))) (i32.const 2))))
      (local.set $o (i32.const 0))
      (block $oDone (loop $oLoop
        (br_if $oDone (i32.ge_u (local.get $o) (local.get $OC)))
        (local.set $oh (i32.const 0))
        (block $hDone (loop $hLoop
          (br_if $hDone (i32.ge_u (local.get $oh) (local.get $OH)))
          (local.set $ow (i32.const 0))
          (block $wDone (loop $wLoop
            (br_if $wDone (i32.ge_u (local.get $ow) (local.get $OW)))
            (local.set $a00 (v128.const i32x4 0 0 0 0)) (local.set $a01 (v128.const i32x4 0 0 0 0))
            (local.set $a10 (v128.const i32x4 0 0 0 0)) (local.set $a11 (v128.const i32x4 0 0 0 0))
            (local.set $a20 (v128.const i32x4 0 0 0 0)) (local.set $a21 (v128.const i32x4 0 0 0 0))
            (local.set $a30 (v128.const i32x4 0 0 0 0)) (local.set $a31 (v128.const i32x4 0 0 0 0))
            (local.set $pa (i32.add (local.get $panel) (i32.shl (i32.mul (local.get $o) (local.get $K)) (i32.const 2))))
            (local.set $pb (i32.add (local.get $x) (i32.shl (i32.add (i32.mul (local.get $oh) (local.get $W)) (local.get $ow)) (i32.const 2))))
            (local.set $c (i32.const 0))
            (block $cDone (loop $cLoop
              (br_if $cDone (i32.ge_u (local.get $c) (local.get $C)))
              (local.set $kh (i32.const 0))
              (block $khDone (loop $khLoop
                (br_if $khDone (i32.ge_u (local.get $kh) (local.get $KH)))
                (local.set $kwEnd (i32.add (local.get $pa) (i32.shl (local.get $KW) (i32.const 4))))
                (block $kwDone (loop $kwLoop
                  (br_if $kwDone (i32.eq (local.get $pa) (local.get $kwEnd)))
                  (local.set $b0 (v128.load (local.get $pb)))
                  (local.set $b1 (v128.load offset=16 (local.get $pb)))
                  (local.set $s (v128.load32_splat (local.get $pa)))
                  (local.set $a00 (f32x4.add (local.get $a00) (f32x4.mul (local.get $s) (local.get $b0))))
                  (local.set $a01 (f32x4.add (local.get $a01) (f32x4.mul (local.get $s) (local.get $b1))))
                  (local.set $s (v128.load32_splat offset=4 (local.get $pa)))
                  (local.set $a10 (f32x4.add (local.get $a10) (f32x4.mul (local.get $s) (local.get $b0))))
                  (local.set $a11 (f32x4.add (local.get $a11) (f32x4.mul (local.get $s) (local.get $b1))))
                  (local.set $s (v128.load32_splat offset=8 (local.get $pa)))
                  (local.set $a20 (f32x4.add (local.get $a20) (f32x4.mul (local.get $s) (local.get $b0))))
                  (local.set $a21 (f32x4.add (local.get $a21) (f32x4.mul (local.get $s) (local.get $b1))))
                  (local.set $s (v128.load32_splat offset=12 (local.get $pa)))
                  (local.set $a30 (f32x4.add (local.get $a30) (f32x4.mul (local.get $s) (local.get $b0))))
                  (local.set $a31 (f32x4.add (local.get $a31) (f32x4.mul (local.get $s) (local.get $b1))))
                  (local.set $pa (i32.add (local.get $pa) (i32.const 16)))
                  (local.set $pb (i32.add (local.get $pb) (i32.const 4)))
                  (br $kwLoop)))
                (local.set $pb (i32.add (local.get $pb) (local.get $rowSkip)))
                (local.set $kh (i32.add (local.get $kh) (i32.const 1)))
                (br $khLoop)))
              (local.set $pb (i32.add (local.get $pb) (local.get $planeSkip)))
              (local.set $c (i32.add (local.get $c) (i32.const 1)))
              (br $cLoop)))
            (local.set $s (v128.load32_splat (i32.add (local.get $bias) (i32.shl (local.get $o) (i32.const 2)))))
            (local.set $po (i32.add (local.get $y) (i32.shl (i32.add (i32.mul (local.get $o) (local.get $P)) (i32.add (i32.mul (local.get $oh) (local.get $OW)) (local.get $ow))) (i32.const 2))))
            (v128.store (local.get $po) (f32x4.add (local.get $a00) (local.get $s)))
            (v128.store offset=16 (local.get $po) (f32x4.add (local.get $a01) (local.get $s)))
            (local.set $po (i32.add (local.get $po) (i32.shl (local.get $P) (i32.const 2))))
            (local.set $s (v128.load32_splat offset=4 (i32.add (local.get $bias) (i32.shl (local.get $o) (i32.const 2)))))
            (v128.store (local.get $po) (f32x4.add (local.get $a10) (local.get $s)))
            (v128.store offset=16 (local.get $po) (f32x4.add (local.get $a11) (local.get $s)))
            (local.set $po (i32.add (local.get $po) (i32.shl (local.get $P) (i32.const 2))))
            (local.set $s (v128.load32_splat offset=8 (i32.add (local.get $bias) (i32.shl (local.get $o) (i32.const 2)))))
            (v128.store (local.get $po) (f32x4.add (local.get $a20) (local.get $s)))
            (v128.store offset=16 (local.get $po) (f32x4.add (local.get $a21) (local.get $s)))
            (local.set $po (i32.add (local.get $po) (i32.shl (local.get $P) (i32.const 2))))
            (local.set $s (v128.load32_splat offset=12 (i32.add (local.get $bias) (i32.shl (local.get $o) (i32.const 2)))))
            (v128.store (local.get $po) (f32x4.add (local.get $a30) (local.get $s)))
            (v128.store offset=16 (local.get $po) (f32x4.add (local.get $a31) (local.get $s)))
            (local.set $ow (i32.add (local.get $ow) (i32.const 8)))
            (br $wLoop)))
          (local.set $oh (i32.add (local.get $oh) (i32.const 1)))
          (br $hLoop)))
        (local.set $o (i32.add (local.get $o) (i32.const 4)))
        (br $oLoop)))
      (local.set $b (i32.add (local.get $b) (i32.const 1)))
      (br $bLoop))))

  ;; sᵀ (K, OC) += Σ_p col_b[k, p]·doutᵀ_b[p, o] with col_b read straight from the image
  ;; x (C, H, W) (stride 1, no padding, OC a multiple of 8): col_b[k, (oh, ow)] =
  ;; x[c, oh + kh, ow + kw] for k = (c, kh, kw). The $gemm mode-2 sequence element for
  ;; element (each adds its terms in p order onto sᵀ), so the same bits as im2col + $gemm.
  (func $dw_direct_sample (param $sT i32) (param $dT i32) (param $x i32)
    (param $C i32) (param $H i32) (param $W i32) (param $KH i32) (param $KW i32) (param $OC i32) (param $OH i32) (param $OW i32)
    (local $K i32) (local $KK i32) (local $m i32) (local $rows i32) (local $n i32) (local $oh i32) (local $ow i32)
    (local $x0 i32) (local $x1 i32) (local $x2 i32) (local $x3 i32) (local $pp i32) (local $pb i32) (local $po i32) (local $ldo i32)
    (local $rowSkip i32)
    (local $b0 v128) (local $b1 v128) (local $s v128)
    (local $a00 v128) (local $a01 v128) (local $a10 v128) (local $a11 v128)
    (local $a20 v128) (local $a21 v128) (local $a30 v128) (local $a31 v128)
    (local.set $KK (i32.mul (local.get $KH) (local.get $KW)))
    (local.set $K (i32.mul (local.get $C) (local.get $KK)))
    (local.set $ldo (i32.shl (local.get $OC) (i32.const 2)))
    (local.set $rowSkip (i32.shl (i32.sub (local.get $W) (local.get $OW)) (i32.const 2)))
    (block $mDone (loop $mLoop
      (br_if $mDone (i32.ge_u (local.get $m) (local.get $K)))
      ;; 4 rows of sᵀ at a time, or the last K mod 4 one at a time (rows past the end alias row m: computed, not stored)
      (local.set $rows (select (i32.const 4) (i32.const 1) (i32.le_u (i32.add (local.get $m) (i32.const 4)) (local.get $K))))
      (local.set $x0 (call $tap_addr (local.get $x) (local.get $m) (local.get $KK) (local.get $KW) (local.get $H) (local.get $W)))
      (local.set $x1 (select (call $tap_addr (local.get $x) (i32.add (local.get $m) (i32.const 1)) (local.get $KK) (local.get $KW) (local.get $H) (local.get $W)) (local.get $x0) (i32.eq (local.get $rows) (i32.const 4))))
      (local.set $x2 (select (call $tap_addr (local.get $x) (i32.add (local.get $m) (i32.const 2)) (local.get $KK) (local.get $KW) (local.get $H) (local.get $W)) (local.get $x0) (i32.eq (local.get $rows) (i32.const 4))))
      (local.set $x3 (select (call $tap_addr (local.get $x) (i32.add (local.get $m) (i32.const 3)) (local.get $KK) (local.get $KW) (local.get $H) (local.get $W)) (local.get $x0) (i32.eq (local.get $rows) (i32.const 4))))
      (local.set $n (i32.const 0))
      (block $nDone (loop $nLoop
        (br_if $nDone (i32.ge_u (local.get $n) (local.get $OC)))
        (local.set $po (i32.add (local.get $sT) (i32.add (i32.mul (local.get $m) (local.get $ldo)) (i32.shl (local.get $n) (i32.const 2)))))
        (local.set $a00 (v128.load (local.get $po)))
        (local.set $a01 (v128.load offset=16 (local.get $po)))
        (if (i32.eq (local.get $rows) (i32.const 4))
          (then
            (local.set $a10 (v128.load (i32.add (local.get $po) (local.get $ldo))))
            (local.set $a11 (v128.load offset=16 (i32.add (local.get $po) (local.get $ldo))))
            (local.set $a20 (v128.load (i32.add (local.get $po) (i32.shl (local.get $ldo) (i32.const 1)))))
            (local.set $a21 (v128.load offset=16 (i32.add (local.get $po) (i32.shl (local.get $ldo) (i32.const 1)))))
            (local.set $a30 (v128.load (i32.add (local.get $po) (i32.mul (local.get $ldo) (i32.const 3)))))
            (local.set $a31 (v128.load offset=16 (i32.add (local.get $po) (i32.mul (local.get $ldo) (i32.const 3)))))))
        (local.set $pb (i32.add (local.get $dT) (i32.shl (local.get $n) (i32.const 2))))
        (local.set $pp (i32.const 0))
        (local.set $oh (i32.const 0))
        (block $hDone (loop $hLoop
          (br_if $hDone (i32.ge_u (local.get $oh) (local.get $OH)))
          (local.set $ow (i32.const 0))
          (block $wDone (loop $wLoop
            (br_if $wDone (i32.ge_u (local.get $ow) (local.get $OW)))
            (local.set $b0 (v128.load (local.get $pb)))
            (local.set $b1 (v128.load offset=16 (local.get $pb)))
            (local.set $s (v128.load32_splat (i32.add (local.get $x0) (local.get $pp))))
            (local.set $a00 (f32x4.add (local.get $a00) (f32x4.mul (local.get $s) (local.get $b0))))
            (local.set $a01 (f32x4.add (local.get $a01) (f32x4.mul (local.get $s) (local.get $b1))))
            (local.set $s (v128.load32_splat (i32.add (local.get $x1) (local.get $pp))))
            (local.set $a10 (f32x4.add (local.get $a10) (f32x4.mul (local.get $s) (local.get $b0))))
            (local.set $a11 (f32x4.add (local.get $a11) (f32x4.mul (local.get $s) (local.get $b1))))
            (local.set $s (v128.load32_splat (i32.add (local.get $x2) (local.get $pp))))
            (local.set $a20 (f32x4.add (local.get $a20) (f32x4.mul (local.get $s) (local.get $b0))))
            (local.set $a21 (f32x4.add (local.get $a21) (f32x4.mul (local.get $s) (local.get $b1))))
            (local.set $s (v128.load32_splat (i32.add (local.get $x3) (local.get $pp))))
            (local.set $a30 (f32x4.add (local.get $a30) (f32x4.mul (local.get $s) (local.get $b0))))
            (local.set $a31 (f32x4.add (local.get $a31) (f32x4.mul (local.get $s) (local.get $b1))))
            (local.set $pp (i32.add (local.get $pp) (i32.const 4)))
            (local.set $pb (i32.add (local.get $pb) (local.get $ldo)))
            (local.set $ow (i32.add (local.get $ow) (i32.const 1)))
            (br $wLoop)))
          (local.set $pp (i32.add (local.get $pp) (local.get $rowSkip)))
          (local.set $oh (i32.add (local.get $oh) (i32.const 1)))
          (br $hLoop)))
        (v128.store (local.get $po) (local.get $a00))
        (v128.store offset=16 (local.get $po) (local.get $a01))
        (if (i32.eq (local.get $rows) (i32.const 4))
          (then
            (local.set $po (i32.add (local.get $po) (local.get $ldo)))
            (v128.store (local.get $po) (local.get $a10))
            (v128.store offset=16 (local.get $po) (local.get $a11))
            (local.set $po (i32.add (local.get $po) (local.get $ldo)))
            (v128.store (local.get $po) (local.get $a20))
            (v128.store offset=16 (local.get $po) (local.get $a21))
            (local.set $po (i32.add (local.get $po) (local.get $ldo)))
            (v128.store (local.get $po) (local.get $a30))
            (v128.store offset=16 (local.get $po) (local.get $a31))))
        (local.set $n (i32.add (local.get $n) (i32.const 8)))
        (br $nLoop)))
      (local.set $m (i32.add (local.get $m) (local.get $rows)))
      (br $mLoop))))

  ;; Byte address of x[c, kh, kw] for tap k = (c, kh, kw): the image element col[k, 0] reads.
  (func $tap_addr (param $x i32) (param $k i32) (param $KK i32) (param $KW i32) (param $H i32) (param $W i32) (result i32)
    (local $c i32) (local $r i32)
    (local.set $c (i32.div_u (local.get $k) (local.get $KK)))
    (local.set $r (i32.rem_u (local.get $k) (local.get $KK)))
    (i32.add (local.get $x) (i32.shl
      (i32.add (i32.mul (i32.add (i32.mul (local.get $c) (local.get $H)) (i32.div_u (local.get $r) (local.get $KW))) (local.get $W))
               (i32.rem_u (local.get $r) (local.get $KW)))
      (i32.const 2))))

  ;; out[i] = x > 0 ? x : x·a (f32; a = slope rounded to f32 by the caller), N values: the
  ;; JS kernel's bits (a double product of two floats rounded once is the f32 product).
  (func (export "leaky_relu_forward") (param $out i32) (param $inp i32) (param $N i32) (param $a f32)
    (local $k i32) (local $end i32) (local $v v128) (local $va v128) (local $x f32)
    (local.set $va (f32x4.splat (local.get $a)))
    (local.set $end (i32.shl (i32.and (local.get $N) (i32.const -4)) (i32.const 2)))
    (block $done
      (loop $l
        (br_if $done (i32.ge_u (local.get $k) (local.get $end)))
        (local.set $v (v128.load (i32.add (local.get $inp) (local.get $k))))
        (v128.store (i32.add (local.get $out) (local.get $k))
          (v128.bitselect (local.get $v) (f32x4.mul (local.get $v) (local.get $va)) (f32x4.gt (local.get $v) (v128.const i32x4 0 0 0 0))))
        (local.set $k (i32.add (local.get $k) (i32.const 16)))
        (br $l)))
    (local.set $end (i32.shl (local.get $N) (i32.const 2)))
    (block $done2
      (loop $t
        (br_if $done2 (i32.ge_u (local.get $k) (local.get $end)))
        (local.set $x (f32.load (i32.add (local.get $inp) (local.get $k))))
        (f32.store (i32.add (local.get $out) (local.get $k))
          (select (local.get $x) (f32.mul (local.get $x) (local.get $a)) (f32.gt (local.get $x) (f32.const 0))))
        (local.set $k (i32.add (local.get $k) (i32.const 4)))
        (br $t))))

  ;; dinp[i] = x > 0 ? dout[i] : dout[i]·a, x = inp[i] the forward input; N values.
  (func (export "leaky_relu_backward") (param $dinp i32) (param $dout i32) (param $inp i32) (param $N i32) (param $a f32)
    (local $k i32) (local $end i32) (local $g v128) (local $va v128) (local $d f32)
    (local.set $va (f32x4.splat (local.get $a)))
    (local.set $end (i32.shl (i32.and (local.get $N) (i32.const -4)) (i32.const 2)))
    (block $done
      (loop $l
        (br_if $done (i32.ge_u (local.get $k) (local.get $end)))
        (local.set $g (v128.load (i32.add (local.get $dout) (local.get $k))))
        (v128.store (i32.add (local.get $dinp) (local.get $k))
          (v128.bitselect (local.get $g) (f32x4.mul (local.get $g) (local.get $va))
            (f32x4.gt (v128.load (i32.add (local.get $inp) (local.get $k))) (v128.const i32x4 0 0 0 0))))
        (local.set $k (i32.add (local.get $k) (i32.const 16)))
        (br $l)))
    (local.set $end (i32.shl (local.get $N) (i32.const 2)))
    (block $done2
      (loop $t
        (br_if $done2 (i32.ge_u (local.get $k) (local.get $end)))
        (local.set $d (f32.load (i32.add (local.get $dout) (local.get $k))))
        (f32.store (i32.add (local.get $dinp) (local.get $k))
          (select (local.get $d) (f32.mul (local.get $d) (local.get $a)) (f32.gt (f32.load (i32.add (local.get $inp) (local.get $k))) (f32.const 0))))
        (local.set $k (i32.add (local.get $k) (i32.const 4)))
        (br $t))))

  ;; ---- the input gradient, sparse in dout ----
  ;; After max pooling and ReLU most of a convolution's dout is exactly zero (pooling 2×2
  ;; routes each window's gradient to one position of four). So per sample and output
  ;; position p, the nonzero dout[o, p] are listed first (branch-free), and
  ;; dcolᵀ[p, k] = Σ_{listed o, in order} dout[o, p]·weight[o, k] in f32 from 0: for finite
  ;; operands the very value of the dense sum over every o (adding a zero product to a
  ;; sum that starts at +0 changes nothing), at a cost in proportion to the nonzeros.
  ;; Then dx = 0 and every tap inside the image adds its dcolᵀ value, in (p, c, kh, kw) order.

  ;; dx (C, H, W) from dy (OC, P) and weight (OC, K) for one sample; scratch: dcolᵀ (P·K), then
  ;; the list of one position: byte offsets of weight rows (OC i32) and their dout values (OC f32).
  (func $dinp_sparse_sample (param $dx i32) (param $dy i32) (param $w i32)
    (param $C i32) (param $H i32) (param $W i32) (param $KH i32) (param $KW i32) (param $OC i32)
    (param $OH i32) (param $OW i32) (param $S i32) (param $pad i32) (param $scratch i32)
    (local $K i32) (local $P i32) (local $p i32) (local $o i32) (local $n i32) (local $v f32) (local $offs i32) (local $vals i32)
    (local $dst i32) (local $kb i32) (local $j i32) (local $wr i32) (local $s v128) (local $sf f32)
    (local $a0 v128) (local $a1 v128) (local $a2 v128) (local $a3 v128) (local $a4 v128) (local $a5 v128) (local $a6 v128) (local $a7 v128)
    (local.set $K (i32.mul (local.get $C) (i32.mul (local.get $KH) (local.get $KW))))
    (local.set $P (i32.mul (local.get $OH) (local.get $OW)))
    (local.set $offs (i32.add (local.get $scratch) (i32.shl (i32.mul (local.get $P) (local.get $K)) (i32.const 2))))
    (local.set $vals (i32.add (local.get $offs) (i32.shl (local.get $OC) (i32.const 2))))
    (block $pDone (loop $pLoop
      (br_if $pDone (i32.ge_u (local.get $p) (local.get $P)))
      ;; the list: every o written at slot n, n advanced only past nonzeros
      (local.set $n (i32.const 0))
      (local.set $o (i32.const 0))
      (block $oDone (loop $oLoop
        (br_if $oDone (i32.ge_u (local.get $o) (local.get $OC)))
        (local.set $v (f32.load (i32.add (local.get $dy) (i32.shl (i32.add (i32.mul (local.get $o) (local.get $P)) (local.get $p)) (i32.const 2)))))
        (i32.store (i32.add (local.get $offs) (i32.shl (local.get $n) (i32.const 2))) (i32.shl (i32.mul (local.get $o) (local.get $K)) (i32.const 2)))
        (f32.store (i32.add (local.get $vals) (i32.shl (local.get $n) (i32.const 2))) (local.get $v))
        (local.set $n (i32.add (local.get $n) (f32.ne (local.get $v) (f32.const 0))))
        (local.set $o (i32.add (local.get $o) (i32.const 1)))
        (br $oLoop)))
      (local.set $dst (i32.add (local.get $scratch) (i32.shl (i32.mul (local.get $p) (local.get $K)) (i32.const 2))))
      ;; 32 taps at a time
      (local.set $kb (i32.const 0))
      (block $bDone (loop $bLoop
        (br_if $bDone (i32.gt_u (i32.add (local.get $kb) (i32.const 32)) (local.get $K)))
        (local.set $a0 (v128.const i32x4 0 0 0 0)) (local.set $a1 (v128.const i32x4 0 0 0 0))
        (local.set $a2 (v128.const i32x4 0 0 0 0)) (local.set $a3 (v128.const i32x4 0 0 0 0))
        (local.set $a4 (v128.const i32x4 0 0 0 0)) (local.set $a5 (v128.const i32x4 0 0 0 0))
        (local.set $a6 (v128.const i32x4 0 0 0 0)) (local.set $a7 (v128.const i32x4 0 0 0 0))
        (local.set $j (i32.const 0))
        (block $jDone (loop $jLoop
          (br_if $jDone (i32.ge_u (local.get $j) (local.get $n)))
          (local.set $s (v128.load32_splat (i32.add (local.get $vals) (i32.shl (local.get $j) (i32.const 2)))))
          (local.set $wr (i32.add (i32.add (local.get $w) (i32.load (i32.add (local.get $offs) (i32.shl (local.get $j) (i32.const 2))))) (i32.shl (local.get $kb) (i32.const 2))))
          (local.set $a0 (f32x4.add (local.get $a0) (f32x4.mul (local.get $s) (v128.load (local.get $wr)))))
          (local.set $a1 (f32x4.add (local.get $a1) (f32x4.mul (local.get $s) (v128.load offset=16 (local.get $wr)))))
          (local.set $a2 (f32x4.add (local.get $a2) (f32x4.mul (local.get $s) (v128.load offset=32 (local.get $wr)))))
          (local.set $a3 (f32x4.add (local.get $a3) (f32x4.mul (local.get $s) (v128.load offset=48 (local.get $wr)))))
          (local.set $a4 (f32x4.add (local.get $a4) (f32x4.mul (local.get $s) (v128.load offset=64 (local.get $wr)))))
          (local.set $a5 (f32x4.add (local.get $a5) (f32x4.mul (local.get $s) (v128.load offset=80 (local.get $wr)))))
          (local.set $a6 (f32x4.add (local.get $a6) (f32x4.mul (local.get $s) (v128.load offset=96 (local.get $wr)))))
          (local.set $a7 (f32x4.add (local.get $a7) (f32x4.mul (local.get $s) (v128.load offset=112 (local.get $wr)))))
          (local.set $j (i32.add (local.get $j) (i32.const 1)))
          (br $jLoop)))
        (local.set $wr (i32.add (local.get $dst) (i32.shl (local.get $kb) (i32.const 2))))
        (v128.store (local.get $wr) (local.get $a0))
        (v128.store offset=16 (local.get $wr) (local.get $a1))
        (v128.store offset=32 (local.get $wr) (local.get $a2))
        (v128.store offset=48 (local.get $wr) (local.get $a3))
        (v128.store offset=64 (local.get $wr) (local.get $a4))
        (v128.store offset=80 (local.get $wr) (local.get $a5))
        (v128.store offset=96 (local.get $wr) (local.get $a6))
        (v128.store offset=112 (local.get $wr) (local.get $a7))
        (local.set $kb (i32.add (local.get $kb) (i32.const 32)))
        (br $bLoop)))
      ;; then 4 taps at a time
      (block $qDone (loop $qLoop
        (br_if $qDone (i32.gt_u (i32.add (local.get $kb) (i32.const 4)) (local.get $K)))
        (local.set $a0 (v128.const i32x4 0 0 0 0))
        (local.set $j (i32.const 0))
        (block $jDone2 (loop $jLoop2
          (br_if $jDone2 (i32.ge_u (local.get $j) (local.get $n)))
          (local.set $a0 (f32x4.add (local.get $a0) (f32x4.mul
            (v128.load32_splat (i32.add (local.get $vals) (i32.shl (local.get $j) (i32.const 2))))
            (v128.load (i32.add (i32.add (local.get $w) (i32.load (i32.add (local.get $offs) (i32.shl (local.get $j) (i32.const 2))))) (i32.shl (local.get $kb) (i32.const 2)))))))
          (local.set $j (i32.add (local.get $j) (i32.const 1)))
          (br $jLoop2)))
        (v128.store (i32.add (local.get $dst) (i32.shl (local.get $kb) (i32.const 2))) (local.get $a0))
        (local.set $kb (i32.add (local.get $kb) (i32.const 4)))
        (br $qLoop)))
      ;; then one at a time
      (block $tDone (loop $tLoop
        (br_if $tDone (i32.ge_u (local.get $kb) (local.get $K)))
        (local.set $sf (f32.const 0))
        (local.set $j (i32.const 0))
        (block $jDone3 (loop $jLoop3
          (br_if $jDone3 (i32.ge_u (local.get $j) (local.get $n)))
          (local.set $sf (f32.add (local.get $sf) (f32.mul
            (f32.load (i32.add (local.get $vals) (i32.shl (local.get $j) (i32.const 2))))
            (f32.load (i32.add (i32.add (local.get $w) (i32.load (i32.add (local.get $offs) (i32.shl (local.get $j) (i32.const 2))))) (i32.shl (local.get $kb) (i32.const 2)))))))
          (local.set $j (i32.add (local.get $j) (i32.const 1)))
          (br $jLoop3)))
        (f32.store (i32.add (local.get $dst) (i32.shl (local.get $kb) (i32.const 2))) (local.get $sf))
        (local.set $kb (i32.add (local.get $kb) (i32.const 1)))
        (br $tLoop)))
      (local.set $p (i32.add (local.get $p) (i32.const 1)))
      (br $pLoop)))
    (call $col2im_t (local.get $dx) (local.get $scratch) (local.get $C) (local.get $H) (local.get $W)
      (local.get $KH) (local.get $KW) (local.get $S) (local.get $pad) (local.get $OH) (local.get $OW)))

  ;; dx (C, H, W) = 0, then dx[c, oh·S − pad + kh, ow·S − pad + kw] += dcolᵀ[(oh, ow), (c, kh, kw)] for
  ;; the taps inside the image, in (oh, ow, c, kh, kw) order; a row of KW taps wholly inside
  ;; adds 4 at a time (distinct elements: the same per-element sequence).
  (func $col2im_t (param $dx i32) (param $dcolT i32) (param $C i32) (param $H i32) (param $W i32)
    (param $KH i32) (param $KW i32) (param $S i32) (param $pad i32) (param $OH i32) (param $OW i32)
    (local $oh i32) (local $ow i32) (local $c i32) (local $kh i32) (local $kw i32) (local $ih i32) (local $iw0 i32)
    (local $src i32) (local $dst i32) (local $kwLo i32) (local $kwHi i32) (local $vEnd i32)
    (memory.fill (local.get $dx) (i32.const 0) (i32.shl (i32.mul (local.get $C) (i32.mul (local.get $H) (local.get $W))) (i32.const 2)))
    (local.set $src (local.get $dcolT))
    (block $hDone (loop $hLoop
      (br_if $hDone (i32.ge_u (local.get $oh) (local.get $OH)))
      (local.set $ow (i32.const 0))
      (block $wDone (loop $wLoop
        (br_if $wDone (i32.ge_u (local.get $ow) (local.get $OW)))
        (local.set $iw0 (i32.sub (i32.mul (local.get $ow) (local.get $S)) (local.get $pad)))
        ;; kw with 0 ≤ iw0 + kw < W
        (local.set $kwLo (select (i32.sub (i32.const 0) (local.get $iw0)) (i32.const 0) (i32.lt_s (local.get $iw0) (i32.const 0))))
        (local.set $kwHi (select (i32.sub (local.get $W) (local.get $iw0)) (local.get $KW) (i32.lt_s (i32.sub (local.get $W) (local.get $iw0)) (local.get $KW))))
        (local.set $c (i32.const 0))
        (block $cDone (loop $cLoop
          (br_if $cDone (i32.ge_u (local.get $c) (local.get $C)))
          (local.set $kh (i32.const 0))
          (block $khDone (loop $khLoop
            (br_if $khDone (i32.ge_u (local.get $kh) (local.get $KH)))
            (local.set $ih (i32.add (i32.sub (i32.mul (local.get $oh) (local.get $S)) (local.get $pad)) (local.get $kh)))
            (if (i32.and (i32.ge_s (local.get $ih) (i32.const 0)) (i32.lt_s (local.get $ih) (local.get $H)))
              (then
                (local.set $dst (i32.add (local.get $dx) (i32.shl
                  (i32.add (i32.mul (i32.add (i32.mul (local.get $c) (local.get $H)) (local.get $ih)) (local.get $W)) (local.get $iw0))
                  (i32.const 2))))
                (local.set $kw (local.get $kwLo))
                (local.set $vEnd (i32.sub (local.get $kwHi) (i32.const 4)))
                (block $vDone (loop $vLoop
                  (br_if $vDone (i32.gt_s (local.get $kw) (local.get $vEnd)))
                  (v128.store (i32.add (local.get $dst) (i32.shl (local.get $kw) (i32.const 2)))
                    (f32x4.add (v128.load (i32.add (local.get $dst) (i32.shl (local.get $kw) (i32.const 2))))
                               (v128.load (i32.add (local.get $src) (i32.shl (local.get $kw) (i32.const 2))))))
                  (local.set $kw (i32.add (local.get $kw) (i32.const 4)))
                  (br $vLoop)))
                (block $sDone (loop $sLoop
                  (br_if $sDone (i32.ge_s (local.get $kw) (local.get $kwHi)))
                  (f32.store (i32.add (local.get $dst) (i32.shl (local.get $kw) (i32.const 2)))
                    (f32.add (f32.load (i32.add (local.get $dst) (i32.shl (local.get $kw) (i32.const 2))))
                             (f32.load (i32.add (local.get $src) (i32.shl (local.get $kw) (i32.const 2))))))
                  (local.set $kw (i32.add (local.get $kw) (i32.const 1)))
                  (br $sLoop)))))
            (local.set $src (i32.add (local.get $src) (i32.shl (local.get $KW) (i32.const 2))))
            (local.set $kh (i32.add (local.get $kh) (i32.const 1)))
            (br $khLoop)))
          (local.set $c (i32.add (local.get $c) (i32.const 1)))
          (br $cLoop)))
        (local.set $ow (i32.add (local.get $ow) (i32.const 1)))
        (br $wLoop)))
      (local.set $oh (i32.add (local.get $oh) (i32.const 1)))
      (br $hLoop))))

  ;; ---- the weight gradient, sparse in dout ----
  ;; sW (OC, K) += Σ_{p: dout[o, p] ≠ 0, in order} dout[o, p]·colᵀ[p, k] for one sample, with
  ;; colᵀ (P, K) the patches of x as rows: the dense sequence of conv2d_backward_weight's
  ;; sᵀ without its zero terms, so for finite operands the same bits (a sum that starts at
  ;; +0 never becomes −0, and adding ±0 to anything else changes nothing).
  ;; Scratch: colᵀ (P·K) at $colT, the list of one channel (P i32 offsets, P f32 values) at $list.
  (func $dw_sparse_sample (param $sW i32) (param $list i32) (param $colT i32) (param $dy i32) (param $x i32)
    (param $C i32) (param $H i32) (param $W i32) (param $KH i32) (param $KW i32) (param $OC i32)
    (param $OH i32) (param $OW i32) (param $S i32) (param $pad i32)
    (local $K i32) (local $P i32) (local $p i32) (local $o i32) (local $n i32) (local $v f32) (local $offs i32) (local $vals i32)
    (local $dst i32) (local $kb i32) (local $j i32) (local $r i32) (local $s v128) (local $sf f32)
    (local $a0 v128) (local $a1 v128) (local $a2 v128) (local $a3 v128) (local $a4 v128) (local $a5 v128) (local $a6 v128) (local $a7 v128)
    (local.set $K (i32.mul (local.get $C) (i32.mul (local.get $KH) (local.get $KW))))
    (local.set $P (i32.mul (local.get $OH) (local.get $OW)))
    (local.set $offs (local.get $list))
    (local.set $vals (i32.add (local.get $list) (i32.shl (local.get $P) (i32.const 2))))
    (call $im2col_t (local.get $colT) (local.get $x) (local.get $C) (local.get $H) (local.get $W)
      (local.get $KH) (local.get $KW) (local.get $S) (local.get $pad) (local.get $OH) (local.get $OW))
    (block $oDone (loop $oLoop
      (br_if $oDone (i32.ge_u (local.get $o) (local.get $OC)))
      (local.set $n (i32.const 0))
      (local.set $p (i32.const 0))
      (block $pDone (loop $pLoop
        (br_if $pDone (i32.ge_u (local.get $p) (local.get $P)))
        (local.set $v (f32.load (i32.add (local.get $dy) (i32.shl (i32.add (i32.mul (local.get $o) (local.get $P)) (local.get $p)) (i32.const 2)))))
        (i32.store (i32.add (local.get $offs) (i32.shl (local.get $n) (i32.const 2))) (i32.shl (i32.mul (local.get $p) (local.get $K)) (i32.const 2)))
        (f32.store (i32.add (local.get $vals) (i32.shl (local.get $n) (i32.const 2))) (local.get $v))
        (local.set $n (i32.add (local.get $n) (f32.ne (local.get $v) (f32.const 0))))
        (local.set $p (i32.add (local.get $p) (i32.const 1)))
        (br $pLoop)))
      (local.set $dst (i32.add (local.get $sW) (i32.shl (i32.mul (local.get $o) (local.get $K)) (i32.const 2))))
      (local.set $kb (i32.const 0))
      (block $bDone (loop $bLoop
        (br_if $bDone (i32.gt_u (i32.add (local.get $kb) (i32.const 32)) (local.get $K)))
        (local.set $r (i32.add (local.get $dst) (i32.shl (local.get $kb) (i32.const 2))))
        (local.set $a0 (v128.load (local.get $r))) (local.set $a1 (v128.load offset=16 (local.get $r)))
        (local.set $a2 (v128.load offset=32 (local.get $r))) (local.set $a3 (v128.load offset=48 (local.get $r)))
        (local.set $a4 (v128.load offset=64 (local.get $r))) (local.set $a5 (v128.load offset=80 (local.get $r)))
        (local.set $a6 (v128.load offset=96 (local.get $r))) (local.set $a7 (v128.load offset=112 (local.get $r)))
        (local.set $j (i32.const 0))
        (block $jDone (loop $jLoop
          (br_if $jDone (i32.ge_u (local.get $j) (local.get $n)))
          (local.set $s (v128.load32_splat (i32.add (local.get $vals) (i32.shl (local.get $j) (i32.const 2)))))
          (local.set $r (i32.add (i32.add (local.get $colT) (i32.load (i32.add (local.get $offs) (i32.shl (local.get $j) (i32.const 2))))) (i32.shl (local.get $kb) (i32.const 2))))
          (local.set $a0 (f32x4.add (local.get $a0) (f32x4.mul (local.get $s) (v128.load (local.get $r)))))
          (local.set $a1 (f32x4.add (local.get $a1) (f32x4.mul (local.get $s) (v128.load offset=16 (local.get $r)))))
          (local.set $a2 (f32x4.add (local.get $a2) (f32x4.mul (local.get $s) (v128.load offset=32 (local.get $r)))))
          (local.set $a3 (f32x4.add (local.get $a3) (f32x4.mul (local.get $s) (v128.load offset=48 (local.get $r)))))
          (local.set $a4 (f32x4.add (local.get $a4) (f32x4.mul (local.get $s) (v128.load offset=64 (local.get $r)))))
          (local.set $a5 (f32x4.add (local.get $a5) (f32x4.mul (local.get $s) (v128.load offset=80 (local.get $r)))))
          (local.set $a6 (f32x4.add (local.get $a6) (f32x4.mul (local.get $s) (v128.load offset=96 (local.get $r)))))
          (local.set $a7 (f32x4.add (local.get $a7) (f32x4.mul (local.get $s) (v128.load offset=112 (local.get $r)))))
          (local.set $j (i32.add (local.get $j) (i32.const 1)))
          (br $jLoop)))
        (local.set $r (i32.add (local.get $dst) (i32.shl (local.get $kb) (i32.const 2))))
        (v128.store (local.get $r) (local.get $a0)) (v128.store offset=16 (local.get $r) (local.get $a1))
        (v128.store offset=32 (local.get $r) (local.get $a2)) (v128.store offset=48 (local.get $r) (local.get $a3))
        (v128.store offset=64 (local.get $r) (local.get $a4)) (v128.store offset=80 (local.get $r) (local.get $a5))
        (v128.store offset=96 (local.get $r) (local.get $a6)) (v128.store offset=112 (local.get $r) (local.get $a7))
        (local.set $kb (i32.add (local.get $kb) (i32.const 32)))
        (br $bLoop)))
      (block $qDone (loop $qLoop
        (br_if $qDone (i32.gt_u (i32.add (local.get $kb) (i32.const 4)) (local.get $K)))
        (local.set $a0 (v128.load (i32.add (local.get $dst) (i32.shl (local.get $kb) (i32.const 2)))))
        (local.set $j (i32.const 0))
        (block $jDone2 (loop $jLoop2
          (br_if $jDone2 (i32.ge_u (local.get $j) (local.get $n)))
          (local.set $a0 (f32x4.add (local.get $a0) (f32x4.mul
            (v128.load32_splat (i32.add (local.get $vals) (i32.shl (local.get $j) (i32.const 2))))
            (v128.load (i32.add (i32.add (local.get $colT) (i32.load (i32.add (local.get $offs) (i32.shl (local.get $j) (i32.const 2))))) (i32.shl (local.get $kb) (i32.const 2)))))))
          (local.set $j (i32.add (local.get $j) (i32.const 1)))
          (br $jLoop2)))
        (v128.store (i32.add (local.get $dst) (i32.shl (local.get $kb) (i32.const 2))) (local.get $a0))
        (local.set $kb (i32.add (local.get $kb) (i32.const 4)))
        (br $qLoop)))
      (block $tDone (loop $tLoop
        (br_if $tDone (i32.ge_u (local.get $kb) (local.get $K)))
        (local.set $sf (f32.load (i32.add (local.get $dst) (i32.shl (local.get $kb) (i32.const 2)))))
        (local.set $j (i32.const 0))
        (block $jDone3 (loop $jLoop3
          (br_if $jDone3 (i32.ge_u (local.get $j) (local.get $n)))
          (local.set $sf (f32.add (local.get $sf) (f32.mul
            (f32.load (i32.add (local.get $vals) (i32.shl (local.get $j) (i32.const 2))))
            (f32.load (i32.add (i32.add (local.get $colT) (i32.load (i32.add (local.get $offs) (i32.shl (local.get $j) (i32.const 2))))) (i32.shl (local.get $kb) (i32.const 2)))))))
          (local.set $j (i32.add (local.get $j) (i32.const 1)))
          (br $jLoop3)))
        (f32.store (i32.add (local.get $dst) (i32.shl (local.get $kb) (i32.const 2))) (local.get $sf))
        (local.set $kb (i32.add (local.get $kb) (i32.const 1)))
        (br $tLoop)))
      (local.set $o (i32.add (local.get $o) (i32.const 1)))
      (br $oLoop))))

  ;; colᵀ (P, K) = the patches of x (C, H, W) as rows: colᵀ[(oh, ow), (c, kh, kw)] = x[c, oh·S − pad + kh,
  ;; ow·S − pad + kw], 0 in the padding. A row of KW taps is copied 4 at a time.
  (func $im2col_t (param $colT i32) (param $x i32) (param $C i32) (param $H i32) (param $W i32)
    (param $KH i32) (param $KW i32) (param $S i32) (param $pad i32) (param $OH i32) (param $OW i32)
    (local $oh i32) (local $ow i32) (local $c i32) (local $kh i32) (local $kw i32) (local $ih i32) (local $iw0 i32)
    (local $src i32) (local $dst i32) (local $kwLo i32) (local $kwHi i32) (local $vEnd i32)
    (if (local.get $pad)
      (then (memory.fill (local.get $colT) (i32.const 0)
        (i32.shl (i32.mul (i32.mul (local.get $OH) (local.get $OW)) (i32.mul (local.get $C) (i32.mul (local.get $KH) (local.get $KW)))) (i32.const 2)))))
    (local.set $dst (local.get $colT))
    (block $hDone (loop $hLoop
      (br_if $hDone (i32.ge_u (local.get $oh) (local.get $OH)))
      (local.set $ow (i32.const 0))
      (block $wDone (loop $wLoop
        (br_if $wDone (i32.ge_u (local.get $ow) (local.get $OW)))
        (local.set $iw0 (i32.sub (i32.mul (local.get $ow) (local.get $S)) (local.get $pad)))
        (local.set $kwLo (select (i32.sub (i32.const 0) (local.get $iw0)) (i32.const 0) (i32.lt_s (local.get $iw0) (i32.const 0))))
        (local.set $kwHi (select (i32.sub (local.get $W) (local.get $iw0)) (local.get $KW) (i32.lt_s (i32.sub (local.get $W) (local.get $iw0)) (local.get $KW))))
        (local.set $c (i32.const 0))
        (block $cDone (loop $cLoop
          (br_if $cDone (i32.ge_u (local.get $c) (local.get $C)))
          (local.set $kh (i32.const 0))
          (block $khDone (loop $khLoop
            (br_if $khDone (i32.ge_u (local.get $kh) (local.get $KH)))
            (local.set $ih (i32.add (i32.sub (i32.mul (local.get $oh) (local.get $S)) (local.get $pad)) (local.get $kh)))
            (if (i32.and (i32.ge_s (local.get $ih) (i32.const 0)) (i32.lt_s (local.get $ih) (local.get $H)))
              (then
                (local.set $src (i32.add (local.get $x) (i32.shl
                  (i32.add (i32.mul (i32.add (i32.mul (local.get $c) (local.get $H)) (local.get $ih)) (local.get $W)) (local.get $iw0))
                  (i32.const 2))))
                (local.set $kw (local.get $kwLo))
                (local.set $vEnd (i32.sub (local.get $kwHi) (i32.const 4)))
                (block $vDone (loop $vLoop
                  (br_if $vDone (i32.gt_s (local.get $kw) (local.get $vEnd)))
                  (v128.store (i32.add (local.get $dst) (i32.shl (local.get $kw) (i32.const 2)))
                    (v128.load (i32.add (local.get $src) (i32.shl (local.get $kw) (i32.const 2)))))
                  (local.set $kw (i32.add (local.get $kw) (i32.const 4)))
                  (br $vLoop)))
                                ;; a last partial quad of a row at least 4 wide: one more quad ending at kwHi (it
                ;; rewrites a few floats with the same values), not floats one at a time
                (if (i32.and (i32.lt_s (local.get $kw) (local.get $kwHi)) (i32.ge_s (i32.sub (local.get $kwHi) (local.get $kwLo)) (i32.const 4)))
                  (then
                    (v128.store (i32.add (local.get $dst) (i32.shl (i32.sub (local.get $kwHi) (i32.const 4)) (i32.const 2)))
                      (v128.load (i32.add (local.get $src) (i32.shl (i32.sub (local.get $kwHi) (i32.const 4)) (i32.const 2)))))
                    (local.set $kw (local.get $kwHi))))
                (block $sDone (loop $sLoop
                  (br_if $sDone (i32.ge_s (local.get $kw) (local.get $kwHi)))
                  (f32.store (i32.add (local.get $dst) (i32.shl (local.get $kw) (i32.const 2)))
                    (f32.load (i32.add (local.get $src) (i32.shl (local.get $kw) (i32.const 2)))))
                  (local.set $kw (i32.add (local.get $kw) (i32.const 1)))
                  (br $sLoop)))))
            (local.set $dst (i32.add (local.get $dst) (i32.shl (local.get $KW) (i32.const 2))))
            (local.set $kh (i32.add (local.get $kh) (i32.const 1)))
            (br $khLoop)))
          (local.set $c (i32.add (local.get $c) (i32.const 1)))
          (br $cLoop)))
        (local.set $ow (i32.add (local.get $ow) (i32.const 1)))
        (br $wLoop)))
      (local.set $oh (i32.add (local.get $oh) (i32.const 1)))
      (br $hLoop))))
)
