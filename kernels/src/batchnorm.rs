//! Training-mode batch normalisation over `N, H, W` per channel.

use crate::{dot, sum};
use rayon::prelude::*;
use std::mem::MaybeUninit;

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
                let mut s = 0f32;
                squared_deviations(&x[i..i + hw], m, &mut s);
                q += s as f64;
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
            affine(&x[plane * hw..(plane + 1) * hw], a, b, o);
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
    // Room for the two parameter gradients after it: callers that pack all
    // three into one buffer (the candle op) then extend without a copy.
    let mut dx = Vec::with_capacity(x.len() + 2 * c);
    dx.resize(x.len(), 0f32);
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
            input_gradient(&g[i..i + hw], &x[i..i + hw], k, md, m, mdx, d);
        });
    let dgamma = sums.iter().map(|s| s.1).collect();
    let dbeta = sums.iter().map(|s| s.0).collect();
    (dx, dgamma, dbeta)
}

crate::simd_fn! {
    /// `out = sum (v - m)^2` over `x`.
    pub(crate) fn squared_deviations<M>(x: &[f32], m: f32, out: &mut f32) {
        const A: usize = 32;
        let mut acc = [0f32; A];
        let mut c = x.chunks_exact(A);
        for v in &mut c {
            for k in 0..A {
                let d = v[k] - m;
                acc[k] = M::madd(d, d, acc[k]);
            }
        }
        let rest: f32 = c.remainder().iter().map(|v| (v - m) * (v - m)).sum();
        *out = acc.iter().sum::<f32>() + rest;
    }
}

crate::simd_fn! {
    /// `y = x * a + b`.
    pub(crate) fn affine<M>(x: &[f32], a: f32, b: f32, y: &mut [f32]) {
        for (o, v) in y.iter_mut().zip(x) {
            *o = M::madd(*v, a, b);
        }
    }
}

crate::simd_fn! {
    /// `y = x * a + b` into values not yet written, as far as both reach.
    fn affine_uninit<M>(x: &[f32], a: f32, b: f32, y: &mut [MaybeUninit<f32>]) {
        for (o, v) in y.iter_mut().zip(x) {
            o.write(M::madd(*v, a, b));
        }
    }
}

crate::simd_fn! {
    /// `y = (x * a + b) + r` into values not yet written, as far as all
    /// three reach.
    fn affine_add_uninit<M>(x: &[f32], a: f32, b: f32, r: &[f32], y: &mut [MaybeUninit<f32>]) {
        for ((o, v), rv) in y.iter_mut().zip(x).zip(r) {
            o.write(M::madd(*v, a, b) + rv);
        }
    }
}

/// `y = x * a + b`, plus `r` when given (a residual summed in: the bits
/// of a separate addition), into an output not yet written (see
/// [`crate::uninit`]); returned initialised, zeros past the shorter input.
pub(crate) fn affine_to<'y>(
    x: &[f32],
    a: f32,
    b: f32,
    r: Option<&[f32]>,
    y: &'y mut [MaybeUninit<f32>],
) -> &'y mut [f32] {
    let n = match r {
        Some(r) => {
            affine_add_uninit(x, a, b, r, y);
            r.len()
        }
        None => {
            affine_uninit(x, a, b, y);
            y.len()
        }
    };
    let n = n.min(x.len()).min(y.len());
    crate::uninit::fill(&mut y[n..], 0.0);
    // SAFETY: the first `n` values were written by the kernel above, the
    // rest just above.
    unsafe { crate::uninit::assume_init(y) }
}

/// `x = x * a + b`, plus `r` when given.
pub(crate) fn affine_in_place(x: &mut [f32], a: f32, b: f32, r: Option<&[f32]>) {
    match r {
        Some(r) => affine_add_in_place(x, a, b, r),
        None => affine_scale_in_place(x, a, b),
    }
}

crate::simd_fn! {
    /// `x = (x * a + b) + r`.
    fn affine_add_in_place<M>(x: &mut [f32], a: f32, b: f32, r: &[f32]) {
        for (v, rv) in x.iter_mut().zip(r) {
            *v = M::madd(*v, a, b) + rv;
        }
    }
}

crate::simd_fn! {
    /// `x = x * a + b`.
    fn affine_scale_in_place<M>(x: &mut [f32], a: f32, b: f32) {
        for v in x.iter_mut() {
            *v = M::madd(*v, a, b);
        }
    }
}

crate::simd_fn! {
    /// `dx = k * (g - md - (x - m) * mdx)`.
    pub(crate) fn input_gradient<M>(g: &[f32], x: &[f32], k: f32, md: f32, m: f32, mdx: f32, dx: &mut [f32]) {
        for ((d, gv), xv) in dx.iter_mut().zip(g).zip(x) {
            *d = k * (gv - md - (xv - m) * mdx);
        }
    }
}
