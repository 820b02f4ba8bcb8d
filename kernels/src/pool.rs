//! Max and average pooling with padding (average with
//! `count_include_pad = False`; padding never wins a max).

use rayon::prelude::*;

/// Max or average.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolKind {
    /// Maximum over the window's in-bounds cells.
    Max,
    /// Mean over the window's in-bounds cells (padding not counted).
    Avg,
}

/// Geometry of a pooling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolParams {
    /// Max or average.
    pub kind: PoolKind,
    /// Window size (square).
    pub k: usize,
    /// Stride.
    pub stride: usize,
    /// Padding on each side (below `k`).
    pub pad: usize,
}

impl PoolParams {
    /// Output size along one axis for input size `n`, if the window fits.
    pub fn out_size(&self, n: usize) -> Option<usize> {
        (n + 2 * self.pad)
            .checked_sub(self.k)
            .map(|r| r / self.stride.max(1) + 1)
    }

    /// The in-bounds input range `lo..hi` of the window at output `o`.
    #[inline]
    fn window(&self, o: usize, n: usize) -> (usize, usize) {
        let start = (o * self.stride) as isize - self.pad as isize;
        let lo = start.max(0) as usize;
        let hi = ((start + self.k as isize).max(0) as usize).min(n);
        (lo, hi.max(lo))
    }
}

/// Plane geometry: `planes` planes of `h x w` pooled to `oh x ow`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dims {
    /// `n * c`.
    pub planes: usize,
    /// Input height.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// Output height.
    pub oh: usize,
    /// Output width.
    pub ow: usize,
}

/// Pool every plane.
pub fn forward(x: &[f32], p: &PoolParams, d: Dims) -> Vec<f32> {
    let (h, w, oh, ow) = (d.h, d.w, d.oh, d.ow);
    let mut out = vec![0f32; d.planes * oh * ow];
    out.par_chunks_mut(oh * ow)
        .enumerate()
        .for_each(|(plane, o)| {
            let xp = &x[plane * h * w..(plane + 1) * h * w];
            for oy in 0..oh {
                let (y0, y1) = p.window(oy, h);
                for ox in 0..ow {
                    let (x0, x1) = p.window(ox, w);
                    o[oy * ow + ox] = match p.kind {
                        PoolKind::Max => {
                            let mut m = f32::NEG_INFINITY;
                            for iy in y0..y1 {
                                for &v in &xp[iy * w + x0..iy * w + x1] {
                                    if v > m || v.is_nan() {
                                        m = v;
                                    }
                                }
                            }
                            m
                        }
                        PoolKind::Avg => {
                            let mut s = 0f32;
                            for iy in y0..y1 {
                                s += xp[iy * w + x0..iy * w + x1].iter().sum::<f32>();
                            }
                            s / ((y1 - y0) * (x1 - x0)).max(1) as f32
                        }
                    };
                }
            }
        });
    out
}

/// Gradient with respect to the input: max routes each output gradient to
/// the first maximum of its window, average spreads it over the window.
pub fn backward(x: &[f32], g: &[f32], p: &PoolParams, d: Dims) -> Vec<f32> {
    let (h, w, oh, ow) = (d.h, d.w, d.oh, d.ow);
    let mut out = vec![0f32; d.planes * h * w];
    out.par_chunks_mut(h * w)
        .enumerate()
        .for_each(|(plane, dx)| {
            let xp = &x[plane * h * w..(plane + 1) * h * w];
            let gp = &g[plane * oh * ow..(plane + 1) * oh * ow];
            for oy in 0..oh {
                let (y0, y1) = p.window(oy, h);
                for ox in 0..ow {
                    let (x0, x1) = p.window(ox, w);
                    let gv = gp[oy * ow + ox];
                    match p.kind {
                        PoolKind::Max => {
                            let mut best = None;
                            let mut m = f32::NEG_INFINITY;
                            for iy in y0..y1 {
                                for ix in x0..x1 {
                                    let v = xp[iy * w + ix];
                                    if best.is_none() || v > m || v.is_nan() {
                                        m = v;
                                        best = Some(iy * w + ix);
                                    }
                                }
                            }
                            if let Some(i) = best {
                                dx[i] += gv;
                            }
                        }
                        PoolKind::Avg => {
                            let share = gv / ((y1 - y0) * (x1 - x0)).max(1) as f32;
                            for iy in y0..y1 {
                                for dv in &mut dx[iy * w + x0..iy * w + x1] {
                                    *dv += share;
                                }
                            }
                        }
                    }
                }
            }
        });
    out
}
