//! Pointwise (1x1) convolution as per-sample matrix products, blocked over
//! pixels, parallel over samples; optional ReLU on the input, fused.

use crate::dot;
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

/// Pixels per block: one block of every input row stays in cache.
const BLOCK: usize = 256;

fn sample_input(x: &[f32], b: usize, d: Dims, relu: bool) -> std::borrow::Cow<'_, [f32]> {
    let xs = &x[b * d.cin * d.hw..(b + 1) * d.cin * d.hw];
    if relu {
        std::borrow::Cow::Owned(xs.iter().map(|v| v.max(0.0)).collect())
    } else {
        std::borrow::Cow::Borrowed(xs)
    }
}

/// `y[b] = w @ relu?(x[b])`.
pub fn forward(x: &[f32], w: &[f32], d: Dims, relu: bool) -> Vec<f32> {
    let mut out = vec![0f32; d.n * d.cout * d.hw];
    out.par_chunks_mut(d.cout * d.hw.max(1))
        .enumerate()
        .for_each(|(b, ys)| {
            let xs = sample_input(x, b, d, relu);
            // y[co, :] = sum_ci w[co, ci] * x[ci, :]
            matmul_rows(w, d.cout, d.cin, |co, ci| co * d.cin + ci, &xs, d.hw, ys);
        });
    out
}

/// `out[r, :] = sum_k a(r, k) * rows[k, :]` for `r < m`, `k < kdim`, rows
/// of length `len`; `a(r, k)` indexes `coef`. Four output rows at a time
/// share each loaded input vector (a register tile the compiler vectorises).
fn matmul_rows(
    coef: &[f32],
    m: usize,
    kdim: usize,
    a: impl Fn(usize, usize) -> usize,
    rows: &[f32],
    len: usize,
    out: &mut [f32],
) {
    const R: usize = 4;
    const L: usize = 8;
    for lo in (0..len).step_by(BLOCK) {
        let hi = (lo + BLOCK).min(len);
        let mut r0 = 0;
        while r0 + R <= m {
            let mut p = lo;
            while p + L <= hi {
                let mut acc = [[0f32; L]; R];
                for k in 0..kdim {
                    let xv: &[f32] = &rows[k * len + p..k * len + p + L];
                    for (j, accj) in acc.iter_mut().enumerate() {
                        let c = coef[a(r0 + j, k)];
                        for l in 0..L {
                            accj[l] += c * xv[l];
                        }
                    }
                }
                for (j, accj) in acc.iter().enumerate() {
                    out[(r0 + j) * len + p..(r0 + j) * len + p + L].copy_from_slice(accj);
                }
                p += L;
            }
            for r in r0..r0 + R {
                tail(coef, r, kdim, &a, rows, len, p, hi, out);
            }
            r0 += R;
        }
        for r in r0..m {
            tail(coef, r, kdim, &a, rows, len, lo, hi, out);
        }
    }
}

/// `out[r, p..hi] = sum_k a(r, k) * rows[k, p..hi]` (the edges of the tiles).
#[allow(clippy::too_many_arguments)]
#[inline]
fn tail(
    coef: &[f32],
    r: usize,
    kdim: usize,
    a: &impl Fn(usize, usize) -> usize,
    rows: &[f32],
    len: usize,
    p: usize,
    hi: usize,
    out: &mut [f32],
) {
    if p >= hi {
        return;
    }
    let orow = &mut out[r * len + p..r * len + hi];
    orow.fill(0.0);
    for k in 0..kdim {
        let c = coef[a(r, k)];
        for (o, xv) in orow.iter_mut().zip(&rows[k * len + p..k * len + hi]) {
            *o += c * xv;
        }
    }
}

/// `dx[b] = w^T @ g[b]`, masked by `x > 0` when the ReLU is fused.
pub fn backward_input(x: &[f32], g: &[f32], w: &[f32], d: Dims, relu: bool) -> Vec<f32> {
    let mut out = vec![0f32; d.n * d.cin * d.hw];
    out.par_chunks_mut(d.cin * d.hw.max(1))
        .enumerate()
        .for_each(|(b, dxs)| {
            let gs = &g[b * d.cout * d.hw..(b + 1) * d.cout * d.hw];
            // dx[ci, :] = sum_co w[co, ci] * g[co, :]
            matmul_rows(w, d.cin, d.cout, |ci, co| co * d.cin + ci, gs, d.hw, dxs);
            if relu {
                let xs = &x[b * d.cin * d.hw..(b + 1) * d.cin * d.hw];
                for (dv, xv) in dxs.iter_mut().zip(xs) {
                    if *xv <= 0.0 {
                        *dv = 0.0;
                    }
                }
            }
        });
    out
}

/// `dw = sum_b g[b] @ relu?(x[b])^T`.
pub fn backward_weight(x: &[f32], g: &[f32], d: Dims, relu: bool) -> Vec<f32> {
    // Per sample partial sums (parallel over samples), then a reduction.
    let partial: Vec<Vec<f32>> = (0..d.n)
        .into_par_iter()
        .map(|b| {
            let xs = sample_input(x, b, d, relu);
            let gs = &g[b * d.cout * d.hw..(b + 1) * d.cout * d.hw];
            let mut dw = vec![0f32; d.cout * d.cin];
            for co in 0..d.cout {
                let grow = &gs[co * d.hw..(co + 1) * d.hw];
                for ci in 0..d.cin {
                    dw[co * d.cin + ci] = dot(grow, &xs[ci * d.hw..(ci + 1) * d.hw]);
                }
            }
            dw
        })
        .collect();
    let mut out = vec![0f32; d.cout * d.cin];
    for p in &partial {
        for (o, v) in out.iter_mut().zip(p) {
            *o += v;
        }
    }
    out
}
