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
    // 3-wide, padding 1 (the DARTS pools): with stride 1 the interior as
    // three shifted slices, which vectorises; with stride 2 the same over
    // the row's odd and even values (output `ox` in `1..w / 2` covers
    // `2ox - 1, 2ox, 2ox + 1`); the rest per window.
    let shifted = p.k == 3 && p.stride == 1 && p.pad == 1 && w == ow && w > 2;
    let halves = p.k == 3 && p.stride == 2 && p.pad == 1 && w >= 4 && ow == w.div_ceil(2);
    out.par_chunks_mut(oh * ow).enumerate().for_each_init(
        || (vec![0f32; h * ow], vec![0f32; w]),
        |(rows, split), (plane, o)| {
            let xp = &x[plane * h * w..(plane + 1) * h * w];
            let shape = PlaneShape {
                h,
                w,
                ow,
                max,
                shifted,
                halves,
            };
            pool_plane(xp, o, rows, split, &wx, &wy, shape);
        },
    );
    out
}

/// How [`pool_plane`] runs: the plane's size, max or average, and which
/// vectorised row pass applies (see [`forward`]).
#[derive(Clone, Copy)]
struct PlaneShape {
    h: usize,
    w: usize,
    ow: usize,
    max: bool,
    shifted: bool,
    halves: bool,
}

crate::simd_fn! {
    /// One plane of [`forward`] into `o`: window maxima or sums along each
    /// row into `rows`, then down the columns (`split` holds a row's even
    /// and odd values for the stride-2 pass).
    fn pool_plane<M>(
        xp: &[f32],
        o: &mut [f32],
        rows: &mut [f32],
        split: &mut [f32],
        wx: &[(usize, usize)],
        wy: &[(usize, usize)],
        shape: PlaneShape,
    ) {
        let PlaneShape { h, w, ow, max, shifted, halves } = shape;
        for iy in 0..h {
            let xr = &xp[iy * w..(iy + 1) * w];
            let rr = &mut rows[iy * ow..(iy + 1) * ow];
            for (ox, (r, &(x0, x1))) in rr.iter_mut().zip(wx).enumerate() {
                if (shifted && ox > 0 && ox + 1 < w) || (halves && ox > 0 && ox < w / 2) {
                    continue;
                }
                let win = &xr[x0..x1];
                *r = if max {
                    win.iter().fold(f32::NEG_INFINITY, |m, &v| max_nan(m, v))
                } else {
                    win.iter().sum()
                };
            }
            if halves {
                let (even, odd) = split.split_at_mut(w.div_ceil(2));
                for (e, &v) in even.iter_mut().zip(xr.iter().step_by(2)) {
                    *e = v;
                }
                for (d, &v) in odd.iter_mut().zip(xr.iter().skip(1).step_by(2)) {
                    *d = v;
                }
                let n = w / 2 - 1;
                let (a, b, c) = (&odd[..n], &even[1..=n], &odd[1..=n]);
                let inner = &mut rr[1..=n];
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
                for (v, &(x0, x1)) in orow.iter_mut().zip(wx) {
                    *v /= ((y1 - y0) * (x1 - x0)).max(1) as f32;
                }
            }
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Each output straight from its window, by definition.
    fn reference(x: &[f32], p: &PoolParams, d: Dims) -> Vec<f32> {
        let mut out = Vec::new();
        for plane in 0..d.planes {
            for oy in 0..d.oh {
                for ox in 0..d.ow {
                    let (y0, y1) = p.window(oy, d.h);
                    let (x0, x1) = p.window(ox, d.w);
                    let cells: Vec<f32> = (y0..y1)
                        .flat_map(|y| (x0..x1).map(move |xx| (y, xx)))
                        .map(|(y, xx)| x[plane * d.h * d.w + y * d.w + xx])
                        .collect();
                    out.push(match p.kind {
                        PoolKind::Max if cells.iter().any(|v| v.is_nan()) => f32::NAN,
                        PoolKind::Max => cells.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v)),
                        PoolKind::Avg => cells.iter().sum::<f32>() / cells.len() as f32,
                    });
                }
            }
        }
        out
    }

    /// The 3-wide DARTS pools (stride 1 and 2, padding 1; the fast row
    /// paths) and others against the definition, at even and odd sizes,
    /// with a NaN in one plane.
    #[test]
    fn pools_match_their_definition() {
        for (k, stride, pad) in [(3, 1, 1), (3, 2, 1), (2, 2, 0), (5, 3, 2)] {
            for kind in [PoolKind::Max, PoolKind::Avg] {
                let p = PoolParams {
                    kind,
                    k,
                    stride,
                    pad,
                };
                for (h, w) in [(4, 4), (5, 7), (8, 9), (3, 10), (7, 6)] {
                    let (Some(oh), Some(ow)) = (p.out_size(h), p.out_size(w)) else {
                        continue;
                    };
                    let d = Dims {
                        planes: 3,
                        h,
                        w,
                        oh,
                        ow,
                    };
                    let mut x: Vec<f32> = (0..3 * h * w)
                        .map(|i| ((i * 7919 % 113) as f32 - 56.0) / 9.0)
                        .collect();
                    x[2 * h * w + w + 1] = f32::NAN;
                    let got = forward(&x, &p, d);
                    let want = reference(&x, &p, d);
                    assert_eq!(got.len(), want.len());
                    for (i, (a, b)) in got.iter().zip(&want).enumerate() {
                        assert!(
                            (a.is_nan() && b.is_nan()) || (a - b).abs() <= 1e-5 * (1.0 + b.abs()),
                            "{p:?} {h}x{w}: output {i} is {a}, want {b}"
                        );
                    }
                }
            }
        }
    }
}
