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

/// Rows of `a` per register tile of [`gram_acc`].
const TA: usize = 4;
/// Rows of `b` per register tile of [`gram_acc`].
const TB: usize = 2;
/// Lanes per vector of [`gram_acc`].
const GL: usize = 8;

crate::simd_fn! {
    /// `out[i * n + j] += sum_p a[i * k + p] * relu?(b[j * k + p])` for `a`
    /// (`m x k`) and `b` (`n x k`), both row-major: the weight gradient of a
    /// pointwise convolution for one sample, `g @ x^T`, straight from the
    /// two row-major planes (no packing, the ReLU applied as `b` is read)
    /// in `TA x TB` register tiles of `GL`-lane accumulators.
    pub(crate) fn gram_acc<M>(
        a: &[f32],
        m: usize,
        b: &[f32],
        n: usize,
        k: usize,
        relu: bool,
        out: &mut [f32],
    ) {
        let kv = k / GL * GL;
        let mut i0 = 0;
        while i0 < m {
            let mi = (m - i0).min(TA);
            let mut j0 = 0;
            while j0 < n {
                let nj = (n - j0).min(TB);
                // Ragged edges repeat the last row; those sums are dropped.
                let ar: [&[f32]; TA] =
                    std::array::from_fn(|t| &a[(i0 + t.min(mi - 1)) * k..][..k]);
                let br: [&[f32]; TB] =
                    std::array::from_fn(|t| &b[(j0 + t.min(nj - 1)) * k..][..k]);
                let mut acc = [[0f32; GL]; TA * TB];
                let mut p = 0;
                while p < kv {
                    let mut av = [[0f32; GL]; TA];
                    for t in 0..TA {
                        av[t].copy_from_slice(&ar[t][p..p + GL]);
                    }
                    for u in 0..TB {
                        let mut bv = [0f32; GL];
                        bv.copy_from_slice(&br[u][p..p + GL]);
                        if relu {
                            for v in bv.iter_mut() {
                                *v = v.max(0.0);
                            }
                        }
                        for t in 0..TA {
                            for l in 0..GL {
                                acc[t * TB + u][l] = M::madd(av[t][l], bv[l], acc[t * TB + u][l]);
                            }
                        }
                    }
                    p += GL;
                }
                for t in 0..mi {
                    for u in 0..nj {
                        let mut s: f32 = acc[t * TB + u].iter().sum();
                        for q in kv..k {
                            let bv = br[u][q];
                            let bv = if relu { bv.max(0.0) } else { bv };
                            s = M::madd(ar[t][q], bv, s);
                        }
                        out[(i0 + t) * n + j0 + u] += s;
                    }
                }
                j0 += TB;
            }
            i0 += TA;
        }
    }
}

/// `dw = sum_b g[b] @ relu?(x[b])^T`.
pub fn backward_weight(x: &[f32], g: &[f32], d: Dims, relu: bool) -> Vec<f32> {
    let size = d.cout * d.cin;
    // Per-thread partial sums over its samples, then a reduction.
    (0..d.n)
        .into_par_iter()
        .fold(
            || vec![0f32; size],
            |mut dw, b| {
                let xs = &x[b * d.cin * d.hw..(b + 1) * d.cin * d.hw];
                let gs = &g[b * d.cout * d.hw..(b + 1) * d.cout * d.hw];
                gram_acc(gs, d.cout, xs, d.cin, d.hw, relu, &mut dw);
                dw
            },
        )
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

    /// The register-tiled weight gradient against a plain f64 loop, at
    /// ragged tile edges and lengths that are not a multiple of the lanes.
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
            gram_acc(&a, m, &b, n, k, relu, &mut got);
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
