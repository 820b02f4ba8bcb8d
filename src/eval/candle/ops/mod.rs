//! Custom candle ops with hand-written backward passes, multi-threaded on
//! the CPU: depthwise convolution, padded pooling and training-mode batch
//! normalisation. Candle 0.11's own versions are either missing (pool padding,
//! pool backward when kernel != stride) or slow (grouped convolution).
//!
//! On CUDA (feature `cuda`), depthwise convolution, pooling, im2col/col2im
//! and ReLU run native kernels (`gpu.rs`, source in
//! `kernels/cuda/seki_ops.cu`, checked on the CPU through its host build in
//! `host_emulation.rs`); pointwise convolution and batch norm use candle's
//! own ops there (cuBLAS matmul, reductions).

pub mod batchnorm;
pub mod depthwise;
pub mod dwblock;
#[cfg(feature = "cuda")]
mod gpu;
#[cfg(test)]
mod host_emulation;
pub mod im2col;
pub mod pointwise;
pub mod pool;
pub mod relu;
pub mod sepblock;

pub use batchnorm::{batch_norm_train, BnStats};
pub use depthwise::{depthwise_conv2d, DwParams};
pub(crate) use dwblock::add_residual;
pub use dwblock::{dw_block_infer, dw_block_train, BlockParams, Front};
pub use im2col::im2col;
pub use pointwise::pointwise_conv2d;
pub use pool::{pool2d, PoolKind, PoolParams};
pub use relu::relu;
pub use sepblock::sep_block_train;

use candle_core::{bail, CpuStorage, Layout, Result};

/// The contiguous `f32` data of a CPU tensor, or an error naming the op.
pub(crate) fn f32_slice<'a>(op: &str, s: &'a CpuStorage, l: &Layout) -> Result<&'a [f32]> {
    let CpuStorage::F32(v) = s else {
        bail!("{op}: only f32 tensors are supported")
    };
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&v[a..b]),
        None => bail!("{op}: the input must be contiguous"),
    }
}

/// The gradients of a two-input op `y = f(x, w)` whose backward op takes
/// `(x, w, grad)` and returns the input gradient (`input = true`) or the
/// weight gradient.
pub(crate) fn grads_of_x_and_w<B: candle_core::CustomOp3>(
    x: &candle_core::Tensor,
    w: &candle_core::Tensor,
    g: &candle_core::Tensor,
    bwd: impl Fn(bool) -> B,
) -> Result<(Option<candle_core::Tensor>, Option<candle_core::Tensor>)> {
    let g = g.contiguous()?;
    let gx = x.apply_op3_no_bwd(w, &g, &bwd(true))?;
    let gw = x.apply_op3_no_bwd(w, &g, &bwd(false))?;
    Ok((Some(gx), Some(gw)))
}

/// The 4 dims of an NCHW layout, or an error naming the op.
pub(crate) fn dims4(op: &str, l: &Layout) -> Result<(usize, usize, usize, usize)> {
    match *l.dims() {
        [n, c, h, w] => Ok((n, c, h, w)),
        ref d => bail!("{op}: expected an NCHW tensor, got shape {d:?}"),
    }
}

#[cfg(test)]
pub(crate) mod testutil {
    use candle_core::{Device, Tensor};

    /// Deterministic pseudo-random values in [-1, 1).
    pub fn rand_tensor(shape: &[usize], seed: u64) -> Tensor {
        let n: usize = shape.iter().product();
        let mut s = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let v: Vec<f32> = (0..n)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect();
        Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
    }

    /// The largest absolute difference between two tensors of one shape.
    pub fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
        (a - b)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap()
    }

    /// Check the analytic gradient of `f(x).sum() * weights` against
    /// central finite differences (in f64 on the f32 op, with tolerance).
    pub fn grad_check(x: &Tensor, f: &dyn Fn(&Tensor) -> Tensor, eps: f32, which: &str) {
        let var = candle_core::Var::from_tensor(x).unwrap();
        let y = f(var.as_tensor());
        let proj = rand_tensor(y.dims(), 99);
        let loss = (y * &proj).unwrap().sum_all().unwrap();
        let grads = loss.backward().unwrap();
        let g = grads
            .get(var.as_tensor())
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let base = x.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let step = (base.len() / 40).max(1);
        for i in (0..base.len()).step_by(step) {
            let mut plus = base.clone();
            plus[i] += eps;
            let mut minus = base.clone();
            minus[i] -= eps;
            let eval = |v: Vec<f32>| -> f64 {
                let t = Tensor::from_vec(v, x.dims(), x.device()).unwrap();
                let y = f(&t);
                (y * &proj)
                    .unwrap()
                    .sum_all()
                    .unwrap()
                    .to_scalar::<f32>()
                    .unwrap() as f64
            };
            let num = (eval(plus) - eval(minus)) / (2.0 * eps as f64);
            let tol = 2e-2 * (1.0 + num.abs());
            assert!(
                (num - g[i] as f64).abs() < tol,
                "{which}: gradient {i}: analytic {} numeric {num}",
                g[i]
            );
        }
    }
}

