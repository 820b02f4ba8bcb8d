//! The GPU path of the custom ops: launches of the CUDA kernels in
//! `kernels/cuda/seki_ops.cu` (PTX built by `seki-kernels` with the `cuda`
//! feature, loaded once per device) on candle's CUDA storage. The kernels'
//! index arithmetic is tested on the CPU through their host build
//! (`host_emulation` below); pointwise convolutions and batch norm do not
//! come here: on a GPU they are built from candle's own ops (cuBLAS,
//! reductions), see `pointwise.rs` and `batchnorm.rs`.

use candle_core::backend::BackendStorage;
use candle_core::cuda_backend::cudarc::driver::{
    CudaSlice, CudaView, LaunchArgs, LaunchConfig, PushKernelArg,
};
use candle_core::cuda_backend::WrapErr;
use candle_core::{bail, CudaDevice, CudaStorage, Layout, Result};
use seki_kernels::cuda::{conv_args, names, pool_args, MODULE, PTX};
use seki_kernels::depthwise::Dims;
use seki_kernels::{pool, DwParams, PoolParams};

/// Threads per block; the kernels are grid-stride loops, so the grid is
/// capped and any size is covered.
const BLOCK: u32 = 256;
const MAX_BLOCKS: usize = 1 << 20;

fn config(total: usize) -> LaunchConfig {
    let blocks = total.div_ceil(BLOCK as usize).clamp(1, MAX_BLOCKS) as u32;
    LaunchConfig {
        grid_dim: (blocks, 1, 1),
        block_dim: (BLOCK, 1, 1),
        shared_mem_bytes: 0,
    }
}

/// The contiguous `f32` data of `s` under `l`.
fn view<'a>(op: &str, s: &'a CudaStorage, l: &Layout) -> Result<CudaView<'a, f32>> {
    let Ok(slice) = s.as_cuda_slice::<f32>() else {
        bail!("{op}: only f32 tensors are supported")
    };
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(slice.slice(a..b)),
        None => bail!("{op}: the input must be contiguous"),
    }
}

/// Kernels come from `dev.get_or_load_custom_func(name, MODULE, PTX)`: the
/// module is loaded on first use per device.
///
/// Push the `i32` arguments after the buffers and launch over `total`
/// elements.
fn run<'a>(mut b: LaunchArgs<'a>, total: usize, ints: &'a [i32]) -> Result<()> {
    if total == 0 {
        return Ok(());
    }
    for v in ints {
        b.arg(v);
    }
    // SAFETY: the buffers hold the element counts the geometry in `ints`
    // implies (the callers derive both from the checked layouts), and the
    // argument list matches the kernel's signature in seki_ops.cu.
    unsafe { b.launch(config(total)) }.w()?;
    Ok(())
}

fn wrap(dev: &CudaDevice, s: CudaSlice<f32>) -> CudaStorage {
    CudaStorage::wrap_cuda_slice(s, dev.clone())
}

fn conv(op: &str, p: &DwParams, d: Dims) -> Result<[i32; 10]> {
    match conv_args(p, d) {
        Some(a) => Ok(a),
        None => bail!("{op}: the tensor is too large for the CUDA kernels (i32 dimensions)"),
    }
}

fn pool_geometry(op: &str, p: &PoolParams, d: pool::Dims) -> Result<[i32; 9]> {
    match pool_args(p, d) {
        Some(a) => Ok(a),
        None => bail!("{op}: the tensor is too large for the CUDA kernels (i32 dimensions)"),
    }
}

