//! The DARTS depthwise block (ReLU -> depthwise -> pointwise -> batch norm)
//! as one candle op on the CPU (kernels in `seki_kernels::dwblock`); without
//! the depthwise stage ([`Front::Relu`]) the same op is a 1x1 `ReLUConvBN`.
//!
//! Unfused it is three graph nodes, and candle's backward accumulates each
//! node's gradient into a fresh zeroed buffer (`zeros_like` + `add`); fused,
//! the depthwise output and the gradients of the two intermediate results
//! never reach memory. The four parameters travel as one packed tensor
//! (`cat` of the flattened depthwise and pointwise weights, scale and
//! shift) so that the op has two inputs; candle splits the packed gradient
//! back to the parameters. On other devices (CUDA) the block is the three
//! separate ops.

use super::{dims4, f32_slice, BnStats};
use candle_core::{bail, CpuStorage, CustomOp3, Layout, Result, Shape, Tensor};
use seki_kernels::batchnorm::Stats;
pub use seki_kernels::dwblock::Front;
use seki_kernels::dwblock::{self as k, packed_len, BlockDims, BlockWeights};
pub use seki_kernels::DwParams;
use std::sync::{Arc, Mutex};

/// The parameters of one block: depthwise weight `[Cin, 1, k, k]` (none
/// for [`Front::Relu`]),
/// pointwise weight `[Cout, Cin, 1, 1]`, and per-output-channel `[Cout]`
/// batch-norm scale and shift (in inference: the running statistics
/// folded in, see [`dw_block_infer`]).
#[derive(Debug, Clone, Copy)]
pub struct BlockParams<'a> {
    /// Depthwise filters.
    pub dw: Option<&'a Tensor>,
    /// Pointwise weight.
    pub pw: &'a Tensor,
    /// Batch-norm scale (`gamma`).
    pub gamma: &'a Tensor,
    /// Batch-norm shift (`beta`).
    pub beta: &'a Tensor,
}

impl BlockParams<'_> {
    /// All four in one flat tensor (differentiable: `cat` of reshapes).
    pub(super) fn packed(&self) -> Result<Tensor> {
        let mut parts = Vec::with_capacity(4);
        if let Some(dw) = self.dw {
            parts.push(dw.flatten_all()?);
        }
        parts.push(self.pw.flatten_all()?);
        parts.push(self.gamma.flatten_all()?);
        parts.push(self.beta.flatten_all()?);
        Tensor::cat(&parts, 0)
    }

    /// The depthwise weight a depthwise front needs.
    pub(super) fn dw_for(&self, front: &Front) -> Result<Option<&Tensor>> {
        match (front, self.dw) {
            (Front::Depthwise(_), None) => bail!("dw-block: a depthwise front needs its weight"),
            (Front::Relu | Front::ReluReduce, Some(_)) => {
                bail!("dw-block: a ReLU front takes no depthwise weight")
            }
            (_, dw) => Ok(dw),
        }
    }
}

/// Training forward of the block on `x: [N, Cin, H, W]` with batch
/// statistics: returns the output `[N, Cout, OH, OW]` and the statistics
/// (for the running averages). A `residual` of the output's shape (a DARTS
/// node's other input) is added to the output in the same pass, one graph
/// node and one gradient buffer fewer than a separate addition.
pub fn dw_block_train(
    x: &Tensor,
    w: BlockParams<'_>,
    front: Front,
    eps: f64,
    residual: Option<&Tensor>,
) -> Result<(Tensor, BnStats)> {
    w.dw_for(&front)?;
    if !x.device().is_cpu() {
        let (y, st) = dw_block_train_composite(x, w, front, eps)?;
        return Ok((add_residual(y, residual)?, st));
    }
    let saved = Arc::new(Mutex::new(None));
    let op = BlockTrain {
        front,
        eps,
        cout: w.pw.dims().first().copied().unwrap_or(0),
        saved: saved.clone(),
    };
    let x = x.contiguous()?;
    let y = match residual {
        Some(r) => x.apply_op3(&w.packed()?, &r.contiguous()?, op)?,
        None => x.apply_op2(&w.packed()?, op)?,
    };
    let Some(s) = kept(&saved) else {
        bail!("dw-block: no statistics were recorded")
    };
    Ok((y, BnStats::from_kernel(s.stats.clone(), x.device())?))
}

