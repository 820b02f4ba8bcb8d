//! 2-D max and average pooling with padding (average with
//! `count_include_pad = False`), as a candle op with a hand-written backward
//! (kernels in `seki-kernels`).

use super::{dims4, f32_slice};
#[cfg(feature = "cuda")]
use candle_core::CudaStorage;
use candle_core::{bail, CpuStorage, CustomOp1, CustomOp3, Layout, Result, Shape, Tensor};
use seki_kernels::pool::{self as k, Dims};
pub use seki_kernels::{PoolKind, PoolParams};

/// Pool `x: [N, C, H, W]`.
pub fn pool2d(x: &Tensor, p: PoolParams) -> Result<Tensor> {
    x.contiguous()?.apply_op1(Pool { p })
}

fn geometry(op: &str, p: &PoolParams, l: &Layout) -> Result<(usize, usize, Dims)> {
    let (n, c, h, w) = dims4(op, l)?;
    if p.k == 0 || p.stride == 0 || p.pad >= p.k {
        bail!("{op}: need kernel > padding >= 0 and stride > 0")
    }
    match (p.out_size(h), p.out_size(w)) {
        (Some(oh), Some(ow)) if oh > 0 && ow > 0 => Ok((
            n,
            c,
            Dims {
                planes: n * c,
                h,
                w,
                oh,
                ow,
            },
        )),
        _ => bail!(
            "{op}: input {h}x{w} is smaller than the {k}x{k} window",
            k = p.k
        ),
    }
}

struct Pool {
    p: PoolParams,
}

impl CustomOp1 for Pool {
    fn name(&self) -> &'static str {
        match self.p.kind {
            PoolKind::Max => "max-pool2d",
            PoolKind::Avg => "avg-pool2d",
        }
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let (n, c, d) = geometry(self.name(), &self.p, l)?;
        let y = k::forward(f32_slice(self.name(), s, l)?, &self.p, d);
        Ok((CpuStorage::F32(y), Shape::from_dims(&[n, c, d.oh, d.ow])))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(&self, s: &CudaStorage, l: &Layout) -> Result<(CudaStorage, Shape)> {
        let (n, c, d) = geometry(self.name(), &self.p, l)?;
        use super::gpu::{self, names, Launch};
        let k = Launch::per_output(names::POOL_FWD, d.planes * d.oh * d.ow);
        let arg = gpu::pool_args(self.name(), &self.p, d)?;
        let y = gpu::run(self.name(), k, &[(s, l)], arg)?;
        Ok((y, Shape::from_dims(&[n, c, d.oh, d.ow])))
    }

    fn bwd(&self, x: &Tensor, res: &Tensor, g: &Tensor) -> Result<Option<Tensor>> {
        let g = g.contiguous()?;
        Ok(Some(x.apply_op3_no_bwd(res, &g, &PoolBwd(self.p))?))
    }
}

/// `(x, y, grad) -> dx` (`y`, the forward's output, tells a max pool
/// which cell won; the CUDA kernel finds it again from `x`).
struct PoolBwd(PoolParams);

impl PoolBwd {
    /// `(n, c, dims)`, with the gradient's shape checked against the output.
    fn geometry(&self, x: &Layout, g: &Layout) -> Result<(usize, usize, Dims)> {
        let name = "pool2d-bwd";
        let (n, c, d) = geometry(name, &self.0, x)?;
        if g.dims() != [n, c, d.oh, d.ow] {
            bail!(
                "{name}: gradient shape {:?}, expected [{n}, {c}, {}, {}]",
                g.dims(),
                d.oh,
                d.ow
            )
        }
        Ok((n, c, d))
    }
}

impl CustomOp3 for PoolBwd {
    fn name(&self) -> &'static str {
        "pool2d-bwd"
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
        let (n, c, d) = self.geometry(l1, l3)?;
        if l2.dims() != l3.dims() {
            bail!("{}: output and gradient shapes differ", self.name())
        }
        let x = f32_slice(self.name(), s1, l1)?;
        let g = f32_slice(self.name(), s3, l3)?;
        let dx = match self.0.kind {
            PoolKind::Max => k::backward_max(x, f32_slice(self.name(), s2, l2)?, g, &self.0, d),
            PoolKind::Avg => k::backward(x, g, &self.0, d),
        };
        Ok((CpuStorage::F32(dx), Shape::from_dims(&[n, c, d.h, d.w])))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s1: &CudaStorage,
        l1: &Layout,
        _s2: &CudaStorage,
        _l2: &Layout,
        s3: &CudaStorage,
        l3: &Layout,
    ) -> Result<(CudaStorage, Shape)> {
        let (n, c, d) = self.geometry(l1, l3)?;
        use super::gpu::{self, names, Launch};
        let k = Launch::per_output(names::POOL_BWD, d.planes * d.h * d.w);
        let arg = gpu::pool_args(self.name(), &self.0, d)?;
        let dx = gpu::run(self.name(), k, &[(s1, l1), (s3, l3)], arg)?;
        Ok((dx, Shape::from_dims(&[n, c, d.h, d.w])))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{grad_check, max_diff, rand_tensor};
    use super::*;

    #[test]
    fn unpadded_pools_match_candle() {
        let x = rand_tensor(&[2, 3, 8, 8], 5);
        for kind in [PoolKind::Max, PoolKind::Avg] {
            let p = PoolParams {
                kind,
                k: 2,
                stride: 2,
                pad: 0,
            };
            let a = pool2d(&x, p).unwrap();
            let b = match kind {
                PoolKind::Max => x.max_pool2d(2).unwrap(),
                PoolKind::Avg => x.avg_pool2d(2).unwrap(),
            };
            let d = max_diff(&a, &b);
            assert!(d < 1e-6, "{kind:?}: {d}");
        }
    }

    #[test]
    fn avg_excludes_padding() {
        let x = Tensor::ones(
            (1, 1, 3, 3),
            candle_core::DType::F32,
            &candle_core::Device::Cpu,
        )
        .unwrap();
        let p = PoolParams {
            kind: PoolKind::Avg,
            k: 3,
            stride: 1,
            pad: 1,
        };
        let y = pool2d(&x, p)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        assert!(y.iter().all(|v| (v - 1.0).abs() < 1e-6), "{y:?}");
    }

    #[test]
    fn gradients_match_finite_differences() {
        for kind in [PoolKind::Max, PoolKind::Avg] {
            for (k, s, pad) in [(3, 1, 1), (3, 2, 1), (5, 3, 0)] {
                let p = PoolParams {
                    kind,
                    k,
                    stride: s,
                    pad,
                };
                let x = rand_tensor(&[2, 2, 7, 8], 6);
                grad_check(&x, &|t| pool2d(t, p).unwrap(), 1e-3, "pool");
            }
        }
    }
}