/// Depthwise convolution forward: `[n, c, oh, ow]`.
pub(crate) fn dw_forward(
    op: &str,
    (x, lx): (&CudaStorage, &Layout),
    (w, lw): (&CudaStorage, &Layout),
    p: &DwParams,
    d: Dims,
) -> Result<CudaStorage> {
    let mut ints = conv(op, p, d)?.to_vec();
    ints.push(i32::from(p.relu));
    let dev = x.device();
    let (xv, wv) = (view(op, x, lx)?, view(op, w, lw)?);
    let total = d.n * d.c * d.oh * d.ow;
    // SAFETY: every element is written by the kernel.
    let mut y = unsafe { dev.alloc::<f32>(total) }?;
    let func = dev.get_or_load_custom_func(names::DW_FWD, MODULE, PTX)?;
    let mut b = func.builder();
    b.arg(&xv);
    b.arg(&wv);
    b.arg(&mut y);
    run(b, total, &ints)?;
    Ok(wrap(dev, y))
}

/// Depthwise convolution, gradient of the input: `[n, c, h, w]`.
pub(crate) fn dw_backward_input(
    op: &str,
    (x, lx): (&CudaStorage, &Layout),
    (w, lw): (&CudaStorage, &Layout),
    (g, lg): (&CudaStorage, &Layout),
    p: &DwParams,
    d: Dims,
) -> Result<CudaStorage> {
    let mut ints = conv(op, p, d)?.to_vec();
    ints.push(i32::from(p.relu));
    let dev = x.device();
    let (xv, wv, gv) = (view(op, x, lx)?, view(op, w, lw)?, view(op, g, lg)?);
    let total = d.n * d.c * d.h * d.w;
    // SAFETY: every element is written by the kernel.
    let mut dx = unsafe { dev.alloc::<f32>(total) }?;
    let func = dev.get_or_load_custom_func(names::DW_BWD_INPUT, MODULE, PTX)?;
    let mut b = func.builder();
    b.arg(&xv);
    b.arg(&wv);
    b.arg(&gv);
    b.arg(&mut dx);
    run(b, total, &ints)?;
    Ok(wrap(dev, dx))
}

/// Depthwise convolution, gradient of the weights: `[c, 1, k, k]`.
pub(crate) fn dw_backward_weight(
    op: &str,
    (x, lx): (&CudaStorage, &Layout),
    (g, lg): (&CudaStorage, &Layout),
    p: &DwParams,
    d: Dims,
) -> Result<CudaStorage> {
    let mut ints = conv(op, p, d)?.to_vec();
    ints.push(i32::from(p.relu));
    let dev = x.device();
    let (xv, gv) = (view(op, x, lx)?, view(op, g, lg)?);
    // The kernel accumulates with atomics into zeros.
    let mut dw = dev.alloc_zeros::<f32>(d.c * p.k * p.k)?;
    let total = d.c * p.k * p.k * d.n;
    let func = dev.get_or_load_custom_func(names::DW_BWD_WEIGHT, MODULE, PTX)?;
    let mut b = func.builder();
    b.arg(&xv);
    b.arg(&gv);
    b.arg(&mut dw);
    run(b, total, &ints)?;
    Ok(wrap(dev, dw))
}

/// Pooling forward: `[planes, oh, ow]`.
pub(crate) fn pool_forward(
    op: &str,
    (x, lx): (&CudaStorage, &Layout),
    p: &PoolParams,
    d: pool::Dims,
) -> Result<CudaStorage> {
    let ints = pool_geometry(op, p, d)?;
    let dev = x.device();
    let xv = view(op, x, lx)?;
    let total = d.planes * d.oh * d.ow;
    // SAFETY: every element is written by the kernel.
    let mut y = unsafe { dev.alloc::<f32>(total) }?;
    let func = dev.get_or_load_custom_func(names::POOL_FWD, MODULE, PTX)?;
    let mut b = func.builder();
    b.arg(&xv);
    b.arg(&mut y);
    run(b, total, &ints)?;
    Ok(wrap(dev, y))
}