/// The pointwise convolution's output from the separate ops.
fn unfused_conv(x: &Tensor, w: BlockParams<'_>, front: Front) -> Result<Tensor> {
    match (front, w.dw_for(&front)?) {
        (Front::Depthwise(p), Some(dw)) => {
            let t = super::depthwise_conv2d(x, dw, p)?;
            super::pointwise_conv2d(&t, w.pw, false)
        }
        (Front::ReluReduce, _) => {
            // ReLU, zeros past an odd far edge, then each half of the
            // output channels from its stride-2 subsample.
            let (n, c, h, wd) = x.dims4()?;
            let (oh, ow) = (h.div_ceil(2), wd.div_ceil(2));
            let xp = x
                .relu()?
                .pad_with_zeros(2, 0, h % 2)?
                .pad_with_zeros(3, 0, wd % 2)?;
            let grid = xp.reshape((n, c, oh, 2, ow, 2))?;
            let cout = w.pw.dim(0)?;
            let half = cout / 2;
            let mut parts = Vec::with_capacity(2);
            for (o, lo, len) in [(0, 0, half), (1, half, cout - half)] {
                let sub = grid
                    .narrow(3, o, 1)?
                    .narrow(5, o, 1)?
                    .reshape((n, c, oh, ow))?;
                parts.push(super::pointwise_conv2d(
                    &sub,
                    &w.pw.narrow(0, lo, len)?,
                    false,
                )?);
            }
            Tensor::cat(&parts, 1)
        }
        _ => super::pointwise_conv2d(x, w.pw, true),
    }
}

/// The same from the separate ops (the path for devices other than the CPU,
/// and the reference of the tests).
pub(crate) fn dw_block_train_composite(
    x: &Tensor,
    w: BlockParams<'_>,
    front: Front,
    eps: f64,
) -> Result<(Tensor, BnStats)> {
    let z = unfused_conv(x, w, front)?;
    super::batch_norm_train(&z, w.gamma, w.beta, eps)
}

/// Inference forward: `scale * pw(front(x)) + shift (+ residual)` per
/// output channel, where `scale` and `shift` (`[Cout]`, in `w.gamma` and
/// `w.beta`) fold the running statistics in; the residual as in
/// [`dw_block_train`]. No gradient.
pub fn dw_block_infer(
    x: &Tensor,
    w: BlockParams<'_>,
    front: Front,
    residual: Option<&Tensor>,
) -> Result<Tensor> {
    if !x.device().is_cpu() {
        let z = unfused_conv(x, w, front)?;
        let c = w.gamma.elem_count();
        let y = z
            .broadcast_mul(&w.gamma.reshape((1, c, 1, 1))?)?
            .broadcast_add(&w.beta.reshape((1, c, 1, 1))?)?;
        return add_residual(y, residual);
    }
    w.dw_for(&front)?;
    let cout = w.pw.dims().first().copied().unwrap_or(0);
    let x = x.contiguous()?;
    let packed = w.packed()?.detach();
    let op = BlockInfer { front, cout };
    match residual {
        Some(r) => x.apply_op3_no_bwd(&packed, &r.detach().contiguous()?, &op),
        None => x.apply_op2_no_bwd(&packed, &op),
    }
}

/// `y + residual`, the separate addition (devices other than the CPU).
pub(crate) fn add_residual(y: Tensor, residual: Option<&Tensor>) -> Result<Tensor> {
    match residual {
        Some(r) => y + r,
        None => Ok(y),
    }
}

/// The residual's values, which must have the output's shape.
pub(super) fn residual_slice<'a>(
    op: &str,
    d: &BlockDims,
    s: &'a CpuStorage,
    l: &Layout,
) -> Result<&'a [f32]> {
    if l.dims() != [d.n, d.cout, d.oh, d.ow] {
        bail!(
            "{op}: residual of shape {:?}, expected the output's [{}, {}, {}, {}]",
            l.dims(),
            d.n,
            d.cout,
            d.oh,
            d.ow
        )
    }
    f32_slice(op, s, l)
}

