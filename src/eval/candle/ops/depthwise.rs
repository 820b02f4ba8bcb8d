//! Depthwise 2-D convolution (one `k x k` filter per channel) with any
//! stride, padding and dilation, forward and backward, parallel over planes.

use super::{dims4, f32_slice, valid_range};
use candle_core::{bail, CpuStorage, CustomOp2, Layout, Result, Shape, Tensor};
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
}

impl DwParams {
    /// Output size along one axis for input size `n`, if the window fits.
    pub fn out_size(&self, n: usize) -> Option<usize> {
        let span = self.dilation * (self.k - 1) + 1;
        (n + 2 * self.pad).checked_sub(span).map(|r| r / self.stride + 1)
    }

    fn check(&self, op: &str, h: usize, w: usize) -> Result<(usize, usize)> {
        if self.k == 0 || self.stride == 0 || self.dilation == 0 {
            bail!("{op}: kernel, stride and dilation must be positive")
        }
        match (self.out_size(h), self.out_size(w)) {
            (Some(a), Some(b)) if a > 0 && b > 0 => Ok((a, b)),
            _ => bail!("{op}: input {h}x{w} is smaller than the {}x{} window", self.k, self.k),
        }
    }

    /// For kernel tap `t`, the offset of the input position from `o * stride`.
    #[inline]
    fn off(&self, t: usize) -> isize {
        (t * self.dilation) as isize - self.pad as isize
    }
}

/// `y = depthwise(x, w)` for `x: [N, C, H, W]`, `w: [C, 1, k, k]`.
pub fn depthwise_conv2d(x: &Tensor, w: &Tensor, p: DwParams) -> Result<Tensor> {
    x.contiguous()?.apply_op2(&w.contiguous()?, DwConv(p))
}

struct DwConv(DwParams);

/// Shapes shared by the three kernels.
#[derive(Clone, Copy)]
struct Geo {
    h: usize,
    w: usize,
    oh: usize,
    ow: usize,
}

fn check_weight(op: &str, l: &Layout, c: usize, k: usize) -> Result<()> {
    if l.dims() != [c, 1, k, k] {
        bail!("{op}: weight shape {:?}, expected [{c}, 1, {k}, {k}]", l.dims())
    }
    Ok(())
}

impl CustomOp2 for DwConv {
    fn name(&self) -> &'static str {
        "depthwise-conv2d"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let p = self.0;
        let (n, c, h, w) = dims4(self.name(), l1)?;
        check_weight(self.name(), l2, c, p.k)?;
        let (oh, ow) = p.check(self.name(), h, w)?;
        let x = f32_slice(self.name(), s1, l1)?;
        let wt = f32_slice(self.name(), s2, l2)?;
        let mut out = vec![0f32; n * c * oh * ow];
        out.par_chunks_mut(oh * ow).enumerate().for_each(|(plane, o)| {
            let ch = plane % c;
            let xp = &x[plane * h * w..(plane + 1) * h * w];
            let kw = &wt[ch * p.k * p.k..(ch + 1) * p.k * p.k];
            plane_fwd(xp, kw, o, &p, Geo { h, w, oh, ow });
        });
        Ok((CpuStorage::F32(out), Shape::from_dims(&[n, c, oh, ow])))
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

    fn bwd(&self, x: &Tensor, w: &Tensor, _res: &Tensor, g: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let g = g.contiguous()?;
        let gx = g.apply_op2_no_bwd(w, &DwBwdInput { p: self.0, h: x.dim(2)?, w: x.dim(3)? })?;
        let gw = x.apply_op2_no_bwd(&g, &DwBwdWeight(self.0))?;
        Ok((Some(gx), Some(gw)))
    }
}