/// Pooling, gradient of the input: `[planes, h, w]`.
pub(crate) fn pool_backward(
    op: &str,
    (x, lx): (&CudaStorage, &Layout),
    (g, lg): (&CudaStorage, &Layout),
    p: &PoolParams,
    d: pool::Dims,
) -> Result<CudaStorage> {
    let ints = pool_geometry(op, p, d)?;
    let dev = x.device();
    let (xv, gv) = (view(op, x, lx)?, view(op, g, lg)?);
    let total = d.planes * d.h * d.w;
    // SAFETY: every element is written by the kernel.
    let mut dx = unsafe { dev.alloc::<f32>(total) }?;
    let func = dev.get_or_load_custom_func(names::POOL_BWD, MODULE, PTX)?;
    let mut b = func.builder();
    b.arg(&xv);
    b.arg(&gv);
    b.arg(&mut dx);
    run(b, total, &ints)?;
    Ok(wrap(dev, dx))
}

/// im2col: `[n, c * k * k, oh * ow]`.
pub(crate) fn im2col(
    op: &str,
    (x, lx): (&CudaStorage, &Layout),
    p: &DwParams,
    d: Dims,
) -> Result<CudaStorage> {
    let ints = conv(op, p, d)?;
    let dev = x.device();
    let xv = view(op, x, lx)?;
    let total = d.n * d.c * p.k * p.k * d.oh * d.ow;
    // SAFETY: every element is written by the kernel.
    let mut cols = unsafe { dev.alloc::<f32>(total) }?;
    let func = dev.get_or_load_custom_func(names::IM2COL, MODULE, PTX)?;
    let mut b = func.builder();
    b.arg(&xv);
    b.arg(&mut cols);
    run(b, total, &ints)?;
    Ok(wrap(dev, cols))
}

/// col2im: `[n, c, h, w]`.
pub(crate) fn col2im(
    op: &str,
    (cols, lc): (&CudaStorage, &Layout),
    p: &DwParams,
    d: Dims,
) -> Result<CudaStorage> {
    let ints = conv(op, p, d)?;
    let dev = cols.device();
    let cv = view(op, cols, lc)?;
    let total = d.n * d.c * d.h * d.w;
    // SAFETY: every element is written by the kernel.
    let mut x = unsafe { dev.alloc::<f32>(total) }?;
    let func = dev.get_or_load_custom_func(names::COL2IM, MODULE, PTX)?;
    let mut b = func.builder();
    b.arg(&cv);
    b.arg(&mut x);
    run(b, total, &ints)?;
    Ok(wrap(dev, x))
}

/// ReLU forward.
pub(crate) fn relu_forward(op: &str, (x, lx): (&CudaStorage, &Layout)) -> Result<CudaStorage> {
    let dev = x.device();
    let xv = view(op, x, lx)?;
    let len = xv.len();
    // SAFETY: every element is written by the kernel.
    let mut y = unsafe { dev.alloc::<f32>(len) }?;
    let n = len as i64;
    let func = dev.get_or_load_custom_func(names::RELU_FWD, MODULE, PTX)?;
    let mut b = func.builder();
    b.arg(&xv);
    b.arg(&mut y);
    b.arg(&n);
    run(b, len, &[])?;
    Ok(wrap(dev, y))
}

/// ReLU backward from the forward output `y`.
pub(crate) fn relu_backward(
    op: &str,
    (y, ly): (&CudaStorage, &Layout),
    (g, lg): (&CudaStorage, &Layout),
) -> Result<CudaStorage> {
    let dev = y.device();
    let (yv, gv) = (view(op, y, ly)?, view(op, g, lg)?);
    let len = yv.len();
    if gv.len() != len {
        bail!("{op}: gradient and output lengths differ")
    }
    // SAFETY: every element is written by the kernel.
    let mut dx = unsafe { dev.alloc::<f32>(len) }?;
    let n = len as i64;
    let func = dev.get_or_load_custom_func(names::RELU_BWD, MODULE, PTX)?;
    let mut b = func.builder();
    b.arg(&yv);
    b.arg(&gv);
    b.arg(&mut dx);
    b.arg(&n);
    run(b, len, &[])?;
    Ok(wrap(dev, dx))
}
