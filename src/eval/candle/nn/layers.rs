//! Layers: convolution, depthwise convolution, batch norm, linear, pooling,
//! and the composite blocks both spaces use.

use super::{Builder, Ctx};
use crate::eval::candle::ops::{self, DwParams, PoolKind, PoolParams};
use candle_core::{DType, Result, Tensor, Var};

/// A parameter as used by a forward pass: in inference it is detached, so
/// no autograd graph (and none of its activations) is kept alive.
fn param(v: &Var, ctx: &Ctx) -> Tensor {
    if ctx.train {
        v.as_tensor().clone()
    } else {
        v.as_tensor().detach()
    }
}

/// A dense convolution without bias (`[out, in, k, k]`).
pub struct Conv {
    w: Var,
    k: usize,
    stride: usize,
    pad: usize,
}

impl Conv {
    /// PyTorch's default initialisation: uniform with bound `1/sqrt(fan_in)`.
    pub fn new(
        b: &mut Builder,
        cin: usize,
        cout: usize,
        k: usize,
        stride: usize,
        pad: usize,
    ) -> Result<Self> {
        let bound = 1.0 / ((cin * k * k) as f64).sqrt();
        let w = b.uniform("weight", &[cout, cin, k, k], bound)?;
        Ok(Conv { w, k, stride, pad })
    }

    /// Apply.
    pub fn forward(&self, x: &Tensor, ctx: &mut Ctx) -> Result<Tensor> {
        self.forward_relu(x, false, ctx)
    }

    /// The weight as a forward pass uses it (detached in inference).
    pub fn weight(&self, ctx: &Ctx) -> Tensor {
        param(&self.w, ctx)
    }

    /// Apply to `relu(x)` when `relu` (fused for pointwise convolutions).
    pub fn forward_relu(&self, x: &Tensor, relu: bool, ctx: &mut Ctx) -> Result<Tensor> {
        let (n, cin, _, _) = x.dims4()?;
        let cout = self.w.dim(0)?;
        let y = if self.k == 1 && self.stride == 1 && self.pad == 0 {
            ops::pointwise_conv2d(x, &param(&self.w, ctx), relu)?
        } else {
            let x = if relu { ops::relu(x)? } else { x.clone() };
            let x = &x;
            // Unfold, then one matrix product per sample.
            let p = DwParams {
                k: self.k,
                stride: self.stride,
                pad: self.pad,
                dilation: 1,
                relu: false,
            };
            let (cols, (oh, ow)) = ops::im2col(x, p)?;
            let w = param(&self.w, ctx).reshape((cout, cin * self.k * self.k))?;
            w.broadcast_left(n)?
                .matmul(&cols)?
                .reshape((n, cout, oh, ow))?
        };
        let (_, _, oh, ow) = y.dims4()?;
        ctx.macs += (cout * oh * ow * cin * self.k * self.k) as u64;
        Ok(y)
    }
}

/// A depthwise convolution (`[C, 1, k, k]`).
pub struct DwConv {
    w: Var,
    p: DwParams,
}

impl DwConv {
    /// Uniform init with bound `1/sqrt(k*k)`.
    pub fn new(b: &mut Builder, c: usize, p: DwParams) -> Result<Self> {
        let bound = 1.0 / ((p.k * p.k) as f64).sqrt();
        let w = b.uniform("weight", &[c, 1, p.k, p.k], bound)?;
        Ok(DwConv { w, p })
    }

    /// The weight as a forward pass uses it (detached in inference).
    pub fn weight(&self, ctx: &Ctx) -> Tensor {
        param(&self.w, ctx)
    }

    /// The geometry.
    pub fn params(&self) -> DwParams {
        self.p
    }

    /// Apply.
    pub fn forward(&self, x: &Tensor, ctx: &mut Ctx) -> Result<Tensor> {
        let y = ops::depthwise_conv2d(x, &param(&self.w, ctx), self.p)?;
        let (_, c, oh, ow) = y.dims4()?;
        ctx.macs += (c * oh * ow * self.p.k * self.p.k) as u64;
        Ok(y)
    }
}

/// Batch normalisation with affine parameters and running statistics
/// (momentum 0.1, eps 1e-5, unbiased running variance as in PyTorch).
pub struct BatchNorm {
    gamma: Var,
    beta: Var,
    running_mean: Tensor,
    running_var: Tensor,
}

