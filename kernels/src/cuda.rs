//! The CUDA side of the kernels: `cuda/seki_ops.cu`, the argument lists its
//! kernels take (shared by the GPU launcher in the `seki` crate and by the
//! host build), the PTX (feature `cuda`) and the host build (feature
//! `host-emulation`).
//!
//! Every kernel takes its buffers first, then the `i32` geometry returned
//! by [`conv_args`] (plus `relu` for the depthwise kernels) or
//! [`pool_args`], in that order.

use crate::depthwise::{Dims, DwParams};
use crate::pool::{self, PoolKind, PoolParams};

/// The PTX of `cuda/seki_ops.cu`, compiled by nvcc at build time.
#[cfg(feature = "cuda")]
pub const PTX: &str = include_str!(concat!(env!("OUT_DIR"), "/seki_ops.ptx"));

/// The module name the PTX is loaded under.
pub const MODULE: &str = "seki_ops";

/// Kernel names, as exported by `cuda/seki_ops.cu`.
pub mod names {
    /// Depthwise convolution, forward.
    pub const DW_FWD: &str = "seki_dw_fwd";
    /// Depthwise convolution, gradient of the input.
    pub const DW_BWD_INPUT: &str = "seki_dw_bwd_input";
    /// Depthwise convolution, gradient of the weights (accumulates).
    pub const DW_BWD_WEIGHT: &str = "seki_dw_bwd_weight";
    /// Pooling, forward.
    pub const POOL_FWD: &str = "seki_pool_fwd";
    /// Pooling, gradient of the input.
    pub const POOL_BWD: &str = "seki_pool_bwd";
    /// im2col.
    pub const IM2COL: &str = "seki_im2col";
    /// col2im.
    pub const COL2IM: &str = "seki_col2im";
    /// ReLU, forward.
    pub const RELU_FWD: &str = "seki_relu_fwd";
    /// ReLU, backward.
    pub const RELU_BWD: &str = "seki_relu_bwd";
}

fn int(v: usize) -> Option<i32> {
    i32::try_from(v).ok()
}

/// `[n, c, h, w, oh, ow, k, stride, pad, dilation]`, or `None` when a value
/// does not fit an `i32`.
pub fn conv_args(p: &DwParams, d: Dims) -> Option<[i32; 10]> {
    Some([
        int(d.n)?,
        int(d.c)?,
        int(d.h)?,
        int(d.w)?,
        int(d.oh)?,
        int(d.ow)?,
        int(p.k)?,
        int(p.stride)?,
        int(p.pad)?,
        int(p.dilation)?,
    ])
}

/// `[planes, h, w, oh, ow, k, stride, pad, is_max]`, or `None` when a value
/// does not fit an `i32`.
pub fn pool_args(p: &PoolParams, d: pool::Dims) -> Option<[i32; 9]> {
    Some([
        int(d.planes)?,
        int(d.h)?,
        int(d.w)?,
        int(d.oh)?,
        int(d.ow)?,
        int(p.k)?,
        int(p.stride)?,
        int(p.pad)?,
        i32::from(p.kind == PoolKind::Max),
    ])
}

/// The kernels built for the host and run serially: the same code as on
/// the GPU, for tests on machines without one. Each function returns
/// `None` when a buffer's length does not match the geometry.
#[cfg(feature = "host-emulation")]
pub mod host {
    use super::{conv_args, pool_args};
    use crate::depthwise::{Dims, DwParams};
    use crate::pool::{self, PoolParams};

    type Conv = [i32; 10];
    type Pool = [i32; 9];