/// What the training forward keeps for the backward.
struct Saved {
    /// The pointwise output before normalisation.
    z: Vec<f32>,
    stats: Stats,
}

/// Shapes from the input layout and the packed parameters' length.
fn geometry(
    op: &str,
    front: &Front,
    cout: usize,
    x: &Layout,
    packed: &Layout,
) -> Result<BlockDims> {
    let d = block_dims(op, front, cout, dims4(op, x)?)?;
    let want = packed_len(front, d.cin, cout);
    if packed.dims() != [want] {
        bail!(
            "{op}: packed parameters of shape {:?}, expected [{want}] for {} -> {cout} channels, {front:?}",
            packed.dims(),
            d.cin,
        )
    }
    Ok(d)
}

/// A block's shapes from its input's (`n, cin, h, w`).
pub(super) fn block_dims(
    op: &str,
    front: &Front,
    cout: usize,
    (n, cin, h, w): (usize, usize, usize, usize),
) -> Result<BlockDims> {
    let out = match front {
        Front::Depthwise(p) => {
            if p.k == 0 || p.stride == 0 || p.dilation == 0 {
                bail!("{op}: kernel, stride and dilation must be positive")
            }
            p.out_size(h).zip(p.out_size(w))
        }
        Front::Relu => Some((h, w)),
        Front::ReluReduce => Some((h.div_ceil(2), w.div_ceil(2))),
    };
    match out {
        Some((oh, ow)) if oh > 0 && ow > 0 && n > 0 && cout > 0 => Ok(BlockDims {
            n,
            cin,
            cout,
            h,
            w,
            oh,
            ow,
        }),
        _ => {
            bail!("{op}: input {n}x{cin}x{h}x{w} is empty or smaller than the window of {front:?}")
        }
    }
}

/// The packed parameters split: (weights, scale, shift).
pub(super) fn split<'a>(
    packed: &'a [f32],
    front: &Front,
    d: &BlockDims,
) -> (BlockWeights<'a>, &'a [f32], &'a [f32]) {
    let (dw, rest) = packed.split_at(d.cin * front.taps());
    let (pw, rest) = rest.split_at(d.cout * d.cin);
    let (gamma, beta) = rest.split_at(d.cout);
    (BlockWeights { dw, pw }, gamma, beta)
}

/// What a training forward saved (for its caller and its backward).
pub(super) fn kept<T>(saved: &Mutex<Option<Arc<T>>>) -> Option<Arc<T>> {
    match saved.lock() {
        Ok(s) => s.clone(),
        Err(_) => None,
    }
}

/// What a training forward saved, for its backward.
pub(super) fn take_saved<T>(saved: &Mutex<Option<Arc<T>>>, op: &str) -> Result<Arc<T>> {
    match kept(saved) {
        Some(s) => Ok(s),
        None => bail!("{op}: backward before forward"),
    }
}

/// A backward op's one buffer `[dx (flattened), d packed]` as the two
/// gradients.
pub(super) fn split_grads(x: &Tensor, packed: &Tensor, out: Tensor) -> Result<(Tensor, Tensor)> {
    let nx = x.elem_count();
    let gx = out.narrow(0, 0, nx)?.reshape(x.dims())?;
    let gp = out.narrow(0, nx, packed.elem_count())?;
    Ok((gx, gp))
}

