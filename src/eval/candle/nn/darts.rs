//! The DARTS network (Liu et al., 2019, `NetworkCIFAR`): a stem, a stack of
//! cells with reduction cells at 1/3 and 2/3 of the depth, global pooling and
//! a linear classifier, with an optional auxiliary head.

use super::layers::{
    drop_path, global_avg_pool, pool, BatchNorm, Conv, DwConv, FactorizedReduce, Linear,
    ReluConvBn, BN_EPS,
};
use super::{Builder, Ctx, Network};
use crate::eval::candle::ops::{self, DwParams, Front, PoolKind};
use crate::space::darts::{Cell as CellGenes, Genotype, NODES};
use candle_core::{bail, DType, Result, Tensor};

/// Shape of a DARTS network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DartsShape {
    /// Cells (depth).
    pub cells: usize,
    /// Channels of the first cells.
    pub channels: usize,
    /// Image channels (1 or 3).
    pub in_channels: usize,
    /// Classes.
    pub classes: usize,
    /// Build the auxiliary head (after the second reduction cell).
    pub auxiliary: bool,
}

/// ReLU, depthwise, pointwise, BN (`sep_conv` is two of these, `dil_conv` one).
struct DwBlock {
    dw: DwConv,
    pw: Conv,
    bn: BatchNorm,
}

impl DwBlock {
    fn new(b: &mut Builder, cin: usize, cout: usize, p: DwParams) -> Result<Self> {
        Ok(DwBlock {
            dw: b.scope("dw", |b| DwConv::new(b, cin, p))?,
            pw: b.scope("pw", |b| Conv::new(b, cin, cout, 1, 1, 0))?,
            bn: b.scope("bn", |b| BatchNorm::new(b, cout))?,
        })
    }

    /// Apply, plus `residual` when given (summed in the same pass): on the
    /// CPU one fused op (`ops::dwblock`), elsewhere the three layers and an
    /// addition.
    fn forward(&mut self, x: &Tensor, residual: Option<&Tensor>, ctx: &mut Ctx) -> Result<Tensor> {
        if ctx.probing() || !x.device().is_cpu() {
            if self.dw.params().relu {
                ctx.relu_input(x)?;
            }
            let y = self.dw.forward(x, ctx)?;
            let y = self.pw.forward(&y, ctx)?;
            let y = self.bn.forward(&y, ctx)?;
            return ops::add_residual(y, residual);
        }
        let (dw, pw) = (self.dw.weight(ctx), self.pw.weight(ctx));
        let p = self.dw.params();
        let front = Front::Depthwise(p);
        let y = self
            .bn
            .fused_block(x, (Some(&dw), &pw), front, residual, ctx)?;
        let (_, cin, _, _) = x.dims4()?;
        let (_, cout, oh, ow) = y.dims4()?;
        ctx.macs += (cin * oh * ow * (p.k * p.k + cout)) as u64;
        Ok(y)
    }
}

/// A `sep_conv`'s two blocks in training on the CPU: one fused op
/// (`ops::sep_block_train`), `residual` summed into its output.
fn sep_train(
    a: &mut DwBlock,
    z: &mut DwBlock,
    x: &Tensor,
    residual: Option<&Tensor>,
    ctx: &mut Ctx,
) -> Result<Tensor> {
    let params = |b: &DwBlock, ctx: &Ctx| {
        let (gamma, beta) = b.bn.affine_params(ctx);
        let p = b.dw.params();
        ([b.dw.weight(ctx), b.pw.weight(ctx), gamma, beta], p)
    };
    let ([dwa, pwa, ga, ba], pa) = params(a, ctx);
    let ([dwz, pwz, gz, bz], pz) = params(z, ctx);
    let block = |dw, pw, gamma, beta| ops::BlockParams {
        dw: Some(dw),
        pw,
        gamma,
        beta,
    };
    let (y, [sa, sz]) = ops::sep_block_train(
        x,
        (block(&dwa, &pwa, &ga, &ba), Front::Depthwise(pa)),
        (block(&dwz, &pwz, &gz, &bz), Front::Depthwise(pz)),
        BN_EPS,
        residual,
    )?;
    a.bn.update_running(sa)?;
    z.bn.update_running(sz)?;
    let (_, cin, _, _) = x.dims4()?;
    let (_, cout, oh, ow) = y.dims4()?;
    // The second block keeps the first's output size (stride 1).
    ctx.macs += (cin * oh * ow * (pa.k * pa.k + cout)) as u64;
    ctx.macs += (cout * oh * ow * (pz.k * pz.k + cout)) as u64;
    Ok(y)
}