    #[allow(clippy::too_many_arguments)]
    mod ffi {
        extern "C" {
            pub fn seki_dw_fwd(
                x: *const f32,
                w: *const f32,
                y: *mut f32,
                n: i32,
                c: i32,
                h: i32,
                w_: i32,
                oh: i32,
                ow: i32,
                k: i32,
                stride: i32,
                pad: i32,
                dil: i32,
                relu: i32,
            );
            pub fn seki_dw_bwd_input(
                x: *const f32,
                w: *const f32,
                g: *const f32,
                dx: *mut f32,
                n: i32,
                c: i32,
                h: i32,
                w_: i32,
                oh: i32,
                ow: i32,
                k: i32,
                stride: i32,
                pad: i32,
                dil: i32,
                relu: i32,
            );
            pub fn seki_dw_bwd_weight(
                x: *const f32,
                g: *const f32,
                dw: *mut f32,
                n: i32,
                c: i32,
                h: i32,
                w_: i32,
                oh: i32,
                ow: i32,
                k: i32,
                stride: i32,
                pad: i32,
                dil: i32,
                relu: i32,
            );
            pub fn seki_pool_fwd(
                x: *const f32,
                y: *mut f32,
                planes: i32,
                h: i32,
                w: i32,
                oh: i32,
                ow: i32,
                k: i32,
                stride: i32,
                pad: i32,
                is_max: i32,
            );
            pub fn seki_pool_bwd(
                x: *const f32,
                g: *const f32,
                dx: *mut f32,
                planes: i32,
                h: i32,
                w: i32,
                oh: i32,
                ow: i32,
                k: i32,
                stride: i32,
                pad: i32,
                is_max: i32,
            );
            pub fn seki_im2col(
                x: *const f32,
                cols: *mut f32,
                n: i32,
                c: i32,
                h: i32,
                w: i32,
                oh: i32,
                ow: i32,
                k: i32,
                stride: i32,
                pad: i32,
                dil: i32,
            );
            pub fn seki_col2im(
                cols: *const f32,
                x: *mut f32,
                n: i32,
                c: i32,
                h: i32,
                w: i32,
                oh: i32,
                ow: i32,
                k: i32,
                stride: i32,
                pad: i32,
                dil: i32,
            );
            pub fn seki_relu_fwd(x: *const f32, y: *mut f32, len: i64);
            pub fn seki_relu_bwd(y: *const f32, g: *const f32, dx: *mut f32, len: i64);
        }
    }

    fn conv(p: &DwParams, d: Dims) -> Option<Conv> {
        conv_args(p, d)
    }

    /// Depthwise forward.
    pub fn dw_forward(x: &[f32], w: &[f32], p: &DwParams, d: Dims) -> Option<Vec<f32>> {
        let a = conv(p, d)?;
        let kk = p.k * p.k;
        if x.len() != d.n * d.c * d.h * d.w || w.len() != d.c * kk {
            return None;
        }
        let mut y = vec![0f32; d.n * d.c * d.oh * d.ow];
        // SAFETY: the lengths match the geometry the kernel indexes with.
        unsafe {
            ffi::seki_dw_fwd(
                x.as_ptr(),
                w.as_ptr(),
                y.as_mut_ptr(),
                a[0],
                a[1],
                a[2],
                a[3],
                a[4],
                a[5],
                a[6],
                a[7],
                a[8],
                a[9],
                i32::from(p.relu),
            )
        };
        Some(y)
    }

    /// Depthwise gradient of the input.
    pub fn dw_backward_input(
        x: &[f32],
        g: &[f32],
        w: &[f32],
        p: &DwParams,
        d: Dims,
    ) -> Option<Vec<f32>> {
        let a = conv(p, d)?;
        let kk = p.k * p.k;
        if x.len() != d.n * d.c * d.h * d.w
            || w.len() != d.c * kk
            || g.len() != d.n * d.c * d.oh * d.ow
        {
            return None;
        }
        let mut dx = vec![0f32; x.len()];
        // SAFETY: the lengths match the geometry the kernel indexes with.
        unsafe {
            ffi::seki_dw_bwd_input(
                x.as_ptr(),
                w.as_ptr(),
                g.as_ptr(),
                dx.as_mut_ptr(),
                a[0],
                a[1],
                a[2],
                a[3],
                a[4],
                a[5],
                a[6],
                a[7],
                a[8],
                a[9],
                i32::from(p.relu),
            )
        };
        Some(dx)
    }

    /// Depthwise gradient of the weights.
    pub fn dw_backward_weight(x: &[f32], g: &[f32], p: &DwParams, d: Dims) -> Option<Vec<f32>> {
        let a = conv(p, d)?;
        if x.len() != d.n * d.c * d.h * d.w || g.len() != d.n * d.c * d.oh * d.ow {
            return None;
        }
        let mut dw = vec![0f32; d.c * p.k * p.k];
        // SAFETY: the lengths match the geometry the kernel indexes with.
        unsafe {
            ffi::seki_dw_bwd_weight(
                x.as_ptr(),
                g.as_ptr(),
                dw.as_mut_ptr(),
                a[0],
                a[1],
                a[2],
                a[3],
                a[4],
                a[5],
                a[6],
                a[7],
                a[8],
                a[9],
                i32::from(p.relu),
            )
        };
        Some(dw)
    }

