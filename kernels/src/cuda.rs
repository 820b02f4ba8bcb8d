//! The CUDA side of the kernels: `cuda/seki_ops.cu`, the geometry structs
//! its kernels take by value ([`ConvArgs`], [`PoolArgs`]; the same layout as
//! `SekiConv` and `SekiPool` there), the PTX (feature `cuda`) and the host
//! build (feature `host-emulation`).
//!
//! Kernel signatures: the input buffers, the output buffer, then the
//! geometry (`i64` length for the ReLU kernels).

use crate::depthwise::{Dims, DwParams};
use crate::pool::{self, PoolKind, PoolParams};

/// The PTX of `cuda/seki_ops.cu`, compiled by nvcc at build time.
#[cfg(feature = "cuda")]
pub const PTX: &str = include_str!(concat!(env!("OUT_DIR"), "/seki_ops.ptx"));

/// The module name the PTX is loaded under.
pub const MODULE: &str = "seki_ops";

/// Kernel names, as exported by `cuda/seki_ops.cu`.
pub mod names {
    /// Depthwise convolution, forward: `(x, w) -> y`, [`super::ConvArgs`].
    pub const DW_FWD: &str = "seki_dw_fwd";
    /// Depthwise convolution, input gradient: `(x, w, g) -> dx`.
    pub const DW_BWD_INPUT: &str = "seki_dw_bwd_input";
    /// Depthwise convolution, weight gradient: `(x, g) -> dw`; one thread
    /// per (channel, tap, sample), accumulated atomically into zeros.
    pub const DW_BWD_WEIGHT: &str = "seki_dw_bwd_weight";
    /// Pooling, forward: `x -> y`, [`super::PoolArgs`].
    pub const POOL_FWD: &str = "seki_pool_fwd";
    /// Pooling, input gradient: `(x, g) -> dx`.
    pub const POOL_BWD: &str = "seki_pool_bwd";
    /// `x -> cols`, [`super::ConvArgs`] (`relu` unused).
    pub const IM2COL: &str = "seki_im2col";
    /// `cols -> x`, [`super::ConvArgs`] (`relu` unused).
    pub const COL2IM: &str = "seki_col2im";
    /// `x -> max(x, 0)`, `i64` length.
    pub const RELU_FWD: &str = "seki_relu_fwd";
    /// `(y, g) -> dx`, `i64` length.
    pub const RELU_BWD: &str = "seki_relu_bwd";
}

/// Convolution geometry as the kernels take it.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct ConvArgs {
    pub n: i32,
    pub c: i32,
    pub h: i32,
    pub w: i32,
    pub oh: i32,
    pub ow: i32,
    pub k: i32,
    pub stride: i32,
    pub pad: i32,
    pub dil: i32,
    /// 1 to apply ReLU to the input first.
    pub relu: i32,
}

/// Pooling geometry as the kernels take it.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct PoolArgs {
    pub planes: i32,
    pub h: i32,
    pub w: i32,
    pub oh: i32,
    pub ow: i32,
    pub k: i32,
    pub stride: i32,
    pub pad: i32,
    /// 1 for max, 0 for average.
    pub is_max: i32,
}

fn int(v: usize) -> Option<i32> {
    i32::try_from(v).ok()
}

impl ConvArgs {
    /// The geometry, or `None` when a value does not fit an `i32`.
    pub fn new(p: &DwParams, d: Dims) -> Option<Self> {
        Some(ConvArgs {
            n: int(d.n)?,
            c: int(d.c)?,
            h: int(d.h)?,
            w: int(d.w)?,
            oh: int(d.oh)?,
            ow: int(d.ow)?,
            k: int(p.k)?,
            stride: int(p.stride)?,
            pad: int(p.pad)?,
            dil: int(p.dilation)?,
            relu: i32::from(p.relu),
        })
    }
}

impl PoolArgs {
    /// The geometry, or `None` when a value does not fit an `i32`.
    pub fn new(p: &PoolParams, d: pool::Dims) -> Option<Self> {
        Some(PoolArgs {
            planes: int(d.planes)?,
            h: int(d.h)?,
            w: int(d.w)?,
            oh: int(d.oh)?,
            ow: int(d.ow)?,
            k: int(p.k)?,
            stride: int(p.stride)?,
            pad: int(p.pad)?,
            is_max: i32::from(p.kind == PoolKind::Max),
        })
    }
}

/// The kernels built for the host and run serially: the same code as on
/// the GPU, for tests on machines without one. Each function returns
/// `None` when a buffer's length does not match the geometry.
#[cfg(feature = "host-emulation")]
pub mod host {
    use super::{ConvArgs, PoolArgs};
    use crate::depthwise::{Dims, DwParams};
    use crate::pool::{self, PoolParams};

    type In = *const f32;
    type Out = *mut f32;

    extern "C" {
        fn seki_dw_fwd(x: In, w: In, y: Out, g: ConvArgs);
        fn seki_dw_bwd_input(x: In, w: In, g: In, dx: Out, geo: ConvArgs);
        fn seki_dw_bwd_weight(x: In, g: In, dw: Out, geo: ConvArgs);
        fn seki_pool_fwd(x: In, y: Out, g: PoolArgs);
        fn seki_pool_bwd(x: In, g: In, dx: Out, geo: PoolArgs);
        fn seki_im2col(x: In, cols: Out, g: ConvArgs);
        fn seki_col2im(cols: In, x: Out, g: ConvArgs);
        fn seki_relu_fwd(x: In, y: Out, len: i64);
        fn seki_relu_bwd(y: In, g: In, dx: Out, len: i64);
    }

