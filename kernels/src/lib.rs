//! Kernels of seki's candle evaluator, on contiguous `f32` NCHW slices:
//! depthwise convolution, padded max/average pooling and training-mode batch
//! normalisation, forward and backward, parallel over planes or channels;
//! and the CUDA versions of the convolution, pooling and ReLU kernels
//! ([`cuda`]: the source, its PTX and a host build for tests).
//!
//! A separate crate so that it is optimised in every build profile (the
//! parent's `[profile.dev.package.seki-kernels]`): the inner loops are what a
//! training step spends its time in, and unoptimised they are ~30x slower.
//! Callers check shapes; the functions assume consistent lengths.

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![warn(missing_docs)]

pub mod attention;
pub mod batchnorm;
pub mod cuda;
pub mod depthwise;
pub mod dwblock;
pub mod im2col;
pub mod pointwise;
pub mod pool;
pub mod quant;
pub mod relu;
#[macro_use]
pub mod simd;
mod uninit;

pub use depthwise::DwParams;
pub use pool::{PoolKind, PoolParams};

/// The output range `lo..hi` of positions `o` such that `o * stride + off`
/// is inside `0..len`, clipped to `0..out`.
#[inline]
pub fn valid_range(off: isize, stride: usize, len: usize, out: usize) -> (usize, usize) {
    let s = stride as isize;
    let lo = if off >= 0 { 0 } else { (-off + s - 1) / s };
    let last = len as isize - 1 - off;
    let hi = if last < 0 { 0 } else { last / s + 1 };
    let lo = (lo as usize).min(out);
    let hi = (hi as usize).min(out);
    (lo, hi.max(lo))
}

/// Values per parallel piece of row-wise work (norms, rotations,
/// activation quantization, transposes): under it, handing work to another
/// thread costs more than it saves.
const PAR_MIN: usize = 1 << 14;

/// Rows per parallel piece of `rows` rows of `width` values: all of them
/// when they are few or there is one thread, else about two pieces a thread
/// of at least [`PAR_MIN`] values each.
pub(crate) fn piece_rows(rows: usize, width: usize) -> usize {
    let threads = rayon::current_num_threads();
    if threads <= 1 || rows * width < 2 * PAR_MIN {
        return rows.max(1);
    }
    rows.div_ceil(2 * threads)
        .max(PAR_MIN.div_ceil(width.max(1)))
}

/// Run `f` on one of rayon's threads and wait for it. A caller outside the
/// pool that runs many small parallel steps (a transformer's products and
/// attentions, hundreds per decoded token) should: inside the pool each
/// step's parallel part runs with the calling thread taking part, while
/// from outside, every step is handed to the pool and the caller sleeps
/// until woken. Runs `f` here when already on a pool thread or with one
/// thread.
pub fn on_pool<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    if rayon::current_num_threads() <= 1 || rayon::current_thread_index().is_some() {
        return f();
    }
    rayon::scope(|_| f())
}

/// Dot product with 32 independent accumulators (so the compiler can
/// vectorise it: a plain `f32` fold cannot be reassociated), in the AVX2
/// build when the CPU has it.
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut out = 0.0;
    dot_into(a, b, &mut out);
    out
}

const ACC: usize = 32;

simd_fn! {
    fn dot_into<M>(a: &[f32], b: &[f32], out: &mut f32) {
        let n = a.len().min(b.len());
        let (a, b) = (&a[..n], &b[..n]);
        let mut acc = [0f32; ACC];
        let mut ca = a.chunks_exact(ACC);
        let mut cb = b.chunks_exact(ACC);
        for (x, y) in (&mut ca).zip(&mut cb) {
            for i in 0..ACC {
                acc[i] = M::madd(x[i], y[i], acc[i]);
            }
        }
        let mut s: f32 = acc.iter().sum();
        for (x, y) in ca.remainder().iter().zip(cb.remainder()) {
            s = M::madd(*x, *y, s);
        }
        *out = s;
    }
}

/// Sum with 32 independent accumulators (AVX2 build when available).
#[inline]
pub fn sum(a: &[f32]) -> f32 {
    let mut out = 0.0;
    sum_into(a, &mut out);
    out
}

simd_fn! {
    fn sum_into<M>(a: &[f32], out: &mut f32) {
        let mut acc = [0f32; ACC];
        let mut c = a.chunks_exact(ACC);
        for x in &mut c {
            for i in 0..ACC {
                acc[i] += x[i];
            }
        }
        *out = acc.iter().sum::<f32>() + c.remainder().iter().sum::<f32>();
    }
}

/// Test data shared by the kernels' tests.
#[cfg(test)]
pub(crate) mod testutil {
    /// `n` deterministic values in [-1, 1].
    pub fn values(n: usize, seed: u32) -> Vec<f32> {
        (0..n)
            .map(|i| (((i as u32).wrapping_mul(2654435761) ^ seed) % 2001) as f32 / 1000.0 - 1.0)
            .collect()
    }

