//! The GPU path of the custom ops: launches of the CUDA kernels in
//! `kernels/cuda/seki_ops.cu` (PTX built by `seki-kernels` with the `cuda`
//! feature, loaded once per device) on candle's CUDA storage. The kernels'
//! index arithmetic is tested on the CPU through their host build
//! (`host_emulation.rs`); pointwise convolutions and batch norm do not come
//! here: on a GPU they are built from candle's own ops (cuBLAS, reductions),
//! see `pointwise.rs` and `batchnorm.rs`.

use candle_core::backend::BackendStorage;
use candle_core::cuda_backend::cudarc::driver::{
    CudaView, DeviceRepr, LaunchConfig, PushKernelArg,
};
use candle_core::cuda_backend::WrapErr;
use candle_core::{bail, CudaStorage, Layout, Result};
pub(crate) use seki_kernels::cuda::names;
use seki_kernels::cuda::{ConvArgs, PoolArgs, MODULE, PTX};
use seki_kernels::depthwise::Dims;
use seki_kernels::{pool, DwParams, PoolParams};

/// Threads per block; the kernels are grid-stride loops, so the grid is
/// capped and any size is covered.
const BLOCK: u32 = 256;
const MAX_BLOCKS: usize = 1 << 20;

/// The types the kernels take by value: the geometry structs (`#[repr(C)]`,
/// laid out as `SekiConv`/`SekiPool` in seki_ops.cu) and `i64` lengths.
pub(crate) trait ByValueArg: Copy {}
impl ByValueArg for ConvArgs {}
impl ByValueArg for PoolArgs {}
impl ByValueArg for i64 {}

/// A kernel argument passed by value.
#[derive(Clone, Copy)]
#[repr(transparent)]
struct ByValue<T: ByValueArg>(T);

// SAFETY: every `ByValueArg` is plain old data (no pointers) with the C
// layout of the kernel parameter it is passed as.
unsafe impl<T: ByValueArg> DeviceRepr for ByValue<T> {}

/// One launch: kernel `name` writes `out` floats (zeroed first when it
/// accumulates) with `threads` logical threads.
pub(crate) struct Launch<'a> {
    pub name: &'a str,
    pub out: usize,
    pub threads: usize,
    pub zeroed: bool,
}

