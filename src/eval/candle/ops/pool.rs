//! 2-D max and average pooling with padding (average with
//! `count_include_pad = False`), forward and backward, parallel over planes.

use super::{dims4, f32_slice};
use candle_core::{bail, CpuStorage, CustomOp1, CustomOp2, Layout, Result, Shape, Tensor};
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
    /// Padding on each side (must be below `k`).
    pub pad: usize,
}

impl PoolParams {
    /// Output size along one axis for input size `n`, if the window fits.
    pub fn out_size(&self, n: usize) -> Option<usize> {
        (n + 2 * self.pad).checked_sub(self.k).map(|r| r / self.stride + 1)
    }

    fn check(&self, op: &str, h: usize, w: usize) -> Result<(usize, usize)> {
        if self.k == 0 || self.stride == 0 || self.pad >= self.k {
            bail!("{op}: need kernel > padding >= 0 and stride > 0")
        }
        match (self.out_size(h), self.out_size(w)) {
            (Some(a), Some(b)) if a > 0 && b > 0 => Ok((a, b)),
            _ => bail!("{op}: input {h}x{w} is smaller than the {}x{} window", self.k, self.k),
        }
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

/// Pool `x: [N, C, H, W]`.
pub fn pool2d(x: &Tensor, p: PoolParams) -> Result<Tensor> {
    x.contiguous()?.apply_op1(Pool(p))
}

struct Pool(PoolParams);

impl CustomOp1 for Pool {
    fn name(&self) -> &'static str {
        match self.0.kind {
            PoolKind::Max => "max-pool2d",
            PoolKind::Avg => "avg-pool2d",
        }
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let p = self.0;
        let (n, c, h, w) = dims4(self.name(), l)?;
        let (oh, ow) = p.check(self.name(), h, w)?;
        let x = f32_slice(self.name(), s, l)?;
        let mut out = vec![0f32; n * c * oh * ow];
        out.par_chunks_mut(oh * ow).enumerate().for_each(|(plane, o)| {
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
        Ok((CpuStorage::F32(out), Shape::from_dims(&[n, c, oh, ow])))
    }

    fn cuda_fwd(&self, s: &candle_core::CudaStorage, l: &Layout) -> Result<(candle_core::CudaStorage, Shape)> {
        super::gpu::op1(self, s, l)
    }

    fn bwd(&self, x: &Tensor, _res: &Tensor, g: &Tensor) -> Result<Option<Tensor>> {
        let g = g.contiguous()?;
        Ok(Some(x.apply_op2_no_bwd(&g, &PoolBwd(self.0))?))
    }
}

/// `(x, grad) -> dx`.
struct PoolBwd(PoolParams);

impl CustomOp2 for PoolBwd {
    fn name(&self) -> &'static str {
        "pool2d-bwd"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let p = self.0;
        let (n, c, h, w) = dims4(self.name(), l1)?;
        let (oh, ow) = p.check(self.name(), h, w)?;
        if l2.dims() != [n, c, oh, ow] {
            bail!("{}: gradient shape {:?}, expected [{n}, {c}, {oh}, {ow}]", self.name(), l2.dims())
        }
        let x = f32_slice(self.name(), s1, l1)?;
        let gr = f32_slice(self.name(), s2, l2)?;
        let mut out = vec![0f32; n * c * h * w];
        out.par_chunks_mut(h * w).enumerate().for_each(|(plane, dx)| {
            let xp = &x[plane * h * w..(plane + 1) * h * w];
            let gp = &gr[plane * oh * ow..(plane + 1) * oh * ow];
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
                                for d in &mut dx[iy * w + x0..iy * w + x1] {
                                    *d += share;
                                }
                            }
                        }
                    }
                }
            }
        });
        Ok((CpuStorage::F32(out), Shape::from_dims(&[n, c, h, w])))
    }

    fn cuda_fwd(
        &self,
        s1: &candle_core::CudaStorage,
        l1: &Layout,
        s2: &candle_core::CudaStorage,
        l2: &Layout,
    ) -> Result<(candle_core::CudaStorage, Shape)> {
        super::gpu::op2(self, s1, l1, s2, l2)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{grad_check, rand_tensor};
    use super::*;

    #[test]
    fn unpadded_pools_match_candle() {
        let x = rand_tensor(&[2, 3, 8, 8], 5);
        for kind in [PoolKind::Max, PoolKind::Avg] {
            let p = PoolParams { kind, k: 2, stride: 2, pad: 0 };
            let a = pool2d(&x, p).unwrap();
            let b = match kind {
                PoolKind::Max => x.max_pool2d(2).unwrap(),
                PoolKind::Avg => x.avg_pool2d(2).unwrap(),
            };
            let d = (a - b).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
            assert!(d < 1e-6, "{kind:?}: {d}");
        }
    }

    #[test]
    fn avg_excludes_padding() {
        let x = Tensor::ones((1, 1, 3, 3), candle_core::DType::F32, &candle_core::Device::Cpu).unwrap();
        let p = PoolParams { kind: PoolKind::Avg, k: 3, stride: 1, pad: 1 };
        let y = pool2d(&x, p).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert!(y.iter().all(|v| (v - 1.0).abs() < 1e-6), "{y:?}");
    }

    #[test]
    fn gradients_match_finite_differences() {
        for kind in [PoolKind::Max, PoolKind::Avg] {
            for (k, s, pad) in [(3, 1, 1), (3, 2, 1), (5, 3, 0)] {
                let p = PoolParams { kind, k, stride: s, pad };
                let x = rand_tensor(&[2, 2, 7, 8], 6);
                grad_check(&x, &|t| pool2d(t, p).unwrap(), 1e-3, "pool");
            }
        }
    }
}