pub(crate) const BN_EPS: f64 = 1e-5;
const BN_MOMENTUM: f64 = 0.1;

impl BatchNorm {
    /// Scale 1, shift 0, running mean 0 and variance 1.
    pub fn new(b: &mut Builder, c: usize) -> Result<Self> {
        let gamma = b.constant("weight", &[c], 1.0)?;
        let beta = b.constant("bias", &[c], 0.0)?;
        Ok(BatchNorm {
            gamma,
            beta,
            running_mean: Tensor::zeros(c, DType::F32, &b.device)?,
            running_var: Tensor::ones(c, DType::F32, &b.device)?,
        })
    }

    /// Apply: batch statistics (and running-average updates) in training,
    /// running statistics in inference.
    pub fn forward(&mut self, x: &Tensor, ctx: &mut Ctx) -> Result<Tensor> {
        if ctx.skip_batch_norm() {
            return Ok(x.clone());
        }
        let c = self.gamma.dim(0)?;
        if ctx.train {
            let (y, st) = ops::batch_norm_train(x, &self.gamma, &self.beta, BN_EPS)?;
            self.update_running(st)?;
            Ok(y)
        } else {
            let (scale, shift) = self.inference_affine(ctx)?;
            x.broadcast_mul(&scale.reshape((1, c, 1, 1))?)?
                .broadcast_add(&shift.reshape((1, c, 1, 1))?)
        }
    }

    /// Scale and shift (`[C]`) as trainable parameters (for fused ops that
    /// normalise themselves in training).
    pub fn affine_params(&self, ctx: &Ctx) -> (Tensor, Tensor) {
        (param(&self.gamma, ctx), param(&self.beta, ctx))
    }

    /// Fold a training batch's statistics into the running averages.
    pub fn update_running(&mut self, st: ops::BnStats) -> Result<()> {
        let unbias = if st.count > 1 {
            st.count as f64 / (st.count - 1) as f64
        } else {
            1.0
        };
        let (mean, var) = (st.mean, (st.var * unbias)?);
        self.running_mean = ((&self.running_mean * (1.0 - BN_MOMENTUM))? + (mean * BN_MOMENTUM)?)?;
        self.running_var = ((&self.running_var * (1.0 - BN_MOMENTUM))? + (var * BN_MOMENTUM)?)?;
        Ok(())
    }

    /// A fused CPU block (`ops::dwblock`) ending in this batch norm: its
    /// front (depthwise weight `dw` where it has one), the 1x1 weight `pw`,
    /// then this normalisation, plus `residual` when given. Training uses
    /// the batch statistics and folds them into the running averages;
    /// inference, the running statistics.
    pub fn fused_block(
        &mut self,
        x: &Tensor,
        (dw, pw): (Option<&Tensor>, &Tensor),
        front: ops::Front,
        residual: Option<&Tensor>,
        ctx: &Ctx,
    ) -> Result<Tensor> {
        let (gamma, beta) = if ctx.train {
            self.affine_params(ctx)
        } else {
            self.inference_affine(ctx)?
        };
        let w = ops::BlockParams {
            dw,
            pw,
            gamma: &gamma,
            beta: &beta,
        };
        if !ctx.train {
            return ops::dw_block_infer(x, w, front, residual);
        }
        let (y, st) = ops::dw_block_train(x, w, front, BN_EPS, residual)?;
        self.update_running(st)?;
        Ok(y)
    }

    /// Inference as one affine map per channel: `(scale, shift)`, `[C]`.
    pub fn inference_affine(&self, ctx: &Ctx) -> Result<(Tensor, Tensor)> {
        let scale = (param(&self.gamma, ctx) / (&self.running_var + BN_EPS)?.sqrt()?)?;
        let shift = (param(&self.beta, ctx) - (&self.running_mean * &scale)?)?;
        Ok((scale, shift))
    }
}

/// A fully connected layer with bias.
pub struct Linear {
    w: Var,
    b: Var,
}

impl Linear {
    /// PyTorch's default initialisation.
    pub fn new(bld: &mut Builder, cin: usize, cout: usize) -> Result<Self> {
        let bound = 1.0 / (cin as f64).sqrt();
        let w = bld.uniform("weight", &[cout, cin], bound)?;
        let b = bld.uniform("bias", &[cout], bound)?;
        Ok(Linear { w, b })
    }

