//! The NAS-Bench-201 network (Dong & Yang, 2020, `TinyNetwork`): a stem,
//! three stages of N cells joined by residual reduction blocks, BN-ReLU,
//! global pooling and a linear classifier.

use super::layers::{global_avg_pool, pool, BatchNorm, Conv, Linear, ReluConvBn};
use super::{Builder, Ctx, Network};
use crate::eval::candle::ops::{self, PoolKind};
use crate::space::nb201::{Nb201Cell, EDGES, OPS};
use candle_core::{bail, Result, Tensor};

/// Shape of a NAS-Bench-201 network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Nb201Shape {
    /// Cells per stage (the benchmark uses 5).
    pub stage_cells: usize,
    /// Channels of the first stage (the benchmark uses 16).
    pub channels: usize,
    /// Image channels.
    pub in_channels: usize,
    /// Classes.
    pub classes: usize,
}

enum Op {
    Zero,
    Identity,
    Conv(ReluConvBn),
    AvgPool,
}

struct InferCell {
    /// Per edge in [`EDGES`] order.
    ops: Vec<Op>,
}

impl InferCell {
    fn new(b: &mut Builder, cell: &Nb201Cell, c: usize) -> Result<Self> {
        let mut ops = Vec::new();
        for (i, &op) in cell.ops.iter().enumerate() {
            let name = OPS.get(op as usize).copied().unwrap_or("?");
            ops.push(match name {
                "none" => Op::Zero,
                "skip_connect" => Op::Identity,
                "nor_conv_1x1" => {
                    Op::Conv(b.scope(format!("edges.{i}"), |b| ReluConvBn::new(b, c, c, 1, 1, 0))?)
                }
                "nor_conv_3x3" => {
                    Op::Conv(b.scope(format!("edges.{i}"), |b| ReluConvBn::new(b, c, c, 3, 1, 1))?)
                }
                "avg_pool_3x3" => Op::AvgPool,
                other => bail!("unknown NAS-Bench-201 op {other}"),
            });
        }
        Ok(InferCell { ops })
    }

    fn forward(&mut self, x: &Tensor, ctx: &mut Ctx) -> Result<Tensor> {
        let mut nodes = vec![x.clone()];
        for to in 1..4 {
            let mut sum: Option<Tensor> = None;
            for (i, &(t, from)) in EDGES.iter().enumerate() {
                if t != to {
                    continue;
                }
                let input = &nodes[from];
                let h = match &mut self.ops[i] {
                    Op::Zero => continue,
                    Op::Identity => input.clone(),
                    Op::Conv(m) => m.forward(input, ctx)?,
                    Op::AvgPool => pool(input, PoolKind::Avg, 3, 1, 1)?,
                };
                sum = Some(match sum {
                    None => h,
                    Some(s) => (s + h)?,
                });
            }
            nodes.push(match sum {
                Some(s) => s,
                None => x.zeros_like()?,
            });
        }
        Ok(nodes.swap_remove(3))
    }
}

/// `ResNetBasicblock` with stride 2: two ReLU-Conv-BN and an
/// average-pool + 1x1 convolution shortcut.
struct ResBlock {
    a: ReluConvBn,
    b: ReluConvBn,
    down: Conv,
}

impl ResBlock {
    fn new(bld: &mut Builder, cin: usize, cout: usize) -> Result<Self> {
        Ok(ResBlock {
            a: bld.scope("conv_a", |b| ReluConvBn::new(b, cin, cout, 3, 2, 1))?,
            b: bld.scope("conv_b", |b| ReluConvBn::new(b, cout, cout, 3, 1, 1))?,
            down: bld.scope("downsample", |b| Conv::new(b, cin, cout, 1, 1, 0))?,
        })
    }

    fn forward(&mut self, x: &Tensor, ctx: &mut Ctx) -> Result<Tensor> {
        let y = self.a.forward(x, ctx)?;
        let y = self.b.forward(&y, ctx)?;
        // Odd sizes: repeat the last row and column so the shortcut matches
        // the strided convolution's ceil(n / 2) (an average over the cells
        // inside the image, as with count_include_pad = False).
        let (_, _, h, w) = x.dims4()?;
        let x = if h % 2 == 1 || w % 2 == 1 {
            x.pad_with_same(2, 0, h % 2)?.pad_with_same(3, 0, w % 2)?
        } else {
            x.clone()
        };
        let r = pool(&x, PoolKind::Avg, 2, 2, 0)?;
        let r = self.down.forward(&r, ctx)?;
        r + y
    }
}

enum Stage {
    Cell(InferCell),
    Res(ResBlock),
}

/// The NAS-Bench-201 network for one cell.
pub struct Nb201Net {
    stem: Conv,
    stem_bn: BatchNorm,
    cells: Vec<Stage>,
    last_bn: BatchNorm,
    classifier: Linear,
}

impl Nb201Net {
    /// Build.
    pub fn new(b: &mut Builder, cell: &Nb201Cell, s: Nb201Shape) -> Result<Self> {
        if s.stage_cells == 0 || s.channels == 0 {
            bail!("a NAS-Bench-201 network needs at least 1 cell per stage and 1 channel")
        }
        let c = s.channels;
        let stem = b.scope("stem.0", |b| Conv::new(b, s.in_channels, c, 3, 1, 1))?;
        let stem_bn = b.scope("stem.1", |b| BatchNorm::new(b, c))?;
        let mut cells = Vec::new();
        let mut c_prev = c;
        let mut idx = 0;
        for stage in 0..3 {
            let cs = c << stage;
            if stage > 0 {
                cells.push(Stage::Res(
                    b.scope(format!("cells.{idx}"), |b| ResBlock::new(b, c_prev, cs))?,
                ));
                idx += 1;
            }
            for _ in 0..s.stage_cells {
                cells.push(Stage::Cell(
                    b.scope(format!("cells.{idx}"), |b| InferCell::new(b, cell, cs))?,
                ));
                idx += 1;
            }
            c_prev = cs;
        }
        let last_bn = b.scope("lastact.0", |b| BatchNorm::new(b, c_prev))?;
        let classifier = b.scope("classifier", |b| Linear::new(b, c_prev, s.classes))?;
        Ok(Nb201Net {
            stem,
            stem_bn,
            cells,
            last_bn,
            classifier,
        })
    }
}

impl Network for Nb201Net {
    fn forward(&mut self, x: &Tensor, ctx: &mut Ctx) -> Result<(Tensor, Option<Tensor>)> {
        let mut h = self.stem.forward(x, ctx)?;
        h = self.stem_bn.forward(&h, ctx)?;
        for c in &mut self.cells {
            h = match c {
                Stage::Cell(m) => m.forward(&h, ctx)?,
                Stage::Res(m) => m.forward(&h, ctx)?,
            };
        }
        let h = self.last_bn.forward(&h, ctx)?;
        ctx.relu_input(&h)?;
        let h = ops::relu(&h)?;
        Ok((self.classifier.forward(&global_avg_pool(&h)?, ctx)?, None))
    }
}