enum Op {
    Zero { stride: usize },
    Identity,
    Reduce(FactorizedReduce),
    Pool { kind: PoolKind, stride: usize },
    Sep(DwBlock, DwBlock),
    Dil(DwBlock),
}

impl Op {
    fn new(b: &mut Builder, name: &str, c: usize, stride: usize) -> Result<Self> {
        // ReLU is fused into the depthwise convolution.
        let dw = |k: usize, s: usize, d: usize| DwParams {
            k,
            stride: s,
            pad: d * (k - 1) / 2,
            dilation: d,
            relu: true,
        };
        Ok(match name {
            "none" => Op::Zero { stride },
            "max_pool_3x3" => Op::Pool {
                kind: PoolKind::Max,
                stride,
            },
            "avg_pool_3x3" => Op::Pool {
                kind: PoolKind::Avg,
                stride,
            },
            "skip_connect" if stride == 1 => Op::Identity,
            "skip_connect" => Op::Reduce(FactorizedReduce::new(b, c, c)?),
            "sep_conv_3x3" | "sep_conv_5x5" => {
                let k = if name == "sep_conv_3x3" { 3 } else { 5 };
                let a = b.scope("0", |b| DwBlock::new(b, c, c, dw(k, stride, 1)))?;
                let z = b.scope("1", |b| DwBlock::new(b, c, c, dw(k, 1, 1)))?;
                Op::Sep(a, z)
            }
            "dil_conv_3x3" | "dil_conv_5x5" => {
                let k = if name == "dil_conv_3x3" { 3 } else { 5 };
                Op::Dil(DwBlock::new(b, c, c, dw(k, stride, 2))?)
            }
            other => bail!("unknown DARTS op {other}"),
        })
    }

    fn forward(&mut self, x: &Tensor, ctx: &mut Ctx) -> Result<Tensor> {
        self.forward_plus(x, None, ctx)
    }

    /// Whether the op ends in a depthwise block, which sums a residual into
    /// its output in the pass that writes it.
    fn absorbs_sum(&self) -> bool {
        matches!(self, Op::Sep(..) | Op::Dil(_))
    }

    /// `op(x) + residual` (just `op(x)` without one): fused into the last
    /// block where [`Op::absorbs_sum`], else a separate addition.
    fn forward_plus(
        &mut self,
        x: &Tensor,
        residual: Option<&Tensor>,
        ctx: &mut Ctx,
    ) -> Result<Tensor> {
        let y = match self {
            Op::Sep(a, z) => {
                if ctx.train && x.device().is_cpu() && !ctx.probing() {
                    return sep_train(a, z, x, residual, ctx);
                }
                let y = a.forward(x, None, ctx)?;
                return z.forward(&y, residual, ctx);
            }
            Op::Dil(a) => return a.forward(x, residual, ctx),
            Op::Zero { stride } => {
                let (n, c, h, w) = x.dims4()?;
                Tensor::zeros(
                    (n, c, h.div_ceil(*stride), w.div_ceil(*stride)),
                    DType::F32,
                    x.device(),
                )
            }
            Op::Identity => Ok(x.clone()),
            Op::Reduce(r) => r.forward(x, ctx),
            Op::Pool { kind, stride } => pool(x, *kind, 3, *stride, 1),
        }?;
        ops::add_residual(y, residual)
    }

