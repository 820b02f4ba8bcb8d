//! Pointwise (1x1) convolution as per-sample matrix products on the `gemm`
//! crate's SIMD micro-kernels (AVX2/FMA, AVX-512 or NEON, chosen at run
//! time), parallel over samples; optional ReLU on the input, fused.

use gemm::Parallelism;
use rayon::prelude::*;
use std::mem::MaybeUninit;

/// Shapes: input `[n, cin, hw]`, weight `[cout, cin]`, output `[n, cout, hw]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dims {
    /// Batch.
    pub n: usize,
    /// Input channels.
    pub cin: usize,
    /// Output channels.
    pub cout: usize,
    /// Pixels per channel.
    pub hw: usize,
}

/// A matrix operand: `rows x cols` elements of `data`, element `(r, c)` at
/// `r * rs + c * cs`.
#[derive(Clone, Copy)]
pub(crate) struct Mat<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
    rs: usize,
    cs: usize,
}

impl<'a> Mat<'a> {
    /// Row-major `rows x cols`.
    pub(crate) fn rows(data: &'a [f32], rows: usize, cols: usize) -> Self {
        Mat {
            data,
            rows,
            cols,
            rs: cols,
            cs: 1,
        }
    }

    /// The transpose (no copy).
    pub(crate) fn t(self) -> Self {
        Mat {
            data: self.data,
            rows: self.cols,
            cols: self.rows,
            rs: self.cs,
            cs: self.rs,
        }
    }

    /// Whether every element it addresses is inside `data`.
    fn fits(&self) -> bool {
        self.rows == 0
            || self.cols == 0
            || (self.rows - 1) * self.rs + (self.cols - 1) * self.cs < self.data.len()
    }
}

/// `out = a @ b` (or `out += a @ b` when `accumulate`), `out` row-major
/// `a.rows x b.cols`, single-threaded (callers parallelise over samples).
/// Mismatched operands leave `out` untouched.
pub(crate) fn matmul(out: &mut [f32], accumulate: bool, a: Mat<'_>, b: Mat<'_>) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    if b.rows != k || out.len() != m * n || !a.fits() || !b.fits() {
        debug_assert!(false, "pointwise: mismatched operands");
        return;
    }
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            out.fill(0.0);
        }
        return;
    }
    // SAFETY: `fits` checked that every element the strides address lies
    // inside each operand, and `out` holds exactly `m * n` values.
    unsafe { gemm_into(out.as_mut_ptr(), false, accumulate, a, b) }
}

/// `dst (+)= a @ b` on `gemm`, one thread: `dst` is `a.rows x b.cols`
/// row-major, or column-major (the transpose's row-major layout) when
/// `dst_t`. Without `accumulate`, `dst` is written in full and never read.
///
/// # Safety
/// `a` and `b` must fit their data and agree (`a.cols == b.rows`), and
/// `dst` must be valid for `a.rows * b.cols` writes (and reads when
/// accumulating).
unsafe fn gemm_into(dst: *mut f32, dst_t: bool, accumulate: bool, a: Mat<'_>, b: Mat<'_>) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    let (dst_cs, dst_rs) = if dst_t { (m, 1) } else { (1, n) };
    // SAFETY: the caller's contract.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst,
            dst_cs as isize,
            dst_rs as isize,
            accumulate,
            a.data.as_ptr(),
            a.cs as isize,
            a.rs as isize,
            b.data.as_ptr(),
            b.cs as isize,
            b.rs as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            Parallelism::None,
        )
    }
}

/// `out = a @ b` into an output not yet written (see [`crate::uninit`]):
/// every value of `out` is initialised on return, zeros where the operands
/// do not match.
pub(crate) fn matmul_to<'o>(
    out: &'o mut [MaybeUninit<f32>],
    a: Mat<'_>,
    b: Mat<'_>,
) -> &'o mut [f32] {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    if b.rows != k || out.len() != m * n || !a.fits() || !b.fits() {
        debug_assert!(false, "pointwise: mismatched operands");
        return crate::uninit::fill(out, 0.0);
    }
    if k == 0 {
        return crate::uninit::fill(out, 0.0);
    }
    if m > 0 && n > 0 {
        // SAFETY: the operands fit and agree (checked above); `gemm_into`
        // without accumulating writes all `m * n` values of `out`.
        unsafe { gemm_into(out.as_mut_ptr().cast::<f32>(), false, false, a, b) }
    }
    // SAFETY: `gemm` wrote all `m * n` values (none when either is 0).
    unsafe { crate::uninit::assume_init(out) }
}

/// Sample `b` of `x`, through ReLU (into `buf`, reused) when `relu`.
fn sample_input<'a>(
    x: &'a [f32],
    b: usize,
    d: Dims,
    relu: bool,
    buf: &'a mut Vec<f32>,
) -> &'a [f32] {
    let xs = &x[b * d.cin * d.hw..(b + 1) * d.cin * d.hw];
    if relu {
        buf.clear();
        buf.extend(xs.iter().map(|v| v.max(0.0)));
        buf
    } else {
        xs
    }
}