impl<'a> Launch<'a> {
    /// A kernel with one thread per output element.
    pub fn per_output(name: &'a str, out: usize) -> Self {
        Launch {
            name,
            out,
            threads: out,
            zeroed: false,
        }
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

/// Run `k` on `inputs` with the by-value argument `arg`; returns the output
/// on the inputs' device. The callers derive `k.out`, `k.threads` and `arg`
/// from the same checked layouts as `inputs`.
pub(crate) fn run<T: ByValueArg>(
    op: &str,
    k: Launch<'_>,
    inputs: &[(&CudaStorage, &Layout)],
    arg: T,
) -> Result<CudaStorage> {
    let Some(&(first, _)) = inputs.first() else {
        bail!("{op}: no inputs")
    };
    let dev = first.device();
    let views = inputs
        .iter()
        .map(|(s, l)| view(op, s, l))
        .collect::<Result<Vec<_>>>()?;
    let mut out = if k.zeroed {
        dev.alloc_zeros::<f32>(k.out)?
    } else {
        // SAFETY: the kernel writes every element.
        unsafe { dev.alloc::<f32>(k.out) }?
    };
    if k.threads > 0 {
        let func = dev.get_or_load_custom_func(k.name, MODULE, PTX)?;
        let mut b = func.builder();
        for v in &views {
            b.arg(v);
        }
        b.arg(&mut out);
        let arg = ByValue(arg);
        b.arg(&arg);
        let blocks = k.threads.div_ceil(BLOCK as usize).clamp(1, MAX_BLOCKS) as u32;
        let cfg = LaunchConfig {
            grid_dim: (blocks, 1, 1),
            block_dim: (BLOCK, 1, 1),
            shared_mem_bytes: 0,
        };
        // SAFETY: the buffers hold the element counts the geometry implies,
        // and the argument list matches the kernel's signature.
        unsafe { b.launch(cfg) }.w()?;
    }
    Ok(CudaStorage::wrap_cuda_slice(out, dev.clone()))
}

/// The convolution geometry as the kernels take it.
pub(crate) fn conv_args(op: &str, p: &DwParams, d: Dims) -> Result<ConvArgs> {
    match ConvArgs::new(p, d) {
        Some(a) => Ok(a),
        None => bail!("{op}: the tensor is too large for the CUDA kernels (i32 dimensions)"),
    }
}

/// The pooling geometry as the kernels take it.
pub(crate) fn pool_args(op: &str, p: &PoolParams, d: pool::Dims) -> Result<PoolArgs> {
    match PoolArgs::new(p, d) {
        Some(a) => Ok(a),
        None => bail!("{op}: the tensor is too large for the CUDA kernels (i32 dimensions)"),
    }
}

/// On a real GPU (these run only in `--features cuda` builds, which need
/// one): every op's output and gradients on CUDA against the CPU ops.
#[cfg(test)]
mod tests {
    use super::super::testutil::rand_tensor;
    use super::super::{
        batch_norm_train, depthwise_conv2d, im2col, pointwise_conv2d, pool2d, relu, PoolKind,
    };
    use super::*;
    use candle_core::{Device, Tensor, Var};

    type Op<'a> = &'a dyn Fn(&[Tensor]) -> Tensor;

    /// `f(inputs)` and the gradients of `sum(f * proj)` on the CPU and on
    /// CUDA device 0 must agree.
    fn agree(what: &str, inputs: &[Tensor], f: Op<'_>) {
        let gpu = Device::new_cuda(0).unwrap();
        let run = |dev: &Device| -> Vec<Vec<f32>> {
            let vars: Vec<Var> = inputs
                .iter()
                .map(|t| Var::from_tensor(&t.to_device(dev).unwrap()).unwrap())
                .collect();
            let ts: Vec<Tensor> = vars.iter().map(|v| v.as_tensor().clone()).collect();
            let y = f(&ts);
            let proj = rand_tensor(y.dims(), 77).to_device(dev).unwrap();
            let grads = (&y * &proj).unwrap().sum_all().unwrap().backward().unwrap();
            let mut out = vec![y.flatten_all().unwrap().to_vec1::<f32>().unwrap()];
            for v in &vars {
                let g = grads.get(v.as_tensor()).unwrap();
                out.push(g.flatten_all().unwrap().to_vec1::<f32>().unwrap());
            }
            out
        };
        let (a, b) = (run(&Device::Cpu), run(&gpu));
        for (i, (a, b)) in a.iter().zip(&b).enumerate() {
            assert_eq!(a.len(), b.len(), "{what} output {i}");
            for (j, (x, y)) in a.iter().zip(b).enumerate() {
                assert!(
                    (x - y).abs() <= 1e-3 * (1.0 + x.abs()),
                    "{what} output {i}[{j}]: cpu {x}, cuda {y}"
                );
            }
        }
    }

    #[test]
    fn every_op_agrees_with_the_cpu() {
        let x = rand_tensor(&[4, 6, 15, 16], 1);
        for (k, stride, pad, dilation) in [(3, 1, 1, 1), (5, 2, 2, 1), (3, 1, 2, 2), (5, 2, 4, 2)] {
            for relu_in in [false, true] {
                let p = DwParams {
                    k,
                    stride,
                    pad,
                    dilation,
                    relu: relu_in,
                };
                let w = rand_tensor(&[6, 1, k, k], 2);
                agree(&format!("depthwise {p:?}"), &[x.clone(), w], &|t| {
                    depthwise_conv2d(&t[0], &t[1], p).unwrap()
                });
                let p = DwParams { relu: false, ..p };
                agree(&format!("im2col {p:?}"), std::slice::from_ref(&x), &|t| {
                    im2col(&t[0], p).unwrap().0
                });
            }
        }
        for kind in [PoolKind::Max, PoolKind::Avg] {
            for stride in [1, 2] {
                let p = PoolParams {
                    kind,
                    k: 3,
                    stride,
                    pad: 1,
                };
                agree(&format!("pool {p:?}"), std::slice::from_ref(&x), &|t| {
                    pool2d(&t[0], p).unwrap()
                });
            }
        }
        agree("relu", std::slice::from_ref(&x), &|t| relu(&t[0]).unwrap());
        let w = rand_tensor(&[5, 6, 1, 1], 3);
        agree("pointwise", &[x.clone(), w], &|t| {
            pointwise_conv2d(&t[0], &t[1], true).unwrap()
        });
        let (g, b) = ((rand_tensor(&[6], 4) + 1.5).unwrap(), rand_tensor(&[6], 5));
        agree("batch norm", &[x.clone(), g, b], &|t| {
            batch_norm_train(&t[0], &t[1], &t[2], 1e-5).unwrap().0
        });
    }
}