    /// Apply to `[N, in]`.
    pub fn forward(&self, x: &Tensor, ctx: &mut Ctx) -> Result<Tensor> {
        let (cout, cin) = self.w.dims2()?;
        ctx.macs += (cout * cin) as u64;
        x.matmul(&param(&self.w, ctx).t()?)?
            .broadcast_add(&param(&self.b, ctx))
    }
}

/// Padded pooling.
pub fn pool(x: &Tensor, kind: PoolKind, k: usize, stride: usize, pad: usize) -> Result<Tensor> {
    ops::pool2d(
        x,
        PoolParams {
            kind,
            k,
            stride,
            pad,
        },
    )
}

/// Global average pooling `[N, C, H, W] -> [N, C]`.
pub fn global_avg_pool(x: &Tensor) -> Result<Tensor> {
    x.mean(3)?.mean(2)
}

/// ReLU, convolution, batch norm.
pub struct ReluConvBn {
    conv: Conv,
    bn: BatchNorm,
}

impl ReluConvBn {
    /// Build.
    pub fn new(
        b: &mut Builder,
        cin: usize,
        cout: usize,
        k: usize,
        stride: usize,
        pad: usize,
    ) -> Result<Self> {
        let conv = b.scope("conv", |b| Conv::new(b, cin, cout, k, stride, pad))?;
        let bn = b.scope("bn", |b| BatchNorm::new(b, cout))?;
        Ok(ReluConvBn { conv, bn })
    }

    /// Apply: a 1x1 one on the CPU as one fused op (`ops::dwblock` with
    /// the ReLU front), others as ReLU-convolution and batch norm.
    pub fn forward(&mut self, x: &Tensor, ctx: &mut Ctx) -> Result<Tensor> {
        let c = &self.conv;
        if ctx.probing() || !x.device().is_cpu() || c.k != 1 || c.stride != 1 || c.pad != 0 {
            ctx.relu_input(x)?;
            let y = self.conv.forward_relu(x, true, ctx)?;
            return self.bn.forward(&y, ctx);
        }
        let pw = c.weight(ctx);
        let y = self
            .bn
            .fused_block(x, (None, &pw), ops::Front::Relu, None, ctx)?;
        let (_, cin, _, _) = x.dims4()?;
        let (_, cout, oh, ow) = y.dims4()?;
        ctx.macs += (cout * oh * ow * cin) as u64;
        Ok(y)
    }
}

/// Halve the resolution with two offset strided 1x1 convolutions (ReLU
/// first), concatenated, then batch norm.
pub struct FactorizedReduce {
    c1: Conv,
    c2: Conv,
    bn: BatchNorm,
}

impl FactorizedReduce {
    /// Build (`cout` must be even).
    pub fn new(b: &mut Builder, cin: usize, cout: usize) -> Result<Self> {
        let half = cout / 2;
        let c1 = b.scope("conv_1", |b| Conv::new(b, cin, half, 1, 2, 0))?;
        let c2 = b.scope("conv_2", |b| Conv::new(b, cin, cout - half, 1, 2, 0))?;
        let bn = b.scope("bn", |b| BatchNorm::new(b, cout))?;
        Ok(FactorizedReduce { c1, c2, bn })
    }

    /// Apply: on the CPU one fused op (`ops::dw_block_train`/`dw_block_infer`
    /// with the reduce front): ReLU, each half of the output channels as a
    /// 1x1 convolution of its stride-2 subsample of the input (even pixels,
    /// and odd ones for the shifted path, zeros past an odd far edge), batch
    /// norm, written straight into the concatenated output; elsewhere the
    /// separate layers ([`FactorizedReduce::forward_separate`]).
    pub fn forward(&mut self, x: &Tensor, ctx: &mut Ctx) -> Result<Tensor> {
        if ctx.probing() || !x.device().is_cpu() {
            return self.forward_separate(x, ctx);
        }
        let (_, cin, h, w) = x.dims4()?;
        let (w1, w2) = (self.c1.weight(ctx), self.c2.weight(ctx));
        let pw = Tensor::cat(&[&w1, &w2], 0)?;
        let cout = pw.dim(0)?;
        let y = self
            .bn
            .fused_block(x, (None, &pw), ops::Front::ReluReduce, None, ctx)?;
        ctx.macs += (cout * h.div_ceil(2) * w.div_ceil(2) * cin) as u64;
        Ok(y)
    }

