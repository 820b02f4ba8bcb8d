//! A `sep_conv`'s two depthwise blocks (ReLU -> depthwise -> pointwise ->
//! batch norm, twice, the second reading the first's output) as one candle
//! op in training on the CPU, kernels from `seki_kernels::dwblock`.
//!
//! As two ops, candle's backward gives the first block's output a gradient
//! of its own: a zeroed activation-sized buffer that the second block's
//! input gradient is added into. As one, that gradient goes straight from
//! the second block's backward into the first's. The two blocks' packed
//! parameters travel as one tensor (`cat` of each block's); the forward
//! keeps the first block's output for the backward. Inference has no
//! gradients to save and runs the two blocks as two ops
//! ([`super::dw_block_infer`]); devices other than the CPU run the two
//! blocks as two [`super::dw_block_train`] calls.

use super::dwblock::{
    block_dims, fused_op, kept, residual_slice, split, split_grads, take_saved, BlockParams, Front,
};
use super::{dims4, dw_block_train, f32_slice, BnStats};
use candle_core::{bail, CpuStorage, CustomOp3, Layout, Result, Shape, Tensor};
use seki_kernels::batchnorm::Stats;
use seki_kernels::dwblock::{self as k, packed_len, BlockDims};
use std::sync::{Arc, Mutex};

