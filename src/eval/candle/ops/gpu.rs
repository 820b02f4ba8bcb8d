//! The GPU path of the custom ops: the CPU kernel on a host copy of the
//! operands, the result uploaded back to the operands' device. Correct on any
//! CUDA device candle supports, but bound by PCIe transfers; dedicated CUDA
//! kernels are future work (see the README).

use candle_core::backend::{BackendDevice, BackendStorage};
use candle_core::{CudaStorage, CustomOp1, CustomOp2, CustomOp3, Layout, Result, Shape};

/// `op.cpu_fwd` on a host copy of `s`.
pub(crate) fn op1<C: CustomOp1>(
    op: &C,
    s: &CudaStorage,
    l: &Layout,
) -> Result<(CudaStorage, Shape)> {
    let (out, shape) = op.cpu_fwd(&s.to_cpu_storage()?, l)?;
    Ok((s.device().storage_from_cpu_storage_owned(out)?, shape))
}

/// `op.cpu_fwd` on host copies of `s1`, `s2`.
pub(crate) fn op2<C: CustomOp2>(
    op: &C,
    s1: &CudaStorage,
    l1: &Layout,
    s2: &CudaStorage,
    l2: &Layout,
) -> Result<(CudaStorage, Shape)> {
    let (out, shape) = op.cpu_fwd(&s1.to_cpu_storage()?, l1, &s2.to_cpu_storage()?, l2)?;
    Ok((s1.device().storage_from_cpu_storage_owned(out)?, shape))
}

/// `op.cpu_fwd` on host copies of `s1`, `s2`, `s3`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn op3<C: CustomOp3>(
    op: &C,
    s1: &CudaStorage,
    l1: &Layout,
    s2: &CudaStorage,
    l2: &Layout,
    s3: &CudaStorage,
    l3: &Layout,
) -> Result<(CudaStorage, Shape)> {
    let (out, shape) = op.cpu_fwd(
        &s1.to_cpu_storage()?,
        l1,
        &s2.to_cpu_storage()?,
        l2,
        &s3.to_cpu_storage()?,
        l3,
    )?;
    Ok((s1.device().storage_from_cpu_storage_owned(out)?, shape))
}
