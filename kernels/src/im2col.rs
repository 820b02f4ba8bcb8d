//! `im2col` and its adjoint `col2im`, so a dense convolution becomes one
//! matrix product per sample (candle's own CPU conv2d is a direct loop).

use crate::depthwise::{Dims, DwParams};
use crate::valid_range;
use rayon::prelude::*;

/// Unfold `x: [n, c, h, w]` into columns `[n, c * k * k, oh * ow]` (zero
/// padding; row `ci * k * k + ki * k + kj` holds tap `(ki, kj)` of channel `ci`).
pub fn im2col(x: &[f32], p: &DwParams, d: Dims) -> Vec<f32> {
    let (h, w, oh, ow, kk) = (d.h, d.w, d.oh, d.ow, p.k * p.k);
    let rows = oh * ow;
    let mut out = vec![0f32; d.n * d.c * kk * rows];
    // One chunk per (sample, channel): its k*k rows.
    out.par_chunks_mut(kk * rows)
        .enumerate()
        .for_each(|(plane, o)| {
            let xp = &x[plane * h * w..(plane + 1) * h * w];
            for ki in 0..p.k {
                let dy = (ki * p.dilation) as isize - p.pad as isize;
                for kj in 0..p.k {
                    let dx = (kj * p.dilation) as isize - p.pad as isize;
                    let row = &mut o[(ki * p.k + kj) * rows..(ki * p.k + kj + 1) * rows];
                    let (lo, hi) = valid_range(dx, p.stride, w, ow);
                    for oy in 0..oh {
                        let iy = (oy * p.stride) as isize + dy;
                        if iy < 0 || iy >= h as isize || lo == hi {
                            continue;
                        }
                        let xrow = &xp[iy as usize * w..(iy as usize + 1) * w];
                        let orow = &mut row[oy * ow..(oy + 1) * ow];
                        if p.stride == 1 {
                            let start = (lo as isize + dx) as usize;
                            orow[lo..hi].copy_from_slice(&xrow[start..start + (hi - lo)]);
                        } else {
                            for (i, o) in orow[lo..hi].iter_mut().enumerate() {
                                *o = xrow[(((lo + i) * p.stride) as isize + dx) as usize];
                            }
                        }
                    }
                }
            }
        });
    out
}

/// The adjoint of [`im2col`]: sum columns `[n, c * k * k, oh * ow]` back
/// into `[n, c, h, w]`.
pub fn col2im(cols: &[f32], p: &DwParams, d: Dims) -> Vec<f32> {
    let (h, w, oh, ow, kk) = (d.h, d.w, d.oh, d.ow, p.k * p.k);
    let rows = oh * ow;
    let mut out = vec![0f32; d.n * d.c * h * w];
    out.par_chunks_mut(h * w)
        .enumerate()
        .for_each(|(plane, xp)| {
            let o = &cols[plane * kk * rows..(plane + 1) * kk * rows];
            for ki in 0..p.k {
                let dy = (ki * p.dilation) as isize - p.pad as isize;
                for kj in 0..p.k {
                    let dx = (kj * p.dilation) as isize - p.pad as isize;
                    let row = &o[(ki * p.k + kj) * rows..(ki * p.k + kj + 1) * rows];
                    let (lo, hi) = valid_range(dx, p.stride, w, ow);
                    for oy in 0..oh {
                        let iy = (oy * p.stride) as isize + dy;
                        if iy < 0 || iy >= h as isize || lo == hi {
                            continue;
                        }
                        let xrow = &mut xp[iy as usize * w..(iy as usize + 1) * w];
                        let orow = &row[oy * ow..(oy + 1) * ow];
                        if p.stride == 1 {
                            let start = (lo as isize + dx) as usize;
                            for (xv, ov) in
                                xrow[start..start + (hi - lo)].iter_mut().zip(&orow[lo..hi])
                            {
                                *xv += ov;
                            }
                        } else {
                            for (i, ov) in orow[lo..hi].iter().enumerate() {
                                xrow[(((lo + i) * p.stride) as isize + dx) as usize] += ov;
                            }
                        }
                    }
                }
            }
        });
    out
}
