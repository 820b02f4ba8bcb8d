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
            for lo in (0..d.hw).step_by(BLOCK) {
                let hi = (lo + BLOCK).min(d.hw);
                for co in 0..d.cout {
                    let yrow = &mut ys[co * d.hw + lo..co * d.hw + hi];
                    for ci in 0..d.cin {
                        let a = w[co * d.cin + ci];
                        let xrow = &xs[ci * d.hw + lo..ci * d.hw + hi];
                        for (yv, xv) in yrow.iter_mut().zip(xrow) {
                            *yv += a * xv;
                        }
                    }
                }
            }
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
            for lo in (0..d.hw).step_by(BLOCK) {
                let hi = (lo + BLOCK).min(d.hw);
                for ci in 0..d.cin {
                    let drow = &mut dxs[ci * d.hw + lo..ci * d.hw + hi];
                    for co in 0..d.cout {
                        let a = w[co * d.cin + ci];
                        let grow = &gs[co * d.hw + lo..co * d.hw + hi];
                        for (dv, gv) in drow.iter_mut().zip(grow) {
                            *dv += a * gv;
                        }
                    }
                }
            }
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
