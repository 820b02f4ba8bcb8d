//! Depthwise 2-D convolution (one `k x k` filter per channel) with any
//! stride, padding and dilation, as a candle op with a hand-written backward
//! (kernels in `seki-kernels`).

use super::{dims4, f32_slice};
#[cfg(feature = "cuda")]
use candle_core::CudaStorage;
use candle_core::{bail, CpuStorage, CustomOp2, Layout, Result, Shape, Tensor};
use seki_kernels::depthwise::{self as k, Dims};
pub use seki_kernels::DwParams;

/// `y = depthwise(x, w)` for `x: [N, C, H, W]`, `w: [C, 1, k, k]`.
pub fn depthwise_conv2d(x: &Tensor, w: &Tensor, p: DwParams) -> Result<Tensor> {
    x.contiguous()?.apply_op2(&w.contiguous()?, DwConv(p))
}

fn geometry(op: &str, p: &DwParams, x: &Layout, w: &Layout) -> Result<Dims> {
    let (n, c, h, wd) = dims4(op, x)?;
    if p.k == 0 || p.stride == 0 || p.dilation == 0 {
        bail!("{op}: kernel, stride and dilation must be positive")
    }
    if w.dims() != [c, 1, p.k, p.k] {
        bail!(
            "{op}: weight shape {:?}, expected [{c}, 1, {k}, {k}]",
            w.dims(),
            k = p.k
        )
    }
    match (p.out_size(h), p.out_size(wd)) {
        (Some(oh), Some(ow)) if oh > 0 && ow > 0 => Ok(Dims {
            n,
            c,
            h,
            w: wd,
            oh,
            ow,
        }),
        _ => bail!(
            "{op}: input {h}x{wd} is smaller than the {k}x{k} window",
            k = p.k
        ),
    }
}

struct DwConv(DwParams);

impl CustomOp2 for DwConv {
    fn name(&self) -> &'static str {
        "depthwise-conv2d"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let d = geometry(self.name(), &self.0, l1, l2)?;
        let y = k::forward(
            f32_slice(self.name(), s1, l1)?,
            f32_slice(self.name(), s2, l2)?,
            &self.0,
            d,
        );
        Ok((
            CpuStorage::F32(y),
            Shape::from_dims(&[d.n, d.c, d.oh, d.ow]),
        ))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s1: &CudaStorage,
        l1: &Layout,
        s2: &CudaStorage,
        l2: &Layout,
    ) -> Result<(CudaStorage, Shape)> {
        let d = geometry(self.name(), &self.0, l1, l2)?;
        use super::gpu::{self, names, Launch};
        let k = Launch::per_output(names::DW_FWD, d.n * d.c * d.oh * d.ow);
        let arg = gpu::conv_args(self.name(), &self.0, d)?;
        let y = gpu::run(self.name(), k, &[(s1, l1), (s2, l2)], arg)?;
        Ok((y, Shape::from_dims(&[d.n, d.c, d.oh, d.ow])))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _res: &Tensor,
        g: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        super::grads_of_x_and_w(x, w, g, |input| DwBwd { p: self.0, input })
    }
}

/// `(x, w, grad) -> dx` (`input`) or `dw`.
struct DwBwd {
    p: DwParams,
    input: bool,
}

impl DwBwd {
    /// The geometry, with the gradient's shape checked against the output.
    fn geometry(&self, x: &Layout, w: &Layout, g: &Layout) -> Result<Dims> {
        let name = "depthwise-conv2d-bwd";
        let d = geometry(name, &self.p, x, w)?;
        if g.dims() != [d.n, d.c, d.oh, d.ow] {
            bail!(
                "{name}: gradient shape {:?} does not match the output",
                g.dims()
            )
        }
        Ok(d)
    }

    fn shape(&self, d: Dims) -> Shape {
        if self.input {
            Shape::from_dims(&[d.n, d.c, d.h, d.w])
        } else {
            Shape::from_dims(&[d.c, 1, self.p.k, self.p.k])
        }
    }
}