    /// `out_len` zeros written by `kernel`, if every input has its expected
    /// length.
    fn run(
        inputs: &[(&[f32], usize)],
        out_len: usize,
        kernel: impl FnOnce(Out),
    ) -> Option<Vec<f32>> {
        if inputs.iter().any(|(buf, len)| buf.len() != *len) {
            return None;
        }
        let mut out = vec![0f32; out_len];
        kernel(out.as_mut_ptr());
        Some(out)
    }

    fn sizes(p: &DwParams, d: Dims) -> (usize, usize, usize) {
        (
            d.n * d.c * d.h * d.w,
            d.n * d.c * d.oh * d.ow,
            d.c * p.k * p.k,
        )
    }

    // SAFETY (every call below): `run` has checked each buffer against the
    // length the geometry implies, which is exactly what the kernel indexes.

    /// Depthwise forward.
    pub fn dw_forward(x: &[f32], w: &[f32], p: &DwParams, d: Dims) -> Option<Vec<f32>> {
        let a = ConvArgs::new(p, d)?;
        let (xs, ys, ws) = sizes(p, d);
        run(&[(x, xs), (w, ws)], ys, |y| unsafe {
            seki_dw_fwd(x.as_ptr(), w.as_ptr(), y, a)
        })
    }

    /// Depthwise input gradient.
    pub fn dw_backward_input(
        x: &[f32],
        g: &[f32],
        w: &[f32],
        p: &DwParams,
        d: Dims,
    ) -> Option<Vec<f32>> {
        let a = ConvArgs::new(p, d)?;
        let (xs, ys, ws) = sizes(p, d);
        run(&[(x, xs), (g, ys), (w, ws)], xs, |dx| unsafe {
            seki_dw_bwd_input(x.as_ptr(), w.as_ptr(), g.as_ptr(), dx, a)
        })
    }

    /// Depthwise weight gradient.
    pub fn dw_backward_weight(x: &[f32], g: &[f32], p: &DwParams, d: Dims) -> Option<Vec<f32>> {
        let a = ConvArgs::new(p, d)?;
        let (xs, ys, ws) = sizes(p, d);
        run(&[(x, xs), (g, ys)], ws, |dw| unsafe {
            seki_dw_bwd_weight(x.as_ptr(), g.as_ptr(), dw, a)
        })
    }

    /// Pooling forward.
    pub fn pool_forward(x: &[f32], p: &PoolParams, d: pool::Dims) -> Option<Vec<f32>> {
        let a = PoolArgs::new(p, d)?;
        let (xs, ys) = (d.planes * d.h * d.w, d.planes * d.oh * d.ow);
        run(&[(x, xs)], ys, |y| unsafe {
            seki_pool_fwd(x.as_ptr(), y, a)
        })
    }

    /// Pooling input gradient.
    pub fn pool_backward(x: &[f32], g: &[f32], p: &PoolParams, d: pool::Dims) -> Option<Vec<f32>> {
        let a = PoolArgs::new(p, d)?;
        let (xs, ys) = (d.planes * d.h * d.w, d.planes * d.oh * d.ow);
        run(&[(x, xs), (g, ys)], xs, |dx| unsafe {
            seki_pool_bwd(x.as_ptr(), g.as_ptr(), dx, a)
        })
    }

    /// im2col.
    pub fn im2col(x: &[f32], p: &DwParams, d: Dims) -> Option<Vec<f32>> {
        let a = ConvArgs::new(p, d)?;
        let (xs, _, _) = sizes(p, d);
        let cols = d.n * d.c * p.k * p.k * d.oh * d.ow;
        run(&[(x, xs)], cols, |c| unsafe {
            seki_im2col(x.as_ptr(), c, a)
        })
    }

    /// col2im.
    pub fn col2im(cols: &[f32], p: &DwParams, d: Dims) -> Option<Vec<f32>> {
        let a = ConvArgs::new(p, d)?;
        let (xs, _, _) = sizes(p, d);
        let cs = d.n * d.c * p.k * p.k * d.oh * d.ow;
        run(&[(cols, cs)], xs, |x| unsafe {
            seki_col2im(cols.as_ptr(), x, a)
        })
    }

    /// ReLU forward.
    pub fn relu_forward(x: &[f32]) -> Option<Vec<f32>> {
        let len = i64::try_from(x.len()).ok()?;
        run(&[], x.len(), |y| unsafe {
            seki_relu_fwd(x.as_ptr(), y, len)
        })
    }

    /// ReLU backward from the forward output `y`.
    pub fn relu_backward(y: &[f32], g: &[f32]) -> Option<Vec<f32>> {
        let len = i64::try_from(y.len()).ok()?;
        run(&[(g, y.len())], y.len(), |dx| unsafe {
            seki_relu_bwd(y.as_ptr(), g.as_ptr(), dx, len)
        })
    }
}