/// Training forward of two blocks in a row on `x: [N, Cin, H, W]`, plus
/// `residual` (the output's shape) summed into the second block's output:
/// returns the output and each block's batch statistics.
pub fn sep_block_train(
    x: &Tensor,
    (a, front_a): (BlockParams<'_>, Front),
    (b, front_b): (BlockParams<'_>, Front),
    eps: f64,
    residual: Option<&Tensor>,
) -> Result<(Tensor, [BnStats; 2])> {
    if !x.device().is_cpu() {
        let (y1, s1) = dw_block_train(x, a, front_a, eps, None)?;
        let (y, s2) = dw_block_train(&y1, b, front_b, eps, residual)?;
        return Ok((y, [s1, s2]));
    }
    a.dw_for(&front_a)?;
    b.dw_for(&front_b)?;
    let cout = |p: &BlockParams<'_>| p.pw.dims().first().copied().unwrap_or(0);
    let saved = Arc::new(Mutex::new(None));
    let op = SepTrain {
        fronts: [front_a, front_b],
        couts: [cout(&a), cout(&b)],
        eps,
        saved: saved.clone(),
    };
    let packed = Tensor::cat(&[a.packed()?, b.packed()?], 0)?;
    let x = x.contiguous()?;
    let y = match residual {
        Some(r) => x.apply_op3(&packed, &r.contiguous()?, op)?,
        None => x.apply_op2(&packed, op)?,
    };
    let Some(s) = kept(&saved) else {
        bail!("sep-block: no statistics were recorded")
    };
    let [sa, sb] = s.stats.clone();
    let dev = x.device();
    Ok((
        y,
        [
            BnStats::from_kernel(sa, dev)?,
            BnStats::from_kernel(sb, dev)?,
        ],
    ))
}

/// What the training forward keeps for the backward.
struct SepSaved {
    /// The first block's output (the second's input).
    y1: Vec<f32>,
    /// Each block's pointwise output before normalisation.
    z: [Vec<f32>; 2],
    stats: [Stats; 2],
}

/// Both blocks' shapes and packed lengths from the input layout, checked
/// against the packed parameters'.
fn geometry(
    op: &str,
    fronts: &[Front; 2],
    couts: [usize; 2],
    x: &Layout,
    packed: &Layout,
) -> Result<([BlockDims; 2], usize)> {
    let da = block_dims(op, &fronts[0], couts[0], dims4(op, x)?)?;
    let db = block_dims(op, &fronts[1], couts[1], (da.n, da.cout, da.oh, da.ow))?;
    let la = packed_len(&fronts[0], da.cin, da.cout);
    let want = la + packed_len(&fronts[1], db.cin, db.cout);
    if packed.dims() != [want] {
        bail!(
            "{op}: packed parameters of shape {:?}, expected [{want}] for {} -> {} -> {} channels",
            packed.dims(),
            da.cin,
            da.cout,
            db.cout
        )
    }
    Ok(([da, db], la))
}

struct SepTrain {
    fronts: [Front; 2],
    couts: [usize; 2],
    eps: f64,
    saved: Arc<Mutex<Option<Arc<SepSaved>>>>,
}

impl SepTrain {
    fn forward(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        residual: Option<(&CpuStorage, &Layout)>,
    ) -> Result<(CpuStorage, Shape)> {
        let op = "sep-block-train";
        let ([da, db], la) = geometry(op, &self.fronts, self.couts, l1, l2)?;
        let x = f32_slice(op, s1, l1)?;
        let (pa, pb) = f32_slice(op, s2, l2)?.split_at(la);
        let r = match residual {
            Some((s, l)) => Some(residual_slice(op, &db, s, l)?),
            None => None,
        };
        let [fa, fb] = &self.fronts;
        let (wa, ga, ba) = split(pa, fa, &da);
        let (wb, gb, bb) = split(pb, fb, &db);
        let (y1, z1, st1) = k::forward_train(x, wa, ga, ba, fa, da, self.eps, None);
        let (y, z2, st2) = k::forward_train(&y1, wb, gb, bb, fb, db, self.eps, r);
        if let Ok(mut g) = self.saved.lock() {
            *g = Some(Arc::new(SepSaved {
                y1,
                z: [z1, z2],
                stats: [st1, st2],
            }));
        }
        Ok((
            CpuStorage::F32(y),
            Shape::from_dims(&[db.n, db.cout, db.oh, db.ow]),
        ))
    }

    /// The gradients of `x` and of the packed parameters.
    fn backward(&self, x: &Tensor, packed: &Tensor, g: &Tensor) -> Result<(Tensor, Tensor)> {
        let op = SepBwd {
            fronts: self.fronts,
            couts: self.couts,
            saved: take_saved(&self.saved, "sep-block")?,
        };
        split_grads(
            x,
            packed,
            x.apply_op3_no_bwd(packed, &g.contiguous()?, &op)?,
        )
    }
}

fused_op!(train SepTrain, "sep-block-train");

/// `(x, packed, grad) -> [dx (flattened), d packed]` in one buffer: the
/// second block's backward, whose input gradient feeds the first's.
struct SepBwd {
    fronts: [Front; 2],
    couts: [usize; 2],
    saved: Arc<SepSaved>,
}

impl CustomOp3 for SepBwd {
    fn name(&self) -> &'static str {
        "sep-block-train-bwd"
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
        let op = self.name();
        let ([da, db], la) = geometry(op, &self.fronts, self.couts, l1, l2)?;
        let sv = &self.saved;
        let (mid, out) = (
            da.n * da.cout * da.oh * da.ow,
            db.n * db.cout * db.oh * db.ow,
        );
        if l3.dims() != [db.n, db.cout, db.oh, db.ow]
            || sv.y1.len() != mid
            || sv.z[0].len() != mid
            || sv.z[1].len() != out
            || sv.stats[0].mean.len() != da.cout
            || sv.stats[1].mean.len() != db.cout
        {
            bail!("{op}: mismatched shapes")
        }
        let x = f32_slice(op, s1, l1)?;
        let (pa, pb) = f32_slice(op, s2, l2)?.split_at(la);
        let g = f32_slice(op, s3, l3)?;
        let [fa, fb] = &self.fronts;
        let (wa, ga, _) = split(pa, fa, &da);
        let (wb, gb, _) = split(pb, fb, &db);
        let second = k::backward(&sv.y1, &sv.z[1], g, wb, gb, &sv.stats[1], fb, db);
        let tail = [
            &second.ddw[..],
            &second.dpw[..],
            &second.dgamma[..],
            &second.dbeta[..],
        ];
        let out = k::backward_packed(x, &sv.z[0], &second.dx, wa, ga, &sv.stats[0], fa, da, &tail);
        let len = out.len();
        Ok((CpuStorage::F32(out), Shape::from_dims(&[len])))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{max_diff, rand_tensor};
    use super::*;
    use candle_core::Var;
    use seki_kernels::DwParams;

    fn front(k: usize, stride: usize, dilation: usize) -> Front {
        Front::Depthwise(DwParams {
            k,
            stride,
            pad: dilation * (k - 1) / 2,
            dilation,
            relu: true,
        })
    }

    /// The fused pair against two block ops: output, both blocks'
    /// statistics, and the gradients of the input, the residual and all
    /// eight parameters; odd sizes, stride 2 in the first block, 5x5.
    #[test]
    fn fused_pair_matches_two_blocks() {
        for (k, stride, n, cin, cout, h, w, with_residual) in [
            (3, 1, 3, 5, 4, 11, 9, false),
            (5, 2, 2, 4, 4, 13, 10, true),
            (3, 1, 2, 3, 3, 5, 6, true),
        ] {
            let (fa, fb) = (front(k, stride, 1), front(k, 1, 1));
            let x = Var::from_tensor(&rand_tensor(&[n, cin, h, w], 31)).unwrap();
            let shapes: [&[usize]; 8] = [
                &[cin, 1, k, k],
                &[cout, cin, 1, 1],
                &[cout],
                &[cout],
                &[cout, 1, k, k],
                &[cout, cout, 1, 1],
                &[cout],
                &[cout],
            ];
            let vars: Vec<Var> = shapes
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    let t = rand_tensor(s, 40 + i as u64);
                    let t = if i % 4 == 2 { (t + 1.5).unwrap() } else { t };
                    Var::from_tensor(&t).unwrap()
                })
                .collect();
            let oh = if stride == 2 { h.div_ceil(2) } else { h };
            let ow = if stride == 2 { w.div_ceil(2) } else { w };
            let r = Var::from_tensor(&rand_tensor(&[n, cout, oh, ow], 50)).unwrap();
            let run = |fused: bool| {
                let p = |i: usize| BlockParams {
                    dw: Some(vars[i].as_tensor()),
                    pw: vars[i + 1].as_tensor(),
                    gamma: vars[i + 2].as_tensor(),
                    beta: vars[i + 3].as_tensor(),
                };
                let res = with_residual.then(|| r.as_tensor());
                let (y, [sa, sb]) = if fused {
                    sep_block_train(x.as_tensor(), (p(0), fa), (p(4), fb), 1e-5, res).unwrap()
                } else {
                    let (y1, sa) = dw_block_train(x.as_tensor(), p(0), fa, 1e-5, None).unwrap();
                    let (y, sb) = dw_block_train(&y1, p(4), fb, 1e-5, res).unwrap();
                    (y, [sa, sb])
                };
                let proj = rand_tensor(y.dims(), 77);
                let grads = (&y * &proj).unwrap().sum_all().unwrap().backward().unwrap();
                let mut out = vec![y, sa.mean, sa.var, sb.mean, sb.var];
                out.push(grads.get(x.as_tensor()).unwrap().clone());
                if with_residual {
                    out.push(grads.get(r.as_tensor()).unwrap().clone());
                }
                for v in &vars {
                    out.push(grads.get(v.as_tensor()).unwrap().clone());
                }
                out
            };
            let (a, b) = (run(true), run(false));
            assert_eq!(a.len(), b.len());
            for (i, (a, b)) in a.iter().zip(&b).enumerate() {
                assert_eq!(a.dims(), b.dims(), "output {i}");
                let diff = max_diff(a, b);
                assert!(diff < 1e-4, "k {k} stride {stride}: output {i}: {diff}");
            }
        }
    }

    #[test]
    fn mismatched_parameters_are_errors() {
        let x = rand_tensor(&[2, 3, 6, 6], 1);
        let (dw, pw, g, b) = (
            rand_tensor(&[3, 1, 3, 3], 2),
            rand_tensor(&[3, 3, 1, 1], 3),
            rand_tensor(&[3], 4),
            rand_tensor(&[3], 5),
        );
        let ok = BlockParams {
            dw: Some(&dw),
            pw: &pw,
            gamma: &g,
            beta: &b,
        };
        let short = rand_tensor(&[2], 6);
        let bad = BlockParams { beta: &short, ..ok };
        let f = front(3, 1, 1);
        let e = sep_block_train(&x, (ok, f), (bad, f), 1e-5, None).unwrap_err();
        assert!(e.to_string().contains("packed parameters"), "{e}");
        let e = sep_block_train(
            &x,
            (ok, f),
            (ok, f),
            1e-5,
            Some(&x.narrow(1, 0, 2).unwrap()),
        );
        assert!(e.unwrap_err().to_string().contains("residual of shape"));
    }
}