/// `y[b] = w @ relu?(x[b])`.
pub fn forward(x: &[f32], w: &[f32], d: Dims, relu: bool) -> Vec<f32> {
    let mut out = vec![0f32; d.n * d.cout * d.hw];
    out.par_chunks_mut(d.cout * d.hw.max(1))
        .enumerate()
        .for_each_init(Vec::new, |buf, (b, ys)| {
            let xs = sample_input(x, b, d, relu, buf);
            matmul(
                ys,
                false,
                Mat::rows(w, d.cout, d.cin),
                Mat::rows(xs, d.cin, d.hw),
            );
        });
    out
}

/// `dx[b] = w^T @ g[b]`, masked by `x > 0` when the ReLU is fused.
pub fn backward_input(x: &[f32], g: &[f32], w: &[f32], d: Dims, relu: bool) -> Vec<f32> {
    let mut out = vec![0f32; d.n * d.cin * d.hw];
    out.par_chunks_mut(d.cin * d.hw.max(1))
        .enumerate()
        .for_each(|(b, dxs)| {
            let gs = &g[b * d.cout * d.hw..(b + 1) * d.cout * d.hw];
            matmul(
                dxs,
                false,
                Mat::rows(w, d.cout, d.cin).t(),
                Mat::rows(gs, d.cout, d.hw),
            );
            if relu {
                let xs = &x[b * d.cin * d.hw..(b + 1) * d.cin * d.hw];
                for (dv, xv) in dxs.iter_mut().zip(xs) {
                    *dv = if *xv <= 0.0 { 0.0 } else { *dv };
                }
            }
        });
    out
}

/// `out[i * n + j] += sum_p a[i * k + p] * relu?(b[j * k + p])` for `a`
/// (`m x k`) and `b` (`n x k`), both row-major: the weight gradient of a
/// pointwise convolution for one sample, `g @ x^T`. `relu?(b)` goes through
/// `buf` (at least `n * k` values) when `relu`. Computed as
/// `out^T += relu?(b) @ a^T`, the orientation in which `gemm` runs these
/// long, thin products fastest (`k` up to 1024 pixels, `m, n` up to 256
/// channels; at `k = 1024` the other orientation's packing reads with a
/// 4 KiB stride). Mismatched operands leave `out` untouched.
#[allow(clippy::too_many_arguments)]
pub(crate) fn gram_acc(
    a: &[f32],
    m: usize,
    b: &[f32],
    n: usize,
    k: usize,
    relu: bool,
    buf: &mut [f32],
    out: &mut [f32],
) {
    if a.len() < m * k || b.len() < n * k || out.len() != m * n || (relu && buf.len() < n * k) {
        debug_assert!(false, "pointwise: mismatched gram operands");
        return;
    }
    if m == 0 || n == 0 || k == 0 {
        return;
    }
    let b = if relu {
        crate::depthwise::copy_row(&mut buf[..n * k], &b[..n * k], true);
        &buf[..n * k]
    } else {
        &b[..n * k]
    };
    // SAFETY: `b` (`n x k`) and `a^T` (`k x m`) lie inside their slices
    // (checked above); `out` holds the `n x m` product's transpose,
    // `m * n` values.
    unsafe {
        gemm_into(
            out.as_mut_ptr(),
            true,
            true,
            Mat::rows(b, n, k),
            Mat::rows(&a[..m * k], m, k).t(),
        )
    }
}

/// `dw = sum_b g[b] @ relu?(x[b])^T`.
pub fn backward_weight(x: &[f32], g: &[f32], d: Dims, relu: bool) -> Vec<f32> {
    let size = d.cout * d.cin;
    // Per-thread partial sums over its samples, then a reduction.
    let per_in = d.cin * d.hw;
    (0..d.n)
        .into_par_iter()
        .fold(
            || (vec![0f32; size], vec![0f32; if relu { per_in } else { 0 }]),
            |(mut dw, mut buf), b| {
                let xs = &x[b * per_in..(b + 1) * per_in];
                let gs = &g[b * d.cout * d.hw..(b + 1) * d.cout * d.hw];
                gram_acc(gs, d.cout, xs, d.cin, d.hw, relu, &mut buf, &mut dw);
                (dw, buf)
            },
        )
        .map(|(dw, _)| dw)
        .reduce(
            || vec![0f32; size],
            |mut a, b| {
                for (x, y) in a.iter_mut().zip(&b) {
                    *x += y;
                }
                a
            },
        )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::testutil::{close, values};

    /// The weight gradient against a plain f64 loop, at odd shapes, with and
    /// without the ReLU.
    #[test]
    fn gram_matches_plain_loops() {
        for &(m, n, k, relu) in &[
            (4, 2, 16, false),
            (5, 3, 19, true),
            (7, 9, 8, false),
            (1, 1, 3, true),
            (16, 16, 64, true),
            (3, 5, 0, false),
        ] {
            let a = values(m * k, 7);
            let b = values(n * k, 8);
            let base = values(m * n, 9);
            let mut got = base.clone();
            let mut buf = vec![f32::NAN; n * k];
            gram_acc(&a, m, &b, n, k, relu, &mut buf, &mut got);
            let want: Vec<f32> = (0..m * n)
                .map(|o| {
                    let (i, j) = (o / n, o % n);
                    let s: f64 = (0..k)
                        .map(|p| {
                            let bv = b[j * k + p] as f64;
                            a[i * k + p] as f64 * if relu { bv.max(0.0) } else { bv }
                        })
                        .sum();
                    (base[o] as f64 + s) as f32
                })
                .collect();
            close(&got, &want, &format!("gram {m}x{n}x{k} relu {relu}"));
        }
    }
}