    /// [`FactorizedReduce::forward`] as separate layers: ReLU, the two
    /// strided 1x1 convolutions (the second on the input shifted by one
    /// pixel), concatenation, batch norm.
    pub fn forward_separate(&mut self, x: &Tensor, ctx: &mut Ctx) -> Result<Tensor> {
        ctx.relu_input(x)?;
        let x = ops::relu(x)?;
        let (_, _, h, w) = x.dims4()?;
        let a = self.c1.forward(&x, ctx)?;
        // The second path sees the input shifted by one pixel; padding the
        // far edge keeps both paths the same size for odd inputs.
        let shifted = x.pad_with_zeros(2, 0, 1)?.pad_with_zeros(3, 0, 1)?;
        let shifted = shifted.narrow(2, 1, h)?.narrow(3, 1, w)?;
        let b = self.c2.forward(&shifted, ctx)?;
        let y = Tensor::cat(&[a, b], 1)?;
        self.bn.forward(&y, ctx)
    }
}

/// Zeroes per sample with probability `p`, scaling survivors by `1/(1-p)`.
pub fn drop_path(x: &Tensor, ctx: &mut Ctx) -> Result<Tensor> {
    if !ctx.train || ctx.drop_path <= 0.0 {
        return Ok(x.clone());
    }
    let keep = 1.0 - ctx.drop_path;
    let n = x.dim(0)?;
    let mask: Vec<f32> = (0..n)
        .map(|_| {
            if ctx.rng.unit() < keep {
                (1.0 / keep) as f32
            } else {
                0.0
            }
        })
        .collect();
    let mask = Tensor::from_vec(mask, (n, 1, 1, 1), x.device())?;
    x.broadcast_mul(&mask)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::eval::candle::ops::testutil::{max_diff, rand_tensor};
    use candle_core::Device;

    /// The fused FactorizedReduce against its separate layers, at even and
    /// odd sizes: training output, the gradients of the input and of every
    /// parameter, the running statistics it leaves, and inference output.
    #[test]
    fn fused_factorized_reduce_matches_the_separate_layers() {
        for (n, cin, cout, h, w) in [(3, 5, 6, 8, 10), (2, 4, 8, 7, 9), (2, 3, 4, 5, 6)] {
            let build = || {
                let mut b = Builder::new(Device::Cpu, 7);
                let fr = FactorizedReduce::new(&mut b, cin, cout).unwrap();
                (fr, b.params)
            };
            let x = candle_core::Var::from_tensor(&rand_tensor(&[n, cin, h, w], 3)).unwrap();
            let run = |fused: bool| {
                let (mut fr, params) = build();
                // Non-trivial affine parameters.
                for (i, p) in params.iter().enumerate() {
                    let t = (p.var.as_tensor() + rand_tensor(p.var.dims(), 20 + i as u64)).unwrap();
                    p.var.set(&t).unwrap();
                }
                let mut ctx = Ctx::new(true, 0.0, 0);
                let y = match fused {
                    true => fr.forward(x.as_tensor(), &mut ctx).unwrap(),
                    false => fr.forward_separate(x.as_tensor(), &mut ctx).unwrap(),
                };
                let proj = rand_tensor(y.dims(), 9);
                let grads = (&y * &proj).unwrap().sum_all().unwrap().backward().unwrap();
                let mut out = vec![y.clone(), grads.get(x.as_tensor()).unwrap().clone()];
                for p in &params {
                    out.push(grads.get(p.var.as_tensor()).unwrap().clone());
                }
                out.push(fr.bn.running_mean.clone());
                out.push(fr.bn.running_var.clone());
                let mut ictx = Ctx::new(false, 0.0, 0);
                out.push(match fused {
                    true => fr.forward(x.as_tensor(), &mut ictx).unwrap(),
                    false => fr.forward_separate(x.as_tensor(), &mut ictx).unwrap(),
                });
                (out, ctx.macs)
            };
            let ((a, macs_a), (b, macs_b)) = (run(true), run(false));
            assert_eq!(a[0].dims(), [n, cout, h.div_ceil(2), w.div_ceil(2)]);
            assert_eq!(macs_a, macs_b);
            for (i, (a, b)) in a.iter().zip(&b).enumerate() {
                assert_eq!(a.dims(), b.dims(), "output {i}");
                let diff = max_diff(a, b);
                assert!(
                    diff < 1e-4,
                    "{n}x{cin}x{h}x{w}: output {i} differs by {diff}"
                );
            }
        }
    }
}