/// The ops against values PyTorch computed (`bench/make_torch_fixtures.py`).
#[cfg(test)]
mod torch_reference {
    use super::*;
    use candle_core::{Device, Tensor, Var};

    fn filled(shape: &[usize], f: impl Fn(usize) -> f64) -> Tensor {
        let n: usize = shape.iter().product();
        let v: Vec<f32> = (0..n).map(|i| f(i) as f32).collect();
        Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
    }
    fn xf(i: usize) -> f64 {
        (0.37 * i as f64 + 0.1).sin()
    }
    fn wf(i: usize) -> f64 {
        (0.53 * i as f64).cos()
    }
    fn pf(i: usize) -> f64 {
        (0.11 * i as f64 + 0.3).sin()
    }
    fn dims(v: &serde_json::Value) -> Vec<usize> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_u64().unwrap() as usize)
            .collect()
    }
    fn close(what: &str, got: &Tensor, want: &serde_json::Value) {
        let got = got.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let want: Vec<f64> = want
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        assert_eq!(got.len(), want.len(), "{what}: length");
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert!(
                (*g as f64 - w).abs() < 1e-4 * (1.0 + w.abs()),
                "{what}[{i}]: {g} vs torch {w}"
            );
        }
    }

    #[test]
    fn ops_match_pytorch() {
        let fx: serde_json::Value =
            serde_json::from_str(include_str!("fixtures/torch_reference.json")).unwrap();
        let cases = fx["cases"].as_array().unwrap();
        assert!(cases.len() >= 18);
        for c in cases {
            let op = c["op"].as_str().unwrap();
            let us = |k: &str| c[k].as_u64().unwrap_or(0) as usize;
            let xs = dims(&c["x_shape"]);
            let x = Var::from_tensor(&filled(&xs, xf)).unwrap();
            let proj = filled(&dims(&c["y_shape"]), pf);
            let what = format!(
                "{op} {c_k}/{c_s}/{c_p}",
                c_k = us("k"),
                c_s = us("stride"),
                c_p = us("pad")
            );
            match op {
                "depthwise" => {
                    let k = us("k");
                    let w = Var::from_tensor(&filled(&[xs[1], 1, k, k], wf)).unwrap();
                    let p = DwParams {
                        k,
                        stride: us("stride"),
                        pad: us("pad"),
                        dilation: us("dilation"),
                        relu: false,
                    };
                    let y = depthwise_conv2d(x.as_tensor(), w.as_tensor(), p).unwrap();
                    close(&what, &y, &c["y"]);
                    let g = (&y * &proj).unwrap().sum_all().unwrap().backward().unwrap();
                    close(
                        &format!("{what} dx"),
                        g.get(x.as_tensor()).unwrap(),
                        &c["dx"],
                    );
                    close(
                        &format!("{what} dw"),
                        g.get(w.as_tensor()).unwrap(),
                        &c["dw"],
                    );
                }
                "max_pool" | "avg_pool" => {
                    let kind = if op == "max_pool" {
                        PoolKind::Max
                    } else {
                        PoolKind::Avg
                    };
                    let p = PoolParams {
                        kind,
                        k: us("k"),
                        stride: us("stride"),
                        pad: us("pad"),
                    };
                    let y = pool2d(x.as_tensor(), p).unwrap();
                    close(&what, &y, &c["y"]);
                    let g = (&y * &proj).unwrap().sum_all().unwrap().backward().unwrap();
                    close(
                        &format!("{what} dx"),
                        g.get(x.as_tensor()).unwrap(),
                        &c["dx"],
                    );
                }
                "batch_norm" => {
                    let gm = Var::from_tensor(&filled(&[2], |i| 1.0 + 0.5 * wf(i))).unwrap();
                    let bt = Var::from_tensor(&filled(&[2], |i| 0.2 * xf(i))).unwrap();
                    let (y, _) =
                        batch_norm_train(x.as_tensor(), gm.as_tensor(), bt.as_tensor(), 1e-5)
                            .unwrap();
                    close(&what, &y, &c["y"]);
                    let g = (&y * &proj).unwrap().sum_all().unwrap().backward().unwrap();
                    close("bn dx", g.get(x.as_tensor()).unwrap(), &c["dx"]);
                    close("bn dgamma", g.get(gm.as_tensor()).unwrap(), &c["dgamma"]);
                    close("bn dbeta", g.get(bt.as_tensor()).unwrap(), &c["dbeta"]);
                }
                "factorized_reduce" => {
                    // The fused op: ReLU, each half of the channels from its
                    // stride-2 subsample, batch norm.
                    let cin = xs[1];
                    let w1 = Var::from_tensor(&filled(&[3, cin, 1, 1], wf)).unwrap();
                    let w2 = Var::from_tensor(&filled(&[3, cin, 1, 1], |i| wf(i + 12))).unwrap();
                    let gm = Var::from_tensor(&filled(&[6], |i| 1.0 + 0.5 * wf(i))).unwrap();
                    let bt = Var::from_tensor(&filled(&[6], |i| 0.2 * xf(i))).unwrap();
                    let pw = Tensor::cat(&[w1.as_tensor(), w2.as_tensor()], 0).unwrap();
                    let p = BlockParams {
                        dw: None,
                        pw: &pw,
                        gamma: gm.as_tensor(),
                        beta: bt.as_tensor(),
                    };
                    let (y, _) =
                        dw_block_train(x.as_tensor(), p, Front::ReluReduce, 1e-5, None).unwrap();
                    close(&what, &y, &c["y"]);
                    let g = (&y * &proj).unwrap().sum_all().unwrap().backward().unwrap();
                    close("fr dx", g.get(x.as_tensor()).unwrap(), &c["dx"]);
                    close("fr dw1", g.get(w1.as_tensor()).unwrap(), &c["dw1"]);
                    close("fr dw2", g.get(w2.as_tensor()).unwrap(), &c["dw2"]);
                    close("fr dgamma", g.get(gm.as_tensor()).unwrap(), &c["dgamma"]);
                    close("fr dbeta", g.get(bt.as_tensor()).unwrap(), &c["dbeta"]);
                }
                "sep_conv_sum" => {
                    // The fused pair of blocks with a node's other input.
                    let c3 = xs[1];
                    let var = |shape: &[usize], f: &dyn Fn(usize) -> f64| {
                        Var::from_tensor(&filled(shape, f)).unwrap()
                    };
                    let ws: Vec<Var> = [0, 27, 40, 70]
                        .iter()
                        .enumerate()
                        .map(|(j, &o)| {
                            let shape: &[usize] = if j % 2 == 0 {
                                &[c3, 1, 3, 3]
                            } else {
                                &[c3, c3, 1, 1]
                            };
                            var(shape, &|i| wf(i + o))
                        })
                        .collect();
                    let bn: Vec<(Var, Var)> = [0, 5]
                        .iter()
                        .map(|&o| {
                            (
                                var(&[c3], &|i| 1.0 + 0.5 * wf(i + o)),
                                var(&[c3], &|i| 0.2 * xf(i + o)),
                            )
                        })
                        .collect();
                    let res = var(&xs, &|i| xf(i + 100));
                    let block = |j: usize| BlockParams {
                        dw: Some(ws[2 * j].as_tensor()),
                        pw: ws[2 * j + 1].as_tensor(),
                        gamma: bn[j].0.as_tensor(),
                        beta: bn[j].1.as_tensor(),
                    };
                    let f = Front::Depthwise(DwParams {
                        k: 3,
                        stride: 1,
                        pad: 1,
                        dilation: 1,
                        relu: true,
                    });
                    let (y, _) = sep_block_train(
                        x.as_tensor(),
                        (block(0), f),
                        (block(1), f),
                        1e-5,
                        Some(res.as_tensor()),
                    )
                    .unwrap();
                    close(&what, &y, &c["y"]);
                    let g = (&y * &proj).unwrap().sum_all().unwrap().backward().unwrap();
                    close("sep dx", g.get(x.as_tensor()).unwrap(), &c["dx"]);
                    close("sep dres", g.get(res.as_tensor()).unwrap(), &c["dres"]);
                    for (j, w) in ws.iter().enumerate() {
                        let want = &c["dparams"][j];
                        close(
                            &format!("sep dparam {j}"),
                            g.get(w.as_tensor()).unwrap(),
                            want,
                        );
                    }
                    for (j, (gm, bt)) in bn.iter().enumerate() {
                        let want = &c["dbn"][j];
                        close(
                            &format!("sep dgamma {j}"),
                            g.get(gm.as_tensor()).unwrap(),
                            &want[0],
                        );
                        close(
                            &format!("sep dbeta {j}"),
                            g.get(bt.as_tensor()).unwrap(),
                            &want[1],
                        );
                    }
                }
                other => panic!("unknown fixture op {other}"),
            }
        }
    }
}

/// The shared helpers of `seki-kernels` (its own crate's tests do not run
/// in `cargo test` of this package, so they live here).
#[cfg(test)]
mod kernel_helpers {
    use seki_kernels::{dot, sum, valid_range};

    #[test]
    fn dot_and_sum_match_plain_loops_and_ranges_clip() {
        let a: Vec<f32> = (0..37).map(|i| i as f32 * 0.5).collect();
        let b: Vec<f32> = (0..37).map(|i| 1.0 - i as f32 * 0.25).collect();
        let want: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert!((dot(&a, &b) - want).abs() < 1e-3);
        assert!((sum(&a) - a.iter().sum::<f32>()).abs() < 1e-3);
        assert_eq!(valid_range(-1, 1, 5, 5), (1, 5));
        assert_eq!(valid_range(1, 1, 5, 5), (0, 4));
        assert_eq!(valid_range(-1, 2, 5, 3), (1, 3));
        assert_eq!(valid_range(9, 1, 5, 5), (0, 0));
    }
}