    fn droppable(&self) -> bool {
        !matches!(self, Op::Identity | Op::Zero { .. })
    }

    /// The pooling this op is, if any: a parameter-free function of its
    /// input, so two edges pooling the same state alike can share one
    /// result.
    fn pooling(&self) -> Option<(PoolKind, usize)> {
        match self {
            Op::Pool { kind, stride } => Some((*kind, *stride)),
            _ => None,
        }
    }
}

enum Pre {
    Rcb(ReluConvBn),
    Fr(FactorizedReduce),
}

impl Pre {
    fn forward(&mut self, x: &Tensor, ctx: &mut Ctx) -> Result<Tensor> {
        match self {
            Pre::Rcb(m) => m.forward(x, ctx),
            Pre::Fr(m) => m.forward(x, ctx),
        }
    }
}

struct Cell {
    pre0: Pre,
    pre1: Pre,
    ops: Vec<Op>,
    inputs: Vec<usize>,
    /// Whether edges pooling the same state alike share one result (on;
    /// off in tests, as the reference).
    share_pools: bool,
    /// Whether a node's sum is fused into one of its edges' depthwise
    /// blocks (on; off in tests, as the reference).
    fuse_sums: bool,
}

impl Cell {
    fn new(
        b: &mut Builder,
        genes: &CellGenes,
        c_pp: usize,
        c_p: usize,
        c: usize,
        reduction: bool,
        reduction_prev: bool,
    ) -> Result<Self> {
        let pre0 = if reduction_prev {
            Pre::Fr(b.scope("preprocess0", |b| FactorizedReduce::new(b, c_pp, c))?)
        } else {
            Pre::Rcb(b.scope("preprocess0", |b| ReluConvBn::new(b, c_pp, c, 1, 1, 0))?)
        };
        let pre1 = Pre::Rcb(b.scope("preprocess1", |b| ReluConvBn::new(b, c_p, c, 1, 1, 0))?);
        let mut ops = Vec::new();
        let mut inputs = Vec::new();
        for (i, e) in genes.iter().enumerate() {
            let stride = if reduction && e.input < 2 { 2 } else { 1 };
            ops.push(b.scope(format!("ops.{i}"), |b| Op::new(b, e.op_name(), c, stride))?);
            inputs.push(e.input as usize);
        }
        Ok(Cell {
            pre0,
            pre1,
            ops,
            inputs,
            share_pools: true,
            fuse_sums: true,
        })
    }

    /// The state edge `j` reads.
    fn input(&self, j: usize, states: &[Tensor]) -> Result<Tensor> {
        match states.get(self.inputs[j]) {
            Some(t) => Ok(t.clone()),
            None => bail!("edge {j} reads node {} before it exists", self.inputs[j]),
        }
    }

