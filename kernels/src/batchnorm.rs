//! Training-mode batch normalisation over `N, H, W` per channel.

use crate::{dot, sum};
use rayon::prelude::*;

/// Batch statistics per channel.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stats {
    /// Batch mean.
    pub mean: Vec<f32>,
    /// Biased batch variance.
    pub var: Vec<f32>,
    /// `1 / sqrt(var + eps)`.
    pub invstd: Vec<f32>,
    /// Elements per channel (`n * hw`).
    pub count: usize,
}

/// `y = (x - mean) * invstd * gamma + beta` with the batch statistics of
/// `x: [n, c, hw]`; returns `y` and the statistics.
pub fn forward(
    x: &[f32],
    gamma: &[f32],
    beta: &[f32],
    n: usize,
    c: usize,
    hw: usize,
    eps: f64,
) -> (Vec<f32>, Stats) {
    let count = n * hw;
    let mv: Vec<(f32, f32)> = (0..c)
        .into_par_iter()
        .map(|ch| {
            let mut s = 0f64;
            for b in 0..n {
                let i = (b * c + ch) * hw;
                s += sum(&x[i..i + hw]) as f64;
            }
            let mean = s / count.max(1) as f64;
            let m = mean as f32;
            let mut q = 0f64;
            for b in 0..n {
                let i = (b * c + ch) * hw;
                let mut acc = [0f32; 8];
                let mut c8 = x[i..i + hw].chunks_exact(8);
                for v in &mut c8 {
                    for k in 0..8 {
                        acc[k] += (v[k] - m) * (v[k] - m);
                    }
                }
                let rest: f32 = c8.remainder().iter().map(|v| (v - m) * (v - m)).sum();
                q += (acc.iter().sum::<f32>() + rest) as f64;
            }
            (m, (q / count.max(1) as f64) as f32)
        })
        .collect();
    let mean: Vec<f32> = mv.iter().map(|m| m.0).collect();
    let var: Vec<f32> = mv.iter().map(|m| m.1).collect();
    let invstd: Vec<f32> = var
        .iter()
        .map(|v| 1.0 / ((*v as f64 + eps).sqrt() as f32))
        .collect();
    let mut out = vec![0f32; x.len()];
    out.par_chunks_mut(hw.max(1))
        .enumerate()
        .for_each(|(plane, o)| {
            let ch = plane % c;
            let a = invstd[ch] * gamma[ch];
            let b = beta[ch] - mean[ch] * a;
            for (y, v) in o.iter_mut().zip(&x[plane * hw..(plane + 1) * hw]) {
                *y = v * a + b;
            }
        });
    (
        out,
        Stats {
            mean,
            var,
            invstd,
            count,
        },
    )
}

/// Gradients `(dx, dgamma, dbeta)` from the output gradient `g`.
pub fn backward(
    x: &[f32],
    gamma: &[f32],
    g: &[f32],
    st: &Stats,
    n: usize,
    c: usize,
    hw: usize,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let sums: Vec<(f32, f32)> = (0..c)
        .into_par_iter()
        .map(|ch| {
            let (m, is) = (st.mean[ch], st.invstd[ch]);
            let (mut sd, mut sdx) = (0f64, 0f64);
            for b in 0..n {
                let i = (b * c + ch) * hw;
                let (gs, xs) = (&g[i..i + hw], &x[i..i + hw]);
                let a = sum(gs);
                // sum(g * (x - m)) = sum(g * x) - m * sum(g)
                let q = dot(gs, xs) - m * a;
                sd += a as f64;
                sdx += (q * is) as f64;
            }
            (sd as f32, sdx as f32)
        })
        .collect();
    let mut dx = vec![0f32; x.len()];
    let inv_count = 1.0 / st.count.max(1) as f32;
    dx.par_chunks_mut(hw.max(1))
        .enumerate()
        .for_each(|(plane, d)| {
            let ch = plane % c;
            let (m, is) = (st.mean[ch], st.invstd[ch]);
            let k = gamma[ch] * is;
            let md = sums[ch].0 * inv_count;
            let mdx = sums[ch].1 * inv_count * is;
            let i = plane * hw;
            for ((dv, gv), xv) in d.iter_mut().zip(&g[i..i + hw]).zip(&x[i..i + hw]) {
                *dv = k * (gv - md - (xv - m) * mdx);
            }
        });
    let dgamma = sums.iter().map(|s| s.1).collect();
    let dbeta = sums.iter().map(|s| s.0).collect();
    (dx, dgamma, dbeta)
}