    fn pool(p: &PoolParams, d: pool::Dims) -> Option<Pool> {
        pool_args(p, d)
    }

    /// Pooling forward.
    pub fn pool_forward(x: &[f32], p: &PoolParams, d: pool::Dims) -> Option<Vec<f32>> {
        let a = pool(p, d)?;
        if x.len() != d.planes * d.h * d.w {
            return None;
        }
        let mut y = vec![0f32; d.planes * d.oh * d.ow];
        // SAFETY: the lengths match the geometry the kernel indexes with.
        unsafe {
            ffi::seki_pool_fwd(
                x.as_ptr(),
                y.as_mut_ptr(),
                a[0],
                a[1],
                a[2],
                a[3],
                a[4],
                a[5],
                a[6],
                a[7],
                a[8],
            )
        };
        Some(y)
    }

    /// Pooling gradient of the input.
    pub fn pool_backward(x: &[f32], g: &[f32], p: &PoolParams, d: pool::Dims) -> Option<Vec<f32>> {
        let a = pool(p, d)?;
        if x.len() != d.planes * d.h * d.w || g.len() != d.planes * d.oh * d.ow {
            return None;
        }
        let mut dx = vec![0f32; x.len()];
        // SAFETY: the lengths match the geometry the kernel indexes with.
        unsafe {
            ffi::seki_pool_bwd(
                x.as_ptr(),
                g.as_ptr(),
                dx.as_mut_ptr(),
                a[0],
                a[1],
                a[2],
                a[3],
                a[4],
                a[5],
                a[6],
                a[7],
                a[8],
            )
        };
        Some(dx)
    }

    /// im2col.
    pub fn im2col(x: &[f32], p: &DwParams, d: Dims) -> Option<Vec<f32>> {
        let a = conv(p, d)?;
        if x.len() != d.n * d.c * d.h * d.w {
            return None;
        }
        let mut cols = vec![0f32; d.n * d.c * p.k * p.k * d.oh * d.ow];
        // SAFETY: the lengths match the geometry the kernel indexes with.
        unsafe {
            ffi::seki_im2col(
                x.as_ptr(),
                cols.as_mut_ptr(),
                a[0],
                a[1],
                a[2],
                a[3],
                a[4],
                a[5],
                a[6],
                a[7],
                a[8],
                a[9],
            )
        };
        Some(cols)
    }

    /// col2im.
    pub fn col2im(cols: &[f32], p: &DwParams, d: Dims) -> Option<Vec<f32>> {
        let a = conv(p, d)?;
        if cols.len() != d.n * d.c * p.k * p.k * d.oh * d.ow {
            return None;
        }
        let mut x = vec![0f32; d.n * d.c * d.h * d.w];
        // SAFETY: the lengths match the geometry the kernel indexes with.
        unsafe {
            ffi::seki_col2im(
                cols.as_ptr(),
                x.as_mut_ptr(),
                a[0],
                a[1],
                a[2],
                a[3],
                a[4],
                a[5],
                a[6],
                a[7],
                a[8],
                a[9],
            )
        };
        Some(x)
    }

    /// ReLU forward.
    pub fn relu_forward(x: &[f32]) -> Option<Vec<f32>> {
        let len = i64::try_from(x.len()).ok()?;
        let mut y = vec![0f32; x.len()];
        // SAFETY: both buffers hold `len` values.
        unsafe { ffi::seki_relu_fwd(x.as_ptr(), y.as_mut_ptr(), len) };
        Some(y)
    }

    /// ReLU backward from the forward output `y`.
    pub fn relu_backward(y: &[f32], g: &[f32]) -> Option<Vec<f32>> {
        if y.len() != g.len() {
            return None;
        }
        let len = i64::try_from(y.len()).ok()?;
        let mut dx = vec![0f32; y.len()];
        // SAFETY: all three buffers hold `len` values.
        unsafe { ffi::seki_relu_bwd(y.as_ptr(), g.as_ptr(), dx.as_mut_ptr(), len) };
        Some(dx)
    }
}
