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

pub mod batchnorm;
pub mod cuda;
pub mod depthwise;
pub mod im2col;
pub mod pointwise;
pub mod pool;
pub mod relu;
#[macro_use]
pub mod simd;

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