    /// Edge `j`'s output: its op on its input state (a pool this cell
    /// already took of that state, when shared), through drop-path.
    fn edge(
        &mut self,
        j: usize,
        states: &[Tensor],
        pooled: &mut Vec<((usize, PoolKind, usize), Tensor)>,
        ctx: &mut Ctx,
    ) -> Result<Tensor> {
        let input = self.input(j, states)?;
        let op = &mut self.ops[j];
        let shared = op
            .pooling()
            .filter(|_| self.share_pools)
            .map(|(kind, stride)| (self.inputs[j], kind, stride));
        let known = shared.and_then(|key| {
            pooled
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, t)| t.clone())
        });
        let h = match known {
            Some(t) => t,
            None => {
                let t = op.forward(&input, ctx)?;
                if let Some(key) = shared {
                    pooled.push((key, t.clone()));
                }
                t
            }
        };
        if op.droppable() {
            drop_path(&h, ctx)
        } else {
            Ok(h)
        }
    }

    fn forward(&mut self, s0: &Tensor, s1: &Tensor, ctx: &mut Ctx) -> Result<Tensor> {
        let mut states = vec![self.pre0.forward(s0, ctx)?, self.pre1.forward(s1, ctx)?];
        // Pools already computed in this cell, by input state and kind: the
        // reduction cell of DARTS_V2 max-pools each of its two inputs
        // twice. Drop-path still masks each edge on its own.
        let mut pooled: Vec<((usize, PoolKind, usize), Tensor)> = Vec::new();
        // Without drop-path masks (inference, or a probability of 0) a
        // node's sum is taken by one of its edges' last depthwise block, in
        // the pass that writes the block's output: the same bits as the
        // addition, without its pass over memory and its gradient buffer.
        let fuse = self.fuse_sums && (!ctx.train || ctx.drop_path <= 0.0);
        for node in 0..NODES {
            let (ja, jb) = (2 * node, 2 * node + 1);
            let taker = [jb, ja]
                .into_iter()
                .find(|&j| fuse && self.ops[j].absorbs_sum());
            let sum = match taker {
                Some(jt) => {
                    let other =
                        self.edge(if jt == ja { jb } else { ja }, &states, &mut pooled, ctx)?;
                    let input = self.input(jt, &states)?;
                    self.ops[jt].forward_plus(&input, Some(&other), ctx)?
                }
                None => {
                    let a = self.edge(ja, &states, &mut pooled, ctx)?;
                    (a + self.edge(jb, &states, &mut pooled, ctx)?)?
                }
            };
            states.push(sum);
        }
        Tensor::cat(&states[2..], 1)
    }
}

/// The auxiliary classifier (`AuxiliaryHeadCIFAR`), adapted to any input size.
struct AuxHead {
    c1: Conv,
    bn1: BatchNorm,
    c2: Conv,
    bn2: BatchNorm,
    fc: Linear,
}

impl AuxHead {
    fn new(b: &mut Builder, c: usize, size: usize, classes: usize) -> Result<Self> {
        let pooled = if size >= 5 { (size - 5) / 3 + 1 } else { 1 };
        let k2 = pooled.clamp(1, 2);
        Ok(AuxHead {
            c1: b.scope("conv1", |b| Conv::new(b, c, 128, 1, 1, 0))?,
            bn1: b.scope("bn1", |b| BatchNorm::new(b, 128))?,
            c2: b.scope("conv2", |b| Conv::new(b, 128, 768, k2, 1, 0))?,
            bn2: b.scope("bn2", |b| BatchNorm::new(b, 768))?,
            fc: b.scope("classifier", |b| Linear::new(b, 768, classes))?,
        })
    }

    fn forward(&mut self, x: &Tensor, ctx: &mut Ctx) -> Result<Tensor> {
        let (_, _, h, _) = x.dims4()?;
        let x = ops::relu(x)?;
        let x = if h >= 5 {
            pool(&x, PoolKind::Avg, 5, 3, 0)?
        } else {
            x
        };
        let x = ops::relu(&self.bn1.forward(&self.c1.forward(&x, ctx)?, ctx)?)?;
        let x = ops::relu(&self.bn2.forward(&self.c2.forward(&x, ctx)?, ctx)?)?;
        self.fc.forward(&global_avg_pool(&x)?, ctx)
    }
}

/// The DARTS network for one genotype.
pub struct DartsNet {
    stem: Conv,
    stem_bn: BatchNorm,
    cells: Vec<Cell>,
    aux_after: Option<usize>,
    aux: Option<AuxHead>,
    classifier: Linear,
}

