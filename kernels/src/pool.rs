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

/// The in-bounds windows `(lo, hi)` of every output position along an axis.
fn windows(p: &PoolParams, out: usize, n: usize) -> Vec<(usize, usize)> {
    (0..out).map(|o| p.window(o, n)).collect()
}

/// `m` or `v`, whichever is larger; NaN when either is (branch-free).
#[inline(always)]
fn max_nan(m: f32, v: f32) -> f32 {
    if v > m || v.is_nan() {
        v
    } else {
        m
    }
}

/// Pool every plane (separably: window maxima or sums along each row, then
/// down the columns). A max pool's output is NaN when its window has one.
pub fn forward(x: &[f32], p: &PoolParams, d: Dims) -> Vec<f32> {
    let (h, w, oh, ow) = (d.h, d.w, d.oh, d.ow);
    let (wy, wx) = (windows(p, oh, h), windows(p, ow, w));
    let max = p.kind == PoolKind::Max;
    let mut out = vec![0f32; d.planes * oh * ow];
    out.par_chunks_mut(oh * ow).enumerate().for_each_init(
        || vec![0f32; h * ow],
        |rows, (plane, o)| {
            let xp = &x[plane * h * w..(plane + 1) * h * w];
            // 3-wide, stride 1, padding 1 (the DARTS pools): the interior as
            // three shifted slices, which vectorises; the rest per window.
            let shifted = p.k == 3 && p.stride == 1 && p.pad == 1 && w == ow && w > 2;
            for iy in 0..h {
                let xr = &xp[iy * w..(iy + 1) * w];
                let rr = &mut rows[iy * ow..(iy + 1) * ow];
                for (ox, (r, &(x0, x1))) in rr.iter_mut().zip(&wx).enumerate() {
                    if shifted && ox > 0 && ox + 1 < w {
                        continue;
                    }
                    let win = &xr[x0..x1];
                    *r = if max {
                        win.iter().fold(f32::NEG_INFINITY, |m, &v| max_nan(m, v))
                    } else {
                        win.iter().sum()
                    };
                }
                if shifted {
                    let (a, b, c) = (&xr[..w - 2], &xr[1..w - 1], &xr[2..]);
                    let inner = &mut rr[1..w - 1];
                    if max {
                        for (((r, &u), &v), &z) in inner.iter_mut().zip(a).zip(b).zip(c) {
                            *r = max_nan(max_nan(max_nan(f32::NEG_INFINITY, u), v), z);
                        }
                    } else {
                        for (((r, &u), &v), &z) in inner.iter_mut().zip(a).zip(b).zip(c) {
                            *r = u + v + z;
                        }
                    }
                }
            }
            for (oy, &(y0, y1)) in wy.iter().enumerate() {
                let orow = &mut o[oy * ow..(oy + 1) * ow];
                orow.copy_from_slice(&rows[y0 * ow..(y0 + 1) * ow]);
                for iy in y0 + 1..y1 {
                    let r = &rows[iy * ow..(iy + 1) * ow];
                    if max {
                        for (v, &u) in orow.iter_mut().zip(r) {
                            *v = max_nan(*v, u);
                        }
                    } else {
                        for (v, &u) in orow.iter_mut().zip(r) {
                            *v += u;
                        }
                    }
                }
                if !max {
                    for (v, &(x0, x1)) in orow.iter_mut().zip(&wx) {
                        *v /= ((y1 - y0) * (x1 - x0)).max(1) as f32;
                    }
                }
            }
        },
    );
    out
}

/// Max-pool gradient given the forward output `y`: each output's gradient
/// goes to the first cell of its window (row-major) that holds its value
/// (NaN: the first NaN).
pub fn backward_max(x: &[f32], y: &[f32], g: &[f32], p: &PoolParams, d: Dims) -> Vec<f32> {
    let (h, w, oh, ow) = (d.h, d.w, d.oh, d.ow);
    let (wy, wx) = (windows(p, oh, h), windows(p, ow, w));
    let mut out = vec![0f32; d.planes * h * w];
    out.par_chunks_mut(h * w)
        .enumerate()
        .for_each(|(plane, dx)| {
            let xp = &x[plane * h * w..(plane + 1) * h * w];
            let (yp, gp) = (&y[plane * oh * ow..], &g[plane * oh * ow..]);
            for (oy, &(y0, y1)) in wy.iter().enumerate() {
                for (ox, &(x0, x1)) in wx.iter().enumerate() {
                    let (t, gv) = (yp[oy * ow + ox], gp[oy * ow + ox]);
                    let nan = t.is_nan();
                    'window: for iy in y0..y1 {
                        for ix in x0..x1 {
                            let v = xp[iy * w + ix];
                            if v == t || (nan && v.is_nan()) {
                                dx[iy * w + ix] += gv;
                                break 'window;
                            }
                        }
                    }
                }
            }
        });
    out
}

/// Gradient with respect to the input: max routes each output gradient to
/// the first maximum of its window, average spreads it over the window.
pub fn backward(x: &[f32], g: &[f32], p: &PoolParams, d: Dims) -> Vec<f32> {
    match p.kind {
        PoolKind::Max => backward_max(x, &forward(x, p, d), g, p, d),
        PoolKind::Avg => backward_avg(g, p, d),
    }
}

/// Average-pool gradient: each output's gradient over its cell count,
/// spread back over its window (vertical, then horizontal).
fn backward_avg(g: &[f32], p: &PoolParams, d: Dims) -> Vec<f32> {
    let (h, w, oh, ow) = (d.h, d.w, d.oh, d.ow);
    let (wy, wx) = (windows(p, oh, h), windows(p, ow, w));
    let mut out = vec![0f32; d.planes * h * w];
    out.par_chunks_mut(h * w).enumerate().for_each_init(
        || (vec![0f32; h * ow], vec![0f32; ow]),
        |(rows, scaled), (plane, dx)| {
            let gp = &g[plane * oh * ow..(plane + 1) * oh * ow];
            rows.fill(0.0);
            for (oy, &(y0, y1)) in wy.iter().enumerate() {
                for ((s, gv), &(x0, x1)) in
                    scaled.iter_mut().zip(&gp[oy * ow..(oy + 1) * ow]).zip(&wx)
                {
                    *s = gv / ((y1 - y0) * (x1 - x0)).max(1) as f32;
                }
                for iy in y0..y1 {
                    for (r, s) in rows[iy * ow..(iy + 1) * ow].iter_mut().zip(scaled.iter()) {
                        *r += s;
                    }
                }
            }
            for iy in 0..h {
                let dr = &mut dx[iy * w..(iy + 1) * w];
                for (ox, &(x0, x1)) in wx.iter().enumerate() {
                    let r = rows[iy * ow + ox];
                    for v in &mut dr[x0..x1] {
                        *v += r;
                    }
                }
            }
        },
    );
    out
}
