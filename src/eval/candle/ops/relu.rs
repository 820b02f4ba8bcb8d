//! ReLU with a one-pass backward (candle's own backward builds a mask
//! tensor, converts it and multiplies: three passes and allocations).

use super::f32_slice;
#[cfg(feature = "cuda")]
use candle_core::CudaStorage;
use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Result, Shape, Tensor};
use seki_kernels::relu as k;

/// `max(x, 0)`.
pub fn relu(x: &Tensor) -> Result<Tensor> {
    x.contiguous()?.apply_op1(Relu)
}

struct Relu;

impl CustomOp1 for Relu {
    fn name(&self) -> &'static str {
        "relu"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        Ok((
            CpuStorage::F32(k::forward(f32_slice(self.name(), s, l)?)),
            l.shape().clone(),
        ))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(&self, s: &CudaStorage, l: &Layout) -> Result<(CudaStorage, Shape)> {
        use super::gpu::{self, names, Launch};
        let n = l.shape().elem_count();
        let y = gpu::run(
            self.name(),
            Launch::per_output(names::RELU_FWD, n),
            &[(s, l)],
            n as i64,
        )?;
        Ok((y, l.shape().clone()))
    }

    fn bwd(&self, _x: &Tensor, res: &Tensor, g: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(res.apply_op2_no_bwd(&g.contiguous()?, &ReluBwd)?))
    }
}

/// `(relu output, grad) -> dx`.
struct ReluBwd;

fn same_shape(y: &Layout, g: &Layout) -> Result<()> {
    if y.dims() != g.dims() {
        candle_core::bail!("relu-bwd: shapes {:?} and {:?} differ", y.dims(), g.dims())
    }
    Ok(())
}

impl CustomOp2 for ReluBwd {
    fn name(&self) -> &'static str {
        "relu-bwd"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        same_shape(l1, l2)?;
        let dx = k::backward(
            f32_slice(self.name(), s1, l1)?,
            f32_slice(self.name(), s2, l2)?,
        );
        Ok((CpuStorage::F32(dx), l1.shape().clone()))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s1: &CudaStorage,
        l1: &Layout,
        s2: &CudaStorage,
        l2: &Layout,
    ) -> Result<(CudaStorage, Shape)> {
        same_shape(l1, l2)?;
        use super::gpu::{self, names, Launch};
        let n = l1.shape().elem_count();
        let k = Launch::per_output(names::RELU_BWD, n);
        let dx = gpu::run(self.name(), k, &[(s1, l1), (s2, l2)], n as i64)?;
        Ok((dx, l1.shape().clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{grad_check, rand_tensor};
    use super::*;

    #[test]
    fn matches_candle_relu_and_finite_differences() {
        let x = rand_tensor(&[2, 3, 5, 4], 21);
        let a = relu(&x).unwrap();
        let b = x.relu().unwrap();
        assert_eq!(
            a.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            b.flatten_all().unwrap().to_vec1::<f32>().unwrap()
        );
        grad_check(&x, &|t| relu(t).unwrap(), 1e-3, "relu");
    }
}