impl DartsNet {
    /// Build for images of `size x size`.
    pub fn new(b: &mut Builder, g: &Genotype, s: DartsShape, size: usize) -> Result<Self> {
        if s.cells < 3 || s.channels < 2 || !s.channels.is_multiple_of(2) {
            bail!("a DARTS network needs at least 3 cells and an even channel count")
        }
        let c_stem = 3 * s.channels;
        let stem = b.scope("stem.0", |b| Conv::new(b, s.in_channels, c_stem, 3, 1, 1))?;
        let stem_bn = b.scope("stem.1", |b| BatchNorm::new(b, c_stem))?;
        let (mut c_pp, mut c_p, mut c) = (c_stem, c_stem, s.channels);
        let mut reduction_prev = false;
        let mut cells = Vec::new();
        let mut aux = None;
        let mut aux_after = None;
        let mut res = size;
        for i in 0..s.cells {
            let reduction = i == s.cells / 3 || i == 2 * s.cells / 3;
            if reduction {
                c *= 2;
                res = res.div_ceil(2);
            }
            let genes = if reduction { &g.reduce } else { &g.normal };
            let cell = b.scope(format!("cells.{i}"), |b| {
                Cell::new(b, genes, c_pp, c_p, c, reduction, reduction_prev)
            })?;
            cells.push(cell);
            reduction_prev = reduction;
            (c_pp, c_p) = (c_p, NODES * c);
            if i == 2 * s.cells / 3 && s.auxiliary {
                aux = Some(b.scope("auxiliary_head", |b| AuxHead::new(b, c_p, res, s.classes))?);
                aux_after = Some(i);
            }
        }
        let classifier = b.scope("classifier", |b| Linear::new(b, c_p, s.classes))?;
        Ok(DartsNet {
            stem,
            stem_bn,
            cells,
            aux_after,
            aux,
            classifier,
        })
    }

    /// Compute every pooling edge on its own (`false`) or share the pools
    /// of one state within a cell (`true`, the default).
    #[cfg(test)]
    fn share_pools(&mut self, on: bool) {
        self.cells.iter_mut().for_each(|c| c.share_pools = on);
    }

    /// Add each node's two edges separately (`false`) or in one of its
    /// blocks (`true`, the default).
    #[cfg(test)]
    fn fuse_sums(&mut self, on: bool) {
        self.cells.iter_mut().for_each(|c| c.fuse_sums = on);
    }
}

