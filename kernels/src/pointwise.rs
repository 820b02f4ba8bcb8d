//! Pointwise (1x1) convolution as per-sample matrix products on the `gemm`
//! crate's SIMD micro-kernels (AVX2/FMA, AVX-512 or NEON, chosen at run
//! time), parallel over samples; optional ReLU on the input, fused.

use gemm::Parallelism;
use rayon::prelude::*;

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
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            out.as_mut_ptr(),
            1,
            n as isize,
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

/// `dw = sum_b g[b] @ relu?(x[b])^T`.
pub fn backward_weight(x: &[f32], g: &[f32], d: Dims, relu: bool) -> Vec<f32> {
    let size = d.cout * d.cin;
    // Per-thread partial sums over its samples, then a reduction.
    (0..d.n)
        .into_par_iter()
        .fold(
            || (vec![0f32; size], Vec::new()),
            |(mut dw, mut buf), b| {
                let xs = sample_input(x, b, d, relu, &mut buf);
                let gs = &g[b * d.cout * d.hw..(b + 1) * d.cout * d.hw];
                matmul(
                    &mut dw,
                    true,
                    Mat::rows(gs, d.cout, d.hw),
                    Mat::rows(xs, d.cin, d.hw).t(),
                );
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