impl candle_core::CustomOp3 for DwBwd {
    fn name(&self) -> &'static str {
        "depthwise-conv2d-bwd"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let d = self.geometry(l1, l2, l3)?;
        let g = f32_slice(self.name(), s3, l3)?;
        let x = f32_slice(self.name(), s1, l1)?;
        let out = if self.input {
            k::backward_input(x, g, f32_slice(self.name(), s2, l2)?, &self.p, d)
        } else {
            k::backward_weight(x, g, &self.p, d)
        };
        Ok((CpuStorage::F32(out), self.shape(d)))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s1: &CudaStorage,
        l1: &Layout,
        s2: &CudaStorage,
        l2: &Layout,
        s3: &CudaStorage,
        l3: &Layout,
    ) -> Result<(CudaStorage, Shape)> {
        use super::gpu::{self, names, Launch};
        let d = self.geometry(l1, l2, l3)?;
        let arg = gpu::conv_args(self.name(), &self.p, d)?;
        let out = if self.input {
            let k = Launch::per_output(names::DW_BWD_INPUT, d.n * d.c * d.h * d.w);
            gpu::run(self.name(), k, &[(s1, l1), (s2, l2), (s3, l3)], arg)?
        } else {
            let kk = self.p.k * self.p.k;
            let k = Launch {
                name: names::DW_BWD_WEIGHT,
                out: d.c * kk,
                threads: d.c * kk * d.n,
                zeroed: true,
            };
            gpu::run(self.name(), k, &[(s1, l1), (s3, l3)], arg)?
        };
        Ok((out, self.shape(d)))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{grad_check, max_diff, rand_tensor};
    use super::*;

    fn reference(x: &Tensor, w: &Tensor, p: DwParams) -> Tensor {
        let c = x.dim(1).unwrap();
        x.conv2d(w, p.pad, p.stride, p.dilation, c).unwrap()
    }

    #[test]
    fn forward_matches_grouped_conv2d() {
        for (k, s, pad, d) in [
            (3, 1, 1, 1),
            (3, 2, 1, 1),
            (5, 1, 2, 1),
            (5, 2, 2, 1),
            (3, 1, 2, 2),
            (5, 2, 4, 2),
            (3, 2, 0, 1),
        ] {
            let p = DwParams {
                k,
                stride: s,
                pad,
                dilation: d,
                relu: false,
            };
            let x = rand_tensor(&[2, 3, 9, 8], 1);
            let w = rand_tensor(&[3, 1, k, k], 2);
            let a = depthwise_conv2d(&x, &w, p).unwrap();
            let b = reference(&x, &w, p);
            assert_eq!(a.dims(), b.dims(), "{p:?}");
            let diff = max_diff(&a, &b);
            assert!(diff < 1e-5, "{p:?}: {diff}");
        }
    }

    #[test]
    fn gradients_match_finite_differences() {
        for (k, s, pad, d) in [(3, 1, 1, 1), (3, 2, 1, 1), (5, 2, 4, 2)] {
            let p = DwParams {
                k,
                stride: s,
                pad,
                dilation: d,
                relu: false,
            };
            let w = rand_tensor(&[2, 1, k, k], 3);
            let x = rand_tensor(&[2, 2, 7, 6], 4);
            grad_check(
                &x,
                &|t| depthwise_conv2d(t, &w, p).unwrap(),
                1e-2,
                "dw input",
            );
            grad_check(
                &w,
                &|t| depthwise_conv2d(&x, t, p).unwrap(),
                1e-2,
                "dw weight",
            );
        }
    }

    #[test]
    fn fused_relu_matches_relu_then_convolution() {
        let p = DwParams {
            k: 3,
            stride: 2,
            pad: 1,
            dilation: 1,
            relu: true,
        };
        let x = rand_tensor(&[2, 3, 9, 8], 31);
        let w = rand_tensor(&[3, 1, 3, 3], 32);
        let a = depthwise_conv2d(&x, &w, p).unwrap();
        let b = reference(&x.relu().unwrap(), &w, p);
        let diff = max_diff(&a, &b);
        assert!(diff < 1e-5, "{diff}");
        let x = rand_tensor(&[2, 2, 7, 6], 33);
        let w = rand_tensor(&[2, 1, 3, 3], 34);
        grad_check(
            &x,
            &|t| depthwise_conv2d(t, &w, p).unwrap(),
            1e-3,
            "dw+relu input",
        );
        grad_check(
            &w,
            &|t| depthwise_conv2d(&x, t, p).unwrap(),
            1e-3,
            "dw+relu weight",
        );
    }

    #[test]
    fn too_small_input_is_an_error() {
        let p = DwParams {
            k: 5,
            stride: 1,
            pad: 0,
            dilation: 2,
            relu: false,
        };
        let x = rand_tensor(&[1, 1, 4, 4], 1);
        let w = rand_tensor(&[1, 1, 5, 5], 1);
        assert!(depthwise_conv2d(&x, &w, p).is_err());
    }
}