impl Network for DartsNet {
    fn forward(&mut self, x: &Tensor, ctx: &mut Ctx) -> Result<(Tensor, Option<Tensor>)> {
        let s = self.stem.forward(x, ctx)?;
        let s = self.stem_bn.forward(&s, ctx)?;
        let (mut s0, mut s1) = (s.clone(), s);
        let mut aux_logits = None;
        for (i, cell) in self.cells.iter_mut().enumerate() {
            let next = cell.forward(&s0, &s1, ctx)?;
            (s0, s1) = (s1, next);
            if Some(i) == self.aux_after && ctx.train && !ctx.probing() {
                if let Some(head) = self.aux.as_mut() {
                    aux_logits = Some(head.forward(&s1, ctx)?);
                }
            }
        }
        let logits = self.classifier.forward(&global_avg_pool(&s1)?, ctx)?;
        Ok((logits, aux_logits))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::eval::candle::ops::testutil::{max_diff, rand_tensor};
    use candle_core::Device;

    /// A small network of genotype `g`, set up by `setup`: its training
    /// logits (drop-path probability `drop`), the gradients of every
    /// parameter of `sum(logits^2)`, and its inference logits.
    fn run_network(g: &Genotype, drop: f64, setup: &dyn Fn(&mut DartsNet)) -> Vec<Tensor> {
        let shape = DartsShape {
            cells: 3,
            channels: 4,
            in_channels: 3,
            classes: 5,
            auxiliary: false,
        };
        let x = rand_tensor(&[2, 3, 9, 9], 1);
        let mut b = Builder::new(Device::Cpu, 3);
        let mut net = DartsNet::new(&mut b, g, shape, 9).unwrap();
        setup(&mut net);
        let mut ctx = Ctx::new(true, drop, 5);
        let (logits, _) = net.forward(&x, &mut ctx).unwrap();
        let grads = logits.sqr().unwrap().sum_all().unwrap().backward().unwrap();
        let mut out = vec![logits];
        for p in &b.params {
            out.push(grads.get(p.var.as_tensor()).unwrap().clone());
        }
        let mut ictx = Ctx::new(false, 0.0, 0);
        out.push(net.forward(&x, &mut ictx).unwrap().0);
        out
    }

    /// The same logits bits for bit (training first, inference last), and
    /// gradients within rounding.
    fn assert_same_network(a: &[Tensor], b: &[Tensor]) {
        assert_eq!(a.len(), b.len());
        assert_eq!(max_diff(&a[0], &b[0]), 0.0, "training logits");
        assert_eq!(
            max_diff(&a[a.len() - 1], &b[b.len() - 1]),
            0.0,
            "inference logits"
        );
        for (i, (a, b)) in a.iter().zip(b).enumerate() {
            let scale = b
                .abs()
                .unwrap()
                .max_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap();
            let d = max_diff(a, b);
            assert!(
                d <= 1e-5 * (1.0 + scale),
                "output {i} differs by {d} (scale {scale})"
            );
        }
    }

    /// Sharing a cell's pools changes nothing: the same logits in training
    /// and inference, and the same gradients of every parameter (within
    /// rounding: a shared pool adds its two edges' gradients before its
    /// backward), with a reduction cell that pools each input twice alike,
    /// once by another kind, and once from a node.
    #[test]
    fn shared_pools_give_the_network_of_separate_pools() {
        let g = Genotype::parse(
            "Genotype(normal=[('sep_conv_3x3', 0), ('max_pool_3x3', 1), ('max_pool_3x3', 1), \
             ('avg_pool_3x3', 1), ('skip_connect', 0), ('max_pool_3x3', 2), ('max_pool_3x3', 2), \
             ('dil_conv_3x3', 3)], normal_concat=range(2, 6), reduce=[('max_pool_3x3', 0), \
             ('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1), ('max_pool_3x3', 0), \
             ('avg_pool_3x3', 0), ('skip_connect', 2), ('max_pool_3x3', 1)], \
             reduce_concat=range(2, 6))",
        )
        .unwrap();
        let a = run_network(&g, 0.0, &|n| n.share_pools(true));
        let b = run_network(&g, 0.0, &|n| n.share_pools(false));
        assert_same_network(&a, &b);
    }

    /// Summing a node in one of its blocks changes nothing (the same logits,
    /// gradients within rounding); with drop-path on, the sums stay separate
    /// and all is identical. Nodes where the second edge takes the sum, the
    /// first, both could, and neither can.
    #[test]
    fn fused_sums_give_the_network_of_separate_additions() {
        let g = Genotype::parse(
            "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_5x5', 1), ('dil_conv_3x3', 1), \
             ('skip_connect', 0), ('max_pool_3x3', 2), ('skip_connect', 0), ('avg_pool_3x3', 3), \
             ('dil_conv_5x5', 2)], normal_concat=range(2, 6), reduce=[('max_pool_3x3', 0), \
             ('sep_conv_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1), ('dil_conv_3x3', 0), \
             ('avg_pool_3x3', 0), ('skip_connect', 2), ('max_pool_3x3', 1)], \
             reduce_concat=range(2, 6))",
        )
        .unwrap();
        let a = run_network(&g, 0.0, &|n| n.fuse_sums(true));
        let b = run_network(&g, 0.0, &|n| n.fuse_sums(false));
        assert_same_network(&a, &b);
        let a = run_network(&g, 0.3, &|n| n.fuse_sums(true));
        let b = run_network(&g, 0.3, &|n| n.fuse_sums(false));
        for (i, (a, b)) in a.iter().zip(&b).enumerate() {
            assert_eq!(max_diff(a, b), 0.0, "drop-path output {i}");
        }
    }
}
