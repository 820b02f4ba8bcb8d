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

/// Dot product with eight independent accumulators, so the compiler can
/// vectorise it (a plain `f32` fold cannot be reassociated).
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0f32; 8];
    let mut ca = a.chunks_exact(8);
    let mut cb = b.chunks_exact(8);
    for (x, y) in (&mut ca).zip(&mut cb) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    let mut s: f32 = acc.iter().sum();
    for (x, y) in ca.remainder().iter().zip(cb.remainder()) {
        s += x * y;
    }
    s
}

/// Sum with eight independent accumulators.
#[inline]
pub fn sum(a: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let mut c = a.chunks_exact(8);
    for x in &mut c {
        for i in 0..8 {
            acc[i] += x[i];
        }
    }
    acc.iter().sum::<f32>() + c.remainder().iter().sum::<f32>()
}