fn plane_fwd(x: &[f32], kw: &[f32], out: &mut [f32], p: &DwParams, g: Geo) {
    for oy in 0..g.oh {
        let orow = &mut out[oy * g.ow..(oy + 1) * g.ow];
        for ki in 0..p.k {
            let iy = (oy * p.stride) as isize + p.off(ki);
            if iy < 0 || iy >= g.h as isize {
                continue;
            }
            let xrow = &x[iy as usize * g.w..(iy as usize + 1) * g.w];
            for kj in 0..p.k {
                let wv = kw[ki * p.k + kj];
                let dx = p.off(kj);
                let (lo, hi) = valid_range(dx, p.stride, g.w, g.ow);
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
}

/// Gradient with respect to the input: `(grad [N,C,OH,OW], w) -> [N,C,H,W]`.
struct DwBwdInput {
    p: DwParams,
    h: usize,
    w: usize,
}

impl candle_core::CustomOp2 for DwBwdInput {
    fn name(&self) -> &'static str {
        "depthwise-conv2d-bwd-input"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let p = self.p;
        let (n, c, oh, ow) = dims4(self.name(), l1)?;
        check_weight(self.name(), l2, c, p.k)?;
        let (h, w) = (self.h, self.w);
        let gr = f32_slice(self.name(), s1, l1)?;
        let wt = f32_slice(self.name(), s2, l2)?;
        let mut out = vec![0f32; n * c * h * w];
        out.par_chunks_mut(h * w).enumerate().for_each(|(plane, dxp)| {
            let ch = plane % c;
            let gp = &gr[plane * oh * ow..(plane + 1) * oh * ow];
            let kw = &wt[ch * p.k * p.k..(ch + 1) * p.k * p.k];
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
                            for (d, gv) in drow[start..start + (hi - lo)].iter_mut().zip(&grow[lo..hi]) {
                                *d += wv * gv;
                            }
                        } else {
                            for ox in lo..hi {
                                drow[((ox * p.stride) as isize + dx) as usize] += wv * grow[ox];
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

/// Gradient with respect to the weight: `(x, grad) -> [C,1,k,k]`.
struct DwBwdWeight(DwParams);

impl candle_core::CustomOp2 for DwBwdWeight {
    fn name(&self) -> &'static str {
        "depthwise-conv2d-bwd-weight"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let p = self.0;
        let (n, c, h, w) = dims4(self.name(), l1)?;
        let (n2, c2, oh, ow) = dims4(self.name(), l2)?;
        if (n2, c2) != (n, c) || p.check(self.name(), h, w)? != (oh, ow) {
            bail!("{}: gradient shape {:?} does not match input {:?}", self.name(), l2.dims(), l1.dims())
        }
        let x = f32_slice(self.name(), s1, l1)?;
        let gr = f32_slice(self.name(), s2, l2)?;
        let kk = p.k * p.k;
        let mut out = vec![0f32; c * kk];
        out.par_chunks_mut(kk).enumerate().for_each(|(ch, dw)| {
            let mut acc = vec![0f64; kk];
            for b in 0..n {
                let plane = b * c + ch;
                let xp = &x[plane * h * w..(plane + 1) * h * w];
                let gp = &gr[plane * oh * ow..(plane + 1) * oh * ow];
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
                                for (gv, xv) in grow[lo..hi].iter().zip(&xrow[start..start + (hi - lo)]) {
                                    s += gv * xv;
                                }
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
            for (d, a) in dw.iter_mut().zip(&acc) {
                *d = *a as f32;
            }
        });
        Ok((CpuStorage::F32(out), Shape::from_dims(&[c, 1, p.k, p.k])))
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

    fn reference(x: &Tensor, w: &Tensor, p: DwParams) -> Tensor {
        let c = x.dim(1).unwrap();
        x.conv2d(w, p.pad, p.stride, p.dilation, c).unwrap()
    }

    #[test]
    fn forward_matches_grouped_conv2d() {
        for (k, s, pad, d) in [(3, 1, 1, 1), (3, 2, 1, 1), (5, 1, 2, 1), (5, 2, 2, 1), (3, 1, 2, 2), (5, 2, 4, 2), (3, 2, 0, 1)] {
            let p = DwParams { k, stride: s, pad, dilation: d };
            let x = rand_tensor(&[2, 3, 9, 8], 1);
            let w = rand_tensor(&[3, 1, k, k], 2);
            let a = depthwise_conv2d(&x, &w, p).unwrap();
            let b = reference(&x, &w, p);
            assert_eq!(a.dims(), b.dims(), "{p:?}");
            let diff = (a - b).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
            assert!(diff < 1e-5, "{p:?}: {diff}");
        }
    }

    #[test]
    fn gradients_match_finite_differences() {
        for (k, s, pad, d) in [(3, 1, 1, 1), (3, 2, 1, 1), (5, 2, 4, 2)] {
            let p = DwParams { k, stride: s, pad, dilation: d };
            let w = rand_tensor(&[2, 1, k, k], 3);
            let x = rand_tensor(&[2, 2, 7, 6], 4);
            grad_check(&x, &|t| depthwise_conv2d(t, &w, p).unwrap(), 1e-2, "dw input");
            grad_check(&w, &|t| depthwise_conv2d(&x, t, p).unwrap(), 1e-2, "dw weight");
        }
    }

    #[test]
    fn too_small_input_is_an_error() {
        let p = DwParams { k: 5, stride: 1, pad: 0, dilation: 2 };
        let x = rand_tensor(&[1, 1, 4, 4], 1);
        let w = rand_tensor(&[1, 1, 5, 5], 1);
        assert!(depthwise_conv2d(&x, &w, p).is_err());
    }
}