/// The candle traits of a fused op on `(x, packed)` with an optional
/// residual as a third input: `CustomOp2` without it, `CustomOp3` with it.
/// The type's `forward(s1, l1, s2, l2, residual)` computes; for `train`,
/// `backward(x, packed, g)` gives the gradients of `x` and `packed` (a
/// residual's gradient is the output's own).
macro_rules! fused_op {
    (train $ty:ty, $name:literal) => {
        fused_op!(@fwd $ty, $name, {
            fn bwd(
                &self,
                x: &Tensor,
                packed: &Tensor,
                _res: &Tensor,
                g: &Tensor,
            ) -> Result<(Option<Tensor>, Option<Tensor>)> {
                let (gx, gp) = self.backward(x, packed, g)?;
                Ok((Some(gx), Some(gp)))
            }
        }, {
            fn bwd(
                &self,
                x: &Tensor,
                packed: &Tensor,
                _residual: &Tensor,
                _res: &Tensor,
                g: &Tensor,
            ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
                let (gx, gp) = self.backward(x, packed, g)?;
                Ok((Some(gx), Some(gp), Some(g.clone())))
            }
        });
    };
    (infer $ty:ty, $name:literal) => {
        fused_op!(@fwd $ty, $name, {}, {});
    };
    (@fwd $ty:ty, $name:literal, {$($bwd2:tt)*}, {$($bwd3:tt)*}) => {
        impl candle_core::CustomOp2 for $ty {
            fn name(&self) -> &'static str {
                $name
            }

            fn cpu_fwd(
                &self,
                s1: &CpuStorage,
                l1: &Layout,
                s2: &CpuStorage,
                l2: &Layout,
            ) -> Result<(CpuStorage, Shape)> {
                self.forward(s1, l1, s2, l2, None)
            }

            $($bwd2)*
        }

        impl candle_core::CustomOp3 for $ty {
            fn name(&self) -> &'static str {
                $name
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
                self.forward(s1, l1, s2, l2, Some((s3, l3)))
            }

            $($bwd3)*
        }
    };
}
pub(super) use fused_op;

struct BlockTrain {
    front: Front,
    eps: f64,
    cout: usize,
    saved: Arc<Mutex<Option<Arc<Saved>>>>,
}

impl BlockTrain {
    fn forward(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        residual: Option<(&CpuStorage, &Layout)>,
    ) -> Result<(CpuStorage, Shape)> {
        let op = "dw-block-train";
        let d = geometry(op, &self.front, self.cout, l1, l2)?;
        let x = f32_slice(op, s1, l1)?;
        let packed = f32_slice(op, s2, l2)?;
        let r = match residual {
            Some((s, l)) => Some(residual_slice(op, &d, s, l)?),
            None => None,
        };
        let (wt, gamma, beta) = split(packed, &self.front, &d);
        let (y, z, stats) = k::forward_train(x, wt, gamma, beta, &self.front, d, self.eps, r);
        if let Ok(mut g) = self.saved.lock() {
            *g = Some(Arc::new(Saved { z, stats }));
        }
        Ok((
            CpuStorage::F32(y),
            Shape::from_dims(&[d.n, d.cout, d.oh, d.ow]),
        ))
    }

    /// The gradients of `x` and of the packed parameters (a residual's is
    /// the output's own).
    fn backward(&self, x: &Tensor, packed: &Tensor, g: &Tensor) -> Result<(Tensor, Tensor)> {
        let op = BlockBwd {
            front: self.front,
            cout: self.cout,
            saved: take_saved(&self.saved, "dw-block")?,
        };
        split_grads(
            x,
            packed,
            x.apply_op3_no_bwd(packed, &g.contiguous()?, &op)?,
        )
    }
}

fused_op!(train BlockTrain, "dw-block-train");

/// `(x, packed, grad) -> [dx (flattened), d packed]` in one buffer.
struct BlockBwd {
    front: Front,
    cout: usize,
    saved: Arc<Saved>,
}

impl CustomOp3 for BlockBwd {
    fn name(&self) -> &'static str {
        "dw-block-train-bwd"
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
        let d = geometry(self.name(), &self.front, self.cout, l1, l2)?;
        let out_len = d.n * d.cout * d.oh * d.ow;
        if l3.dims() != [d.n, d.cout, d.oh, d.ow]
            || self.saved.z.len() != out_len
            || self.saved.stats.mean.len() != d.cout
        {
            bail!("{}: mismatched shapes", self.name())
        }
        let x = f32_slice(self.name(), s1, l1)?;
        let packed = f32_slice(self.name(), s2, l2)?;
        let g = f32_slice(self.name(), s3, l3)?;
        let (wt, gamma, _) = split(packed, &self.front, &d);
        // One buffer: the input gradient, then the packed parameters'
        // (`geometry` checked that the packed length is the kernel's).
        let out = k::backward_packed(
            x,
            &self.saved.z,
            g,
            wt,
            gamma,
            &self.saved.stats,
            &self.front,
            d,
            &[],
        );
        let len = out.len();
        Ok((CpuStorage::F32(out), Shape::from_dims(&[len])))
    }
}

