//! Depthwise 2-D convolution: one `k x k` filter per channel, any stride,
//! zero padding and dilation.

use crate::{dot, valid_range};
use rayon::prelude::*;

/// Geometry of a depthwise convolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DwParams {
    /// Kernel size (square).
    pub k: usize,
    /// Stride.
    pub stride: usize,
    /// Zero padding on each side.
    pub pad: usize,
    /// Dilation.
    pub dilation: usize,
    /// Apply ReLU to the input first (fused: no separate ReLU pass or node).
    pub relu: bool,
}

impl DwParams {
    /// Output size along one axis for input size `n`, if the window fits.
    pub fn out_size(&self, n: usize) -> Option<usize> {
        let span = self.dilation * (self.k.max(1) - 1) + 1;
        (n + 2 * self.pad)
            .checked_sub(span)
            .map(|r| r / self.stride.max(1) + 1)
    }

    /// For kernel tap `t`, the offset of the input position from `o * stride`.
    #[inline]
    fn off(&self, t: usize) -> isize {
        (t * self.dilation) as isize - self.pad as isize
    }
}

/// Input `[n, c, h, w]`, output `[n, c, oh, ow]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dims {
    /// Batch.
    pub n: usize,
    /// Channels.
    pub c: usize,
    /// Input height.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// Output height.
    pub oh: usize,
    /// Output width.
    pub ow: usize,
}

/// `y[n, c] = x[n, c] * w[c]` (cross-correlation); `w` is `[c, k, k]`.
pub fn forward(x: &[f32], wt: &[f32], p: &DwParams, d: Dims) -> Vec<f32> {
    let (h, w, oh, ow, kk) = (d.h, d.w, d.oh, d.ow, p.k * p.k);
    let mut out = vec![0f32; d.n * d.c * oh * ow];
    out.par_chunks_mut(oh * ow)
        .enumerate()
        .for_each(|(plane, o)| {
            let ch = plane % d.c;
            let xp = input_plane(x, plane, h * w, p.relu);
            let xp: &[f32] = &xp;
            let kw = &wt[ch * kk..(ch + 1) * kk];
            for oy in 0..oh {
                let orow = &mut o[oy * ow..(oy + 1) * ow];
                for ki in 0..p.k {
                    let iy = (oy * p.stride) as isize + p.off(ki);
                    if iy < 0 || iy >= h as isize {
                        continue;
                    }
                    let xrow = &xp[iy as usize * w..(iy as usize + 1) * w];
                    for kj in 0..p.k {
                        let wv = kw[ki * p.k + kj];
                        let dx = p.off(kj);
                        let (lo, hi) = valid_range(dx, p.stride, w, ow);
                        if lo == hi {
                            continue;
                        }
                        if p.stride == 1 {
                            let start = (lo as isize + dx) as usize;
                            let xs = &xrow[start..start + (hi - lo)];
                            for (o, xv) in orow[lo..hi].iter_mut().zip(xs) {
                                *o += wv * xv;
                            }
                        } else {
                            for (i, o) in orow[lo..hi].iter_mut().enumerate() {
                                *o += wv * xrow[(((lo + i) * p.stride) as isize + dx) as usize];
                            }
                        }
                    }
                }
            }
        });
    out
}

/// Plane `plane` of `x`, through ReLU when `relu`.
fn input_plane(x: &[f32], plane: usize, len: usize, relu: bool) -> std::borrow::Cow<'_, [f32]> {
    let xp = &x[plane * len..(plane + 1) * len];
    if relu {
        std::borrow::Cow::Owned(xp.iter().map(|v| v.max(0.0)).collect())
    } else {
        std::borrow::Cow::Borrowed(xp)
    }
}

/// Gradient with respect to the input (`x` gives the fused ReLU's mask),
/// from the output gradient `g`.
pub fn backward_input(x: &[f32], g: &[f32], wt: &[f32], p: &DwParams, d: Dims) -> Vec<f32> {
    let (h, w, oh, ow, kk) = (d.h, d.w, d.oh, d.ow, p.k * p.k);
    let mut out = vec![0f32; d.n * d.c * h * w];
    out.par_chunks_mut(h * w)
        .enumerate()
        .for_each(|(plane, dxp)| {
            let ch = plane % d.c;
            let gp = &g[plane * oh * ow..(plane + 1) * oh * ow];
            let kw = &wt[ch * kk..(ch + 1) * kk];
            for oy in 0..oh {
                let grow = &gp[oy * ow..(oy + 1) * ow];
                for ki in 0..p.k {
                    let iy = (oy * p.stride) as isize + p.off(ki);
                    if iy < 0 || iy >= h as isize {
                        continue;
                    }
                    let drow = &mut dxp[iy as usize * w..(iy as usize + 1) * w];
                    for kj in 0..p.k {
                        let wv = kw[ki * p.k + kj];
                        let dx = p.off(kj);
                        let (lo, hi) = valid_range(dx, p.stride, w, ow);
                        if p.stride == 1 && lo < hi {
                            let start = (lo as isize + dx) as usize;
                            for (dv, gv) in
                                drow[start..start + (hi - lo)].iter_mut().zip(&grow[lo..hi])
                            {
                                *dv += wv * gv;
                            }
                        } else {
                            for ox in lo..hi {
                                drow[((ox * p.stride) as isize + dx) as usize] += wv * grow[ox];
                            }
                        }
                    }
                }
            }
            if p.relu {
                let xp = &x[plane * h * w..(plane + 1) * h * w];
                for (dv, xv) in dxp.iter_mut().zip(xp) {
                    if *xv <= 0.0 {
                        *dv = 0.0;
                    }
                }
            }
        });
    out
}

/// Gradient with respect to the weights (`[c, k, k]`), summed over the batch.
pub fn backward_weight(x: &[f32], g: &[f32], p: &DwParams, d: Dims) -> Vec<f32> {
    let (h, w, oh, ow, kk) = (d.h, d.w, d.oh, d.ow, p.k * p.k);
    let mut out = vec![0f32; d.c * kk];
    out.par_chunks_mut(kk).enumerate().for_each(|(ch, dw)| {
        let mut acc = vec![0f64; kk];
        for b in 0..d.n {
            let plane = b * d.c + ch;
            let xp = input_plane(x, plane, h * w, p.relu);
            let xp: &[f32] = &xp;
            let gp = &g[plane * oh * ow..(plane + 1) * oh * ow];
            for oy in 0..oh {
                let grow = &gp[oy * ow..(oy + 1) * ow];
                for ki in 0..p.k {
                    let iy = (oy * p.stride) as isize + p.off(ki);
                    if iy < 0 || iy >= h as isize {
                        continue;
                    }
                    let xrow = &xp[iy as usize * w..(iy as usize + 1) * w];
                    for kj in 0..p.k {
                        let dx = p.off(kj);
                        let (lo, hi) = valid_range(dx, p.stride, w, ow);
                        let mut s = 0f32;
                        if p.stride == 1 && lo < hi {
                            let start = (lo as isize + dx) as usize;
                            s = dot(&grow[lo..hi], &xrow[start..start + (hi - lo)]);
                        } else {
                            for ox in lo..hi {
                                s += grow[ox] * xrow[((ox * p.stride) as isize + dx) as usize];
                            }
                        }
                        acc[ki * p.k + kj] += s as f64;
                    }
                }
            }
        }
        for (dv, a) in dw.iter_mut().zip(&acc) {
            *dv = *a as f32;
        }
    });
    out
}