    /// Plain, direct-loop references in f64, independent of every kernel
    /// (no blocking, no padding tricks, no SIMD), for the kernels' tests.
    pub mod naive {
        use crate::depthwise::{Dims, DwParams};

        /// The input position of output `o` and tap `t`, if inside `0..n`.
        fn at(o: usize, t: usize, p: &DwParams, n: usize) -> Option<usize> {
            let i = (o * p.stride + t * p.dilation) as isize - p.pad as isize;
            (i >= 0 && (i as usize) < n).then_some(i as usize)
        }

        /// Depthwise convolution (ReLU on the input first when `p.relu`):
        /// output, input gradient and weight gradient for output gradient `g`.
        pub fn depthwise(
            x: &[f32],
            wt: &[f32],
            g: &[f32],
            p: &DwParams,
            d: Dims,
        ) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
            let k = p.k;
            let mut y = vec![0f64; d.n * d.c * d.oh * d.ow];
            let mut dx = vec![0f64; d.n * d.c * d.h * d.w];
            let mut dw = vec![0f64; d.c * k * k];
            for b in 0..d.n {
                for ch in 0..d.c {
                    let plane = b * d.c + ch;
                    for oy in 0..d.oh {
                        for ox in 0..d.ow {
                            let o = (plane * d.oh + oy) * d.ow + ox;
                            for ki in 0..k {
                                for kj in 0..k {
                                    let (Some(iy), Some(ix)) =
                                        (at(oy, ki, p, d.h), at(ox, kj, p, d.w))
                                    else {
                                        continue;
                                    };
                                    let xi = (plane * d.h + iy) * d.w + ix;
                                    let raw = x[xi] as f64;
                                    let xv = if p.relu { raw.max(0.0) } else { raw };
                                    let wi = (ch * k + ki) * k + kj;
                                    y[o] += xv * wt[wi] as f64;
                                    dw[wi] += g[o] as f64 * xv;
                                    if !p.relu || raw > 0.0 {
                                        dx[xi] += g[o] as f64 * wt[wi] as f64;
                                    }
                                }
                            }
                        }
                    }
                }
            }
            let f = |v: Vec<f64>| v.into_iter().map(|a| a as f32).collect();
            (f(y), f(dx), f(dw))
        }

        /// Training-mode batch norm of `x: [n, c, hw]`: `y`, mean, biased
        /// variance, and the gradients of `x`, `gamma` and `beta` for `g`.
        #[allow(clippy::too_many_arguments)]
        pub fn batchnorm(
            x: &[f32],
            gamma: &[f32],
            beta: &[f32],
            g: &[f32],
            n: usize,
            c: usize,
            hw: usize,
            eps: f64,
        ) -> [Vec<f32>; 6] {
            let m = (n * hw) as f64;
            let idx = |b: usize, ch: usize, i: usize| (b * c + ch) * hw + i;
            let mut out: [Vec<f32>; 6] = Default::default();
            out[0] = vec![0.0; x.len()];
            out[3] = vec![0.0; x.len()];
            for ch in 0..c {
                let all: Vec<usize> = (0..n)
                    .flat_map(|b| (0..hw).map(move |i| idx(b, ch, i)))
                    .collect();
                let mean = all.iter().map(|&i| x[i] as f64).sum::<f64>() / m;
                let var = all
                    .iter()
                    .map(|&i| (x[i] as f64 - mean).powi(2))
                    .sum::<f64>()
                    / m;
                let inv = 1.0 / (var + eps).sqrt();
                let xhat = |i: usize| (x[i] as f64 - mean) * inv;
                let (gm, bt) = (gamma[ch] as f64, beta[ch] as f64);
                let dbeta: f64 = all.iter().map(|&i| g[i] as f64).sum();
                let dgamma: f64 = all.iter().map(|&i| g[i] as f64 * xhat(i)).sum();
                for &i in &all {
                    out[0][i] = (xhat(i) * gm + bt) as f32;
                    out[3][i] =
                        (gm * inv / m * (m * g[i] as f64 - dbeta - xhat(i) * dgamma)) as f32;
                }
                out[1].push(mean as f32);
                out[2].push(var as f32);
                out[4].push(dgamma as f32);
                out[5].push(dbeta as f32);
            }
            out
        }
    }

    /// `a` and `b` agree to a relative 1e-4.
    pub fn close(a: &[f32], b: &[f32], what: &str) {
        assert_eq!(a.len(), b.len(), "{what}");
        for (i, (u, v)) in a.iter().zip(b).enumerate() {
            assert!(
                (u - v).abs() <= 1e-4 * (1.0 + v.abs()),
                "{what}[{i}]: {u} vs {v}"
            );
        }
    }
}
