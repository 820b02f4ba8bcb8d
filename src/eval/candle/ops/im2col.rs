//! `im2col` as a candle op (backward: `col2im`), for dense convolutions as
//! matrix products (kernels in `seki-kernels`).

use super::{dims4, f32_slice};
#[cfg(feature = "cuda")]
use candle_core::CudaStorage;
use candle_core::{bail, CpuStorage, CustomOp1, Layout, Result, Shape, Tensor};
use seki_kernels::depthwise::Dims;
use seki_kernels::im2col as k;
use seki_kernels::DwParams;

/// Unfold `x: [N, C, H, W]` into `[N, C * k * k, OH * OW]`; returns the
/// columns and `(OH, OW)`.
pub fn im2col(x: &Tensor, p: DwParams) -> Result<(Tensor, (usize, usize))> {
    let (_, _, h, w) = x.dims4()?;
    let (Some(oh), Some(ow)) = (p.out_size(h), p.out_size(w)) else {
        bail!(
            "im2col: input {h}x{w} is smaller than the {k}x{k} window",
            k = p.k
        )
    };
    Ok((x.contiguous()?.apply_op1(Im2Col(p))?, (oh, ow)))
}

fn geometry(op: &str, p: &DwParams, l: &Layout) -> Result<Dims> {
    let (n, c, h, w) = dims4(op, l)?;
    if p.k == 0 || p.stride == 0 || p.dilation == 0 {
        bail!("{op}: kernel, stride and dilation must be positive")
    }
    match (p.out_size(h), p.out_size(w)) {
        (Some(oh), Some(ow)) if oh > 0 && ow > 0 => Ok(Dims { n, c, h, w, oh, ow }),
        _ => bail!(
            "{op}: input {h}x{w} is smaller than the {k}x{k} window",
            k = p.k
        ),
    }
}

struct Im2Col(DwParams);

impl CustomOp1 for Im2Col {
    fn name(&self) -> &'static str {
        "im2col"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let d = geometry(self.name(), &self.0, l)?;
        let cols = k::im2col(f32_slice(self.name(), s, l)?, &self.0, d);
        Ok((
            CpuStorage::F32(cols),
            Shape::from_dims(&[d.n, d.c * self.0.k * self.0.k, d.oh * d.ow]),
        ))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(&self, s: &CudaStorage, l: &Layout) -> Result<(CudaStorage, Shape)> {
        let d = geometry(self.name(), &self.0, l)?;
        use super::gpu::{self, names, Launch};
        let kk = self.0.k * self.0.k;
        let k = Launch::per_output(names::IM2COL, d.n * d.c * kk * d.oh * d.ow);
        let arg = gpu::conv_args(self.name(), &self.0, d)?;
        let cols = gpu::run(self.name(), k, &[(s, l)], arg)?;
        Ok((cols, Shape::from_dims(&[d.n, d.c * kk, d.oh * d.ow])))
    }

    fn bwd(&self, x: &Tensor, _res: &Tensor, g: &Tensor) -> Result<Option<Tensor>> {
        let g = g.contiguous()?;
        Ok(Some(x.apply_op2_no_bwd(&g, &Col2Im(self.0))?))
    }
}

/// `(x (for its shape), grad of the columns) -> dx`.
struct Col2Im(DwParams);

impl Col2Im {
    /// The geometry, with the column gradient's shape checked.
    fn geometry(&self, x: &Layout, cols: &Layout) -> Result<Dims> {
        let name = "col2im";
        let d = geometry(name, &self.0, x)?;
        if cols.dims() != [d.n, d.c * self.0.k * self.0.k, d.oh * d.ow] {
            bail!(
                "{name}: column gradient shape {:?} does not match",
                cols.dims()
            )
        }
        Ok(d)
    }
}

impl candle_core::CustomOp2 for Col2Im {
    fn name(&self) -> &'static str {
        "col2im"
    }

    fn cpu_fwd(
        &self,
        _s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let d = self.geometry(l1, l2)?;
        let dx = k::col2im(f32_slice(self.name(), s2, l2)?, &self.0, d);
        Ok((CpuStorage::F32(dx), Shape::from_dims(&[d.n, d.c, d.h, d.w])))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        _s1: &CudaStorage,
        l1: &Layout,
        s2: &CudaStorage,
        l2: &Layout,
    ) -> Result<(CudaStorage, Shape)> {
        let d = self.geometry(l1, l2)?;
        use super::gpu::{self, names, Launch};
        let k = Launch::per_output(names::COL2IM, d.n * d.c * d.h * d.w);
        let arg = gpu::conv_args(self.name(), &self.0, d)?;
        let dx = gpu::run(self.name(), k, &[(s2, l2)], arg)?;
        Ok((dx, Shape::from_dims(&[d.n, d.c, d.h, d.w])))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{grad_check, max_diff, rand_tensor};
    use super::*;

    fn conv_via_im2col(x: &Tensor, w: &Tensor, p: DwParams) -> Tensor {
        let (n, _, _, _) = x.dims4().unwrap();
        let cout = w.dim(0).unwrap();
        let (cols, (oh, ow)) = im2col(x, p).unwrap();
        let wm = w.reshape((cout, ())).unwrap();
        wm.broadcast_left(n)
            .unwrap()
            .matmul(&cols)
            .unwrap()
            .reshape((n, cout, oh, ow))
            .unwrap()
    }

    #[test]
    fn convolution_by_im2col_matches_conv2d() {
        for (k, s, pad, d) in [
            (3, 1, 1, 1),
            (3, 2, 1, 1),
            (1, 2, 0, 1),
            (2, 1, 0, 1),
            (5, 2, 4, 2),
        ] {
            let p = DwParams {
                k,
                stride: s,
                pad,
                dilation: d,
                relu: false,
            };
            let x = rand_tensor(&[2, 3, 9, 8], 11);
            let w = rand_tensor(&[4, 3, k, k], 12);
            let a = conv_via_im2col(&x, &w, p);
            let b = x.conv2d(&w, pad, s, d, 1).unwrap();
            let diff = max_diff(&a, &b);
            assert!(diff < 1e-5, "{p:?}: {diff}");
        }
    }

    #[test]
    fn gradients_match_finite_differences() {
        for (k, s, pad) in [(3, 1, 1), (3, 2, 1), (1, 2, 0)] {
            let p = DwParams {
                k,
                stride: s,
                pad,
                dilation: 1,
                relu: false,
            };
            let x = rand_tensor(&[2, 2, 7, 6], 13);
            grad_check(&x, &|t| im2col(t, p).unwrap().0, 1e-2, "im2col");
        }
    }
}