struct BlockInfer {
    front: Front,
    cout: usize,
}

impl BlockInfer {
    fn forward(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        residual: Option<(&CpuStorage, &Layout)>,
    ) -> Result<(CpuStorage, Shape)> {
        let op = "dw-block-infer";
        let d = geometry(op, &self.front, self.cout, l1, l2)?;
        let x = f32_slice(op, s1, l1)?;
        let packed = f32_slice(op, s2, l2)?;
        let r = match residual {
            Some((s, l)) => Some(residual_slice(op, &d, s, l)?),
            None => None,
        };
        let (wt, scale, shift) = split(packed, &self.front, &d);
        let y = k::forward_infer(x, wt, scale, shift, &self.front, d, r);
        Ok((
            CpuStorage::F32(y),
            Shape::from_dims(&[d.n, d.cout, d.oh, d.ow]),
        ))
    }
}

fused_op!(infer BlockInfer, "dw-block-infer");

#[cfg(test)]
mod tests {
    use super::super::testutil::{grad_check, max_diff, rand_tensor};
    use super::*;
    use candle_core::Var;

    /// `[dw, pw, gamma, beta]`; `dw` is empty (and unused) for `k == 0`.
    fn params(cin: usize, cout: usize, k: usize, seed: u64) -> [Tensor; 4] {
        [
            rand_tensor(&[cin, 1, k, k], seed),
            rand_tensor(&[cout, cin, 1, 1], seed + 1),
            (rand_tensor(&[cout], seed + 2) + 1.5).unwrap(),
            rand_tensor(&[cout], seed + 3),
        ]
    }

    /// The depthwise front for `k > 0`, the ReLU front for `k == 0` (the
    /// reduce front with `stride` 2).
    fn front_of(k: usize, stride: usize, dilation: usize, relu: bool) -> Front {
        if k == 0 {
            return if stride == 2 {
                Front::ReluReduce
            } else {
                Front::Relu
            };
        }
        Front::Depthwise(DwParams {
            k,
            stride,
            pad: dilation * (k - 1) / 2,
            dilation,
            relu,
        })
    }

    /// The fused op against the separate ops: output, statistics and the
    /// gradients of the input and all parameters, at odd sizes.
    #[test]
    fn fused_block_matches_the_separate_ops() {
        for (k, stride, dilation, relu, n, cin, cout, h, w) in [
            (3, 1, 1, true, 3, 5, 7, 11, 9),
            (5, 1, 2, true, 2, 4, 3, 13, 10),
            (3, 2, 1, true, 2, 6, 5, 9, 11),
            (3, 1, 1, false, 2, 3, 3, 5, 6),
            (0, 1, 1, true, 3, 10, 5, 7, 6),
            (0, 2, 1, true, 3, 4, 5, 7, 6),
            (0, 2, 1, true, 2, 3, 6, 8, 9),
        ] {
            let front = front_of(k, stride, dilation, relu);
            let x = Var::from_tensor(&rand_tensor(&[n, cin, h, w], 31)).unwrap();
            let ps = params(cin, cout, k, 40);
            let vars: Vec<Var> = ps.iter().map(|t| Var::from_tensor(t).unwrap()).collect();
            let used = if k == 0 { &vars[1..] } else { &vars[..] };
            let run = |f: &dyn Fn(&Tensor, BlockParams<'_>) -> (Tensor, BnStats)| {
                let w = BlockParams {
                    dw: (k > 0).then(|| vars[0].as_tensor()),
                    pw: vars[1].as_tensor(),
                    gamma: vars[2].as_tensor(),
                    beta: vars[3].as_tensor(),
                };
                let (y, st) = f(x.as_tensor(), w);
                let proj = rand_tensor(y.dims(), 77);
                let grads = (&y * &proj).unwrap().sum_all().unwrap().backward().unwrap();
                let mut out = vec![y, st.mean, st.var];
                out.push(grads.get(x.as_tensor()).unwrap().clone());
                for v in used {
                    out.push(grads.get(v.as_tensor()).unwrap().clone());
                }
                out
            };
            let a = run(&|x, w| dw_block_train(x, w, front, 1e-5, None).unwrap());
            let b = run(&|x, w| dw_block_train_composite(x, w, front, 1e-5).unwrap());
            assert_eq!(a.len(), 4 + used.len());
            for (i, (a, b)) in a.iter().zip(&b).enumerate() {
                assert_eq!(a.dims(), b.dims(), "output {i}");
                let diff = max_diff(a, b);
                assert!(diff < 1e-4, "{front:?}: output {i}: {diff}");
            }
        }
    }

    #[test]
    fn gradients_match_finite_differences() {
        // Inputs kept away from the ReLU's kink, where central differences
        // with this step would straddle it.
        let v = rand_tensor(&[2, 3, 5, 6], 51)
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let v: Vec<f32> = v.iter().map(|a| a + 0.05f32.copysign(*a)).collect();
        let x = Tensor::from_vec(v, (2, 3, 5, 6), &candle_core::Device::Cpu).unwrap();
        let [dw, pw, gm, bt] = params(3, 4, 3, 52);
        for k in [3, 0] {
            let front = front_of(k, 1, 1, true);
            let f = |x: &Tensor, dw: &Tensor, pw: &Tensor| {
                let w = BlockParams {
                    dw: (k > 0).then_some(dw),
                    pw,
                    gamma: &gm,
                    beta: &bt,
                };
                dw_block_train(x, w, front, 1e-5, None).unwrap().0
            };
            grad_check(&x, &|t| f(t, &dw, &pw), 1e-2, "block x");
            grad_check(&pw, &|t| f(&x, &dw, t), 1e-2, "block pw");
            if k > 0 {
                grad_check(&dw, &|t| f(&x, t, &pw), 1e-2, "block dw");
            }
        }
    }

    /// Inference with the folded running statistics, both fronts; bad
    /// parameters are errors.
    #[test]
    fn inference_matches_the_separate_ops() {
        let x = rand_tensor(&[3, 4, 11, 9], 61);
        for k in [5, 0] {
            let front = front_of(k, 2, 2, true);
            let [dw, pw, scale, shift] = params(4, 6, k, 62);
            let w = BlockParams {
                dw: (k > 0).then_some(&dw),
                pw: &pw,
                gamma: &scale,
                beta: &shift,
            };
            let y = dw_block_infer(&x, w, front, None).unwrap();
            let z = unfused_conv(&x, w, front).unwrap();
            let want = z
                .broadcast_mul(&scale.reshape((1, 6, 1, 1)).unwrap())
                .unwrap()
                .broadcast_add(&shift.reshape((1, 6, 1, 1)).unwrap())
                .unwrap();
            assert!(max_diff(&y, &want) < 1e-5, "{front:?}");
            // A residual is summed in; one of another shape is an error.
            let r = rand_tensor(want.dims(), 64);
            let yr = dw_block_infer(&x, w, front, Some(&r)).unwrap();
            assert!(max_diff(&yr, &(&want + &r).unwrap()) < 1e-5, "{front:?}");
            let e = dw_block_infer(&x, w, front, Some(&x)).unwrap_err();
            assert!(e.to_string().contains("residual of shape"), "{e}");
            let bad = rand_tensor(&[5], 63);
            let e = dw_block_infer(&x, BlockParams { beta: &bad, ..w }, front, None).unwrap_err();
            assert!(e.to_string().contains("packed parameters"), "{e}");
            let wrong = BlockParams {
                dw: if k > 0 { None } else { Some(&dw) },
                ..w
            };
            assert!(dw_block_infer(&x, wrong, front, None).is_err());
        }
    }
}
