//! The DARTS depthwise block fused: ReLU -> depthwise convolution ->
//! pointwise (1x1) convolution -> batch norm (`sep_conv` is two of these,
//! `dil_conv` one), forward and backward; without the depthwise stage
//! ([`Front::Relu`]) it is `ReLUConvBN` with a 1x1 convolution (the cells'
//! preprocessing), and with the two stride-2 subsamples of
//! [`Front::ReluReduce`] it is `FactorizedReduce`.
//!
//! Unfused, each step is a pass over memory and (in candle) a graph node
//! whose gradient is accumulated into a fresh zeroed buffer. Here the work
//! runs one sample at a time: the depthwise output and its gradient live
//! only in a per-thread scratch buffer (recomputed in the backward pass
//! rather than kept), the batch-norm statistics are gathered from each
//! pointwise output while it is still in cache, and the batch-norm input
//! gradient is formed per sample right before the pointwise backward that
//! consumes it. What stays in memory between the passes is the block input
//! (owned by the caller), the pointwise output `z` (pre-normalisation, for
//! the backward) and the block output.

use crate::batchnorm::{affine_in_place, affine_to, input_gradient, squared_deviations, Stats};
use crate::depthwise::{self, DwParams, Padded};
use crate::pointwise::{gram_acc, matmul, matmul_to, Mat};
use crate::sum;
use crate::uninit::vec_written;
use rayon::prelude::*;
use std::mem::MaybeUninit;

/// Shapes: input `[n, cin, h, w]`, depthwise weight `[cin, k, k]`,
/// pointwise weight `[cout, cin]`, output `[n, cout, oh, ow]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockDims {
    /// Batch.
    pub n: usize,
    /// Input (and depthwise) channels.
    pub cin: usize,
    /// Output channels.
    pub cout: usize,
    /// Input height.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// Output height.
    pub oh: usize,
    /// Output width.
    pub ow: usize,
}

impl BlockDims {
    fn dw(&self) -> depthwise::Dims {
        depthwise::Dims {
            n: self.n,
            c: self.cin,
            h: self.h,
            w: self.w,
            oh: self.oh,
            ow: self.ow,
        }
    }

    /// Input values per sample.
    fn in_len(&self) -> usize {
        self.cin * self.h * self.w
    }

    /// Output pixels per channel.
    fn pix(&self) -> usize {
        self.oh * self.ow
    }
}

/// What comes before the pointwise convolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Front {
    /// A depthwise convolution (ReLU first when its `relu` is set).
    Depthwise(DwParams),
    /// ReLU alone: the pointwise convolution reads `relu(x)` (`oh, ow` are
    /// `h, w`, and the depthwise weight is empty).
    Relu,
    /// ReLU and `FactorizedReduce`'s two stride-2 subsamples: output
    /// channels `[0, cout / 2)` read the pixels `(2y, 2x)` of `relu(x)`, the
    /// rest `(2y + 1, 2x + 1)`, zero past an odd far edge (`oh, ow` are
    /// `ceil(h / 2), ceil(w / 2)`; the depthwise weight is empty).
    ReluReduce,
}

impl Front {
    /// Depthwise filter taps per channel (`k * k`; none without a
    /// depthwise stage).
    pub fn taps(&self) -> usize {
        match self {
            Front::Depthwise(p) => p.k * p.k,
            Front::Relu | Front::ReluReduce => 0,
        }
    }

    /// Values of the pointwise input per output pixel and input channel:
    /// two subsamples for [`Front::ReluReduce`], else one.
    fn inputs(&self) -> usize {
        match self {
            Front::ReluReduce => 2,
            _ => 1,
        }
    }
}

/// Values of a block's packed parameters: depthwise filters, pointwise
/// weight, batch-norm scale and shift, in that order.
pub fn packed_len(front: &Front, cin: usize, cout: usize) -> usize {
    cin * front.taps() + cout * cin + 2 * cout
}

/// The block's weights.
#[derive(Debug, Clone, Copy)]
pub struct BlockWeights<'a> {
    /// Depthwise filters, `[cin, k, k]` (empty for [`Front::Relu`]).
    pub dw: &'a [f32],
    /// Pointwise weight, `[cout, cin]`.
    pub pw: &'a [f32],
}

/// Per-thread scratch of one sample: the padded input plane and the
/// depthwise output (`[cin, oh * ow]`).
struct Scratch {
    pad: Padded,
    gpad: Padded,
    t: Vec<f32>,
}

impl Scratch {
    fn new(d: &BlockDims, front: &Front) -> Self {
        Scratch {
            pad: Padded::new(),
            gpad: Padded::new(),
            t: vec![0f32; front.inputs() * d.cin * d.pix()],
        }
    }
}

/// `t = depthwise(relu?(x_b))` for one sample `xb` (`[cin, h, w]`).
fn depthwise_sample(
    pad: &mut Padded,
    xb: &[f32],
    wt: &[f32],
    p: &DwParams,
    d: &BlockDims,
    t: &mut [f32],
) {
    let (hw, pix, kk) = (d.h * d.w, d.pix(), p.k * p.k);
    for (ch, tp) in t.chunks_exact_mut(pix.max(1)).take(d.cin).enumerate() {
        depthwise::forward_plane(
            pad,
            &xb[ch * hw..(ch + 1) * hw],
            &wt[ch * kk..(ch + 1) * kk],
            p,
            d.dw(),
            tp,
        );
    }
}

/// `s.t = front(x_b)` for one sample `xb` (`[cin, h, w]`): the depthwise
/// output, or the input through ReLU.
fn front_sample(s: &mut Scratch, xb: &[f32], wt: BlockWeights<'_>, front: &Front, d: &BlockDims) {
    match front {
        Front::Depthwise(p) => depthwise_sample(&mut s.pad, xb, wt.dw, p, d, &mut s.t),
        Front::Relu => depthwise::copy_row(&mut s.t, xb, true),
        Front::ReluReduce => reduce_gather(xb, d, &mut s.t),
    }
}

/// `t_o[c, y, x] = relu(xb[c, 2y + o, 2x + o])` for `o` 0 and 1 into the
/// two halves of `t` (`2 x [cin, oh, ow]`), zero past the far edge.
fn reduce_gather(xb: &[f32], d: &BlockDims, t: &mut [f32]) {
    let (h, w, ow, pix) = (d.h, d.w, d.ow.max(1), d.pix().max(1));
    for (o, to) in t.chunks_exact_mut(d.cin * pix).take(2).enumerate() {
        for (tp, xp) in to.chunks_exact_mut(pix).zip(xb.chunks_exact(h * w)) {
            for (oy, trow) in tp.chunks_exact_mut(ow).enumerate() {
                match xp.get((2 * oy + o) * w..(2 * oy + o + 1) * w) {
                    Some(xrow) => {
                        // Whole pixel pairs, then an odd row's last pixel.
                        let pairs = xrow.chunks_exact(2);
                        let last = pairs.remainder().first().filter(|_| o == 0);
                        for (tv, pr) in trow.iter_mut().zip(pairs) {
                            *tv = pr[o].max(0.0);
                        }
                        if let Some(tv) = trow.get_mut(w / 2) {
                            *tv = last.map_or(0.0, |v| v.max(0.0));
                        }
                    }
                    None => trow.fill(0.0),
                }
            }
        }
    }
}

/// The input gradient of [`reduce_gather`] from the subsamples' gradients
/// `dt` (`2 x [cin, oh, ow]`): `dxb[c, 2y + o, 2x + o] = dt_o[c, y, x]`
/// where the input is positive; the rest of `dxb` (zeroed by the caller)
/// is left alone.
fn reduce_scatter(dt: &[f32], xb: &[f32], d: &BlockDims, dxb: &mut [f32]) {
    let (h, w, ow, pix) = (d.h, d.w, d.ow.max(1), d.pix().max(1));
    for (o, dto) in dt.chunks_exact(d.cin * pix).take(2).enumerate() {
        for ((dtp, xp), dxp) in dto
            .chunks_exact(pix)
            .zip(xb.chunks_exact(h * w))
            .zip(dxb.chunks_exact_mut(h * w))
        {
            for (oy, dtrow) in dtp.chunks_exact(ow).enumerate() {
                let iy = 2 * oy + o;
                if iy >= h {
                    break;
                }
                let (xrow, dxrow) = (&xp[iy * w..(iy + 1) * w], &mut dxp[iy * w..(iy + 1) * w]);
                // Whole pixel pairs, then an odd row's last pixel.
                for ((dp, xp), gv) in dxrow
                    .chunks_exact_mut(2)
                    .zip(xrow.chunks_exact(2))
                    .zip(dtrow)
                {
                    dp[o] = if xp[o] > 0.0 { *gv } else { 0.0 };
                }
                if o == 0 && w % 2 == 1 {
                    if let (Some(gv), Some(xv)) = (dtrow.get(w / 2), xrow.last()) {
                        dxrow[w - 1] = if *xv > 0.0 { *gv } else { 0.0 };
                    }
                }
            }
        }
    }
}

/// `z_b = pw @ front(x_b)` for one sample into `zb` (`[cout, oh * ow]`,
/// not yet written), returned initialised.
fn conv_sample<'z>(
    s: &mut Scratch,
    xb: &[f32],
    wt: BlockWeights<'_>,
    front: &Front,
    d: &BlockDims,
    zb: &'z mut [MaybeUninit<f32>],
) -> &'z mut [f32] {
    front_sample(s, xb, wt, front, d);
    let (cin, cout, pix) = (d.cin, d.cout, d.pix());
    if *front != Front::ReluReduce {
        return matmul_to(zb, Mat::rows(wt.pw, cout, cin), Mat::rows(&s.t, cin, pix));
    }
    // Each half of the output channels from its own subsample.
    let half = cout / 2;
    if zb.len() != cout * pix || wt.pw.len() != cout * cin || s.t.len() != 2 * cin * pix {
        debug_assert!(false, "dw-block: mismatched reduce operands");
        return crate::uninit::fill(zb, 0.0);
    }
    let (za, zr) = zb.split_at_mut(half * pix);
    let (pa, pr) = wt.pw.split_at(half * cin);
    let (ta, tr) = s.t.split_at(cin * pix);
    matmul_to(za, Mat::rows(pa, half, cin), Mat::rows(ta, cin, pix));
    matmul_to(zr, Mat::rows(pr, cout - half, cin), Mat::rows(tr, cin, pix));
    // SAFETY: the two products initialised the two halves of `zb`.
    unsafe { crate::uninit::assume_init(zb) }
}

/// Training forward: `y = bn(pw @ front(x)) (+ residual)` with the batch
/// statistics. Returns `y`, the pre-normalisation `z` (for
/// [`backward`], which the residual does not change: its gradient is the
/// output's) and the statistics. A residual (`[n, cout, oh, ow]`, as `y`)
/// is a DARTS node's other input, summed in the pass that writes `y`;
/// callers check its length (outside the output's planes it adds nothing).
#[allow(clippy::too_many_arguments)]
pub fn forward_train(
    x: &[f32],
    wt: BlockWeights<'_>,
    gamma: &[f32],
    beta: &[f32],
    front: &Front,
    d: BlockDims,
    eps: f64,
    residual: Option<&[f32]>,
) -> (Vec<f32>, Vec<f32>, Stats) {
    let (pix, cout) = (d.pix(), d.cout);
    let per_out = (cout * pix).max(1);
    // Per sample and channel: the plane's mean and sum of squared deviations,
    // taken while the plane is in cache, merged exactly below.
    let mut part: Vec<Vec<(f32, f32)>> = Vec::new();
    // SAFETY: `par_chunks_mut` hands each value to one call of the closure,
    // in which `conv_sample` initialises its whole chunk.
    let z = unsafe {
        vec_written(d.n * cout * pix, |zs| {
            part = zs
                .par_chunks_mut(per_out)
                .enumerate()
                .map_init(
                    || Scratch::new(&d, front),
                    |s, (b, zb)| {
                        let zb = conv_sample(
                            s,
                            &x[b * d.in_len()..(b + 1) * d.in_len()],
                            wt,
                            front,
                            &d,
                            zb,
                        );
                        zb.chunks_exact(pix.max(1))
                            .map(|zp| {
                                let m = sum(zp) / pix.max(1) as f32;
                                let mut q = 0f32;
                                squared_deviations(zp, m, &mut q);
                                (m, q)
                            })
                            .collect()
                    },
                )
                .collect();
        })
    };
    let count = d.n * pix;
    let (mut mean, mut var) = (vec![0f32; cout], vec![0f32; cout]);
    for ch in 0..cout {
        // Equal-sized groups: the overall mean is the mean of the means, and
        // the sum of squares adds each group's spread around it.
        let m = part.iter().map(|pb| pb[ch].0 as f64).sum::<f64>() / d.n.max(1) as f64;
        let q: f64 = part
            .iter()
            .map(|pb| {
                let (mb, qb) = pb[ch];
                qb as f64 + pix as f64 * (mb as f64 - m).powi(2)
            })
            .sum();
        mean[ch] = m as f32;
        var[ch] = (q / count.max(1) as f64) as f32;
    }
    let invstd: Vec<f32> = var
        .iter()
        .map(|v| 1.0 / ((*v as f64 + eps).sqrt() as f32))
        .collect();
    // SAFETY: `y` and `z` have one length and are cut alike, so every chunk
    // of `y` meets one of `z` as long, which `affine_to` writes it from.
    let y = unsafe {
        vec_written(z.len(), |ys| {
            ys.par_chunks_mut(pix.max(1))
                .zip(z.par_chunks(pix.max(1)))
                .enumerate()
                .for_each(|(plane, (yp, zp))| {
                    let ch = plane % cout.max(1);
                    let a = invstd[ch] * gamma[ch];
                    let b = beta[ch] - mean[ch] * a;
                    let at = plane * pix;
                    let rp = residual.and_then(|r| r.get(at..at + zp.len()));
                    affine_to(zp, a, b, rp, yp);
                })
        })
    };
    (
        y,
        z,
        Stats {
            mean,
            var,
            invstd,
            count,
        },
    )
}

/// Inference forward: `y = scale * (pw @ front(x)) + shift (+ residual)`
/// per output channel (batch norm with running statistics folded into
/// `scale`, `shift`), one pass per sample; the residual as in
/// [`forward_train`] (one of another length than `y` is not added).
pub fn forward_infer(
    x: &[f32],
    wt: BlockWeights<'_>,
    scale: &[f32],
    shift: &[f32],
    front: &Front,
    d: BlockDims,
    residual: Option<&[f32]>,
) -> Vec<f32> {
    let pix = d.pix();
    // SAFETY: `par_chunks_mut` hands each value to one call of the closure,
    // in which `conv_sample` initialises its whole chunk.
    unsafe {
        vec_written(d.n * d.cout * pix, |ys| {
            ys.par_chunks_mut((d.cout * pix).max(1))
                .enumerate()
                .for_each_init(
                    || Scratch::new(&d, front),
                    |s, (b, yb)| {
                        let yb = conv_sample(
                            s,
                            &x[b * d.in_len()..(b + 1) * d.in_len()],
                            wt,
                            front,
                            &d,
                            yb,
                        );
                        let at = b * yb.len();
                        let rb = residual.and_then(|r| r.get(at..at + yb.len()));
                        for (ch, yp) in yb.chunks_exact_mut(pix.max(1)).enumerate() {
                            let rp = rb.map(|r| &r[ch * pix..(ch + 1) * pix]);
                            affine_in_place(yp, scale[ch], shift[ch], rp);
                        }
                    },
                )
        })
    }
}

/// The gradients of the block.
#[derive(Debug, Clone, PartialEq)]
pub struct BlockGrads {
    /// Input gradient, `[n, cin, h, w]`.
    pub dx: Vec<f32>,
    /// Depthwise weight gradient, `[cin, k, k]`.
    pub ddw: Vec<f32>,
    /// Pointwise weight gradient, `[cout, cin]`.
    pub dpw: Vec<f32>,
    /// Batch-norm scale gradient, `[cout]`.
    pub dgamma: Vec<f32>,
    /// Batch-norm shift gradient, `[cout]`.
    pub dbeta: Vec<f32>,
}

/// Groups of samples whose weight gradients [`backward`] sums apart.
const GRAD_GROUPS: usize = 8;

/// A group's sums of the weight gradients.
struct WeightAcc {
    ddw: Vec<f64>,
    dpw: Vec<f32>,
}

/// Backward from the output gradient `g`, with the `z` and statistics of
/// [`forward_train`].
#[allow(clippy::too_many_arguments)]
pub fn backward(
    x: &[f32],
    z: &[f32],
    g: &[f32],
    wt: BlockWeights<'_>,
    gamma: &[f32],
    st: &Stats,
    front: &Front,
    d: BlockDims,
) -> BlockGrads {
    let mut rest = None;
    // SAFETY: `backward_uninit` initialises all of `dx`.
    let dx = unsafe {
        vec_written(x.len(), |dx| {
            rest = Some(backward_uninit(x, z, g, wt, gamma, st, front, d, dx));
        })
    };
    let (ddw, dpw, dgamma, dbeta) = rest.unwrap_or_default();
    BlockGrads {
        dx,
        ddw,
        dpw,
        dgamma,
        dbeta,
    }
}

/// [`backward`] into one buffer, in the order of the packed parameters
/// after the input: `[dx, d depthwise, d pointwise, d scale, d shift]`,
/// then the values of `tail` (another block's parameter gradients).
#[allow(clippy::too_many_arguments)]
pub fn backward_packed(
    x: &[f32],
    z: &[f32],
    g: &[f32],
    wt: BlockWeights<'_>,
    gamma: &[f32],
    st: &Stats,
    front: &Front,
    d: BlockDims,
    tail: &[&[f32]],
) -> Vec<f32> {
    let packed = packed_len(front, d.cin, d.cout) + tail.iter().map(|t| t.len()).sum::<usize>();
    // SAFETY: `backward_uninit` initialises all of `dx`, and the rest is
    // written from the parameter gradients, zeros past their end.
    unsafe {
        vec_written(x.len() + packed, |out| {
            let (dx, rest) = out.split_at_mut(x.len());
            let (ddw, dpw, dgamma, dbeta) = backward_uninit(x, z, g, wt, gamma, st, front, d, dx);
            let grads = ddw
                .iter()
                .chain(&dpw)
                .chain(&dgamma)
                .chain(&dbeta)
                .chain(tail.iter().flat_map(|t| t.iter()));
            let mut n = 0;
            for (o, v) in rest.iter_mut().zip(grads) {
                o.write(*v);
                n += 1;
            }
            crate::uninit::fill(&mut rest[n..], 0.0);
        })
    }
}

/// The backward pass with the input gradient written into `dx` (`x.len()`
/// values, each sample's initialised in full); returns the depthwise,
/// pointwise, scale and shift gradients.
#[allow(clippy::too_many_arguments, clippy::type_complexity)]
fn backward_uninit(
    x: &[f32],
    z: &[f32],
    g: &[f32],
    wt: BlockWeights<'_>,
    gamma: &[f32],
    st: &Stats,
    front: &Front,
    d: BlockDims,
    dx: &mut [MaybeUninit<f32>],
) -> (Vec<f32>, Vec<f32>, Vec<f32>, Vec<f32>) {
    let kk = front.taps();
    let (pix, cin, cout) = (d.pix(), d.cin, d.cout);
    // Batch-norm reductions per channel: sum(g) and sum(g * xhat).
    let sums: Vec<(f32, f32)> = (0..cout)
        .into_par_iter()
        .map(|ch| {
            let (m, is) = (st.mean[ch], st.invstd[ch]);
            let (mut sd, mut sdx) = (0f64, 0f64);
            for b in 0..d.n {
                let i = (b * cout + ch) * pix;
                let (gs, zs) = (&g[i..i + pix], &z[i..i + pix]);
                let a = sum(gs);
                sd += a as f64;
                sdx += ((crate::dot(gs, zs) - m * a) * is) as f64;
            }
            (sd as f32, sdx as f32)
        })
        .collect();
    let inv_count = 1.0 / st.count.max(1) as f32;
    let in_len = d.in_len();
    let hw = d.h * d.w;
    let zero_acc = || WeightAcc {
        ddw: vec![0f64; cin * kk],
        dpw: vec![0f32; cout * cin],
    };
    // One sample: its input gradient into `dxb`, its weight gradients
    // added to `acc`.
    let sample = |s: &mut Scratch,
                  dz: &mut [f32],
                  flipped: &mut [f32],
                  acc: &mut WeightAcc,
                  b: usize,
                  dxb: &mut [MaybeUninit<f32>]| {
        let xb = &x[b * in_len..(b + 1) * in_len];
        // Batch-norm input gradient of this sample.
        for (ch, dzp) in dz.chunks_exact_mut(pix.max(1)).enumerate() {
            let (m, is) = (st.mean[ch], st.invstd[ch]);
            let i = (b * cout + ch) * pix;
            input_gradient(
                &g[i..i + pix],
                &z[i..i + pix],
                gamma[ch] * is,
                sums[ch].0 * inv_count,
                m,
                sums[ch].1 * inv_count * is,
                dzp,
            );
        }
        if *front == Front::ReluReduce {
            // Each half's pointwise gradients from its subsample,
            // whose gradient then goes back to its pixels.
            reduce_gather(xb, &d, &mut s.t);
            let half = cout / 2;
            let (dza, dzr) = dz.split_at(half * pix);
            let (pa, pr) = wt.pw.split_at(half * cin);
            let (ga, gr) = acc.dpw.split_at_mut(half * cin);
            let (ta, tr) = s.t.split_at_mut(cin * pix);
            gram_acc(dza, half, ta, cin, pix, false, &mut [], ga);
            gram_acc(dzr, cout - half, tr, cin, pix, false, &mut [], gr);
            matmul(
                ta,
                false,
                Mat::rows(pa, half, cin).t(),
                Mat::rows(dza, half, pix),
            );
            matmul(
                tr,
                false,
                Mat::rows(pr, cout - half, cin).t(),
                Mat::rows(dzr, cout - half, pix),
            );
            reduce_scatter(&s.t, xb, &d, crate::uninit::fill(dxb, 0.0));
            return;
        }
        let Front::Depthwise(p) = front else {
            // ReLU front: the pointwise gradients straight from the
            // input, the input gradient masked where ReLU cut.
            gram_acc(dz, cout, xb, cin, pix, true, &mut s.t, &mut acc.dpw);
            let dxb = matmul_to(
                dxb,
                Mat::rows(wt.pw, cout, cin).t(),
                Mat::rows(dz, cout, pix),
            );
            for (dv, xv) in dxb.iter_mut().zip(xb) {
                *dv = if *xv <= 0.0 { 0.0 } else { *dv };
            }
            return;
        };
        let dxb = crate::uninit::fill(dxb, 0.0);
        // The depthwise output again, then the pointwise gradients.
        depthwise_sample(&mut s.pad, xb, wt.dw, p, &d, &mut s.t);
        gram_acc(dz, cout, &s.t, cin, pix, false, &mut [], &mut acc.dpw);
        // `t` now takes the depthwise output's gradient.
        matmul(
            &mut s.t,
            false,
            Mat::rows(wt.pw, cout, cin).t(),
            Mat::rows(dz, cout, pix),
        );
        for ch in 0..cin {
            let xp = &xb[ch * hw..(ch + 1) * hw];
            let gp = &s.t[ch * pix..(ch + 1) * pix];
            depthwise::weight_grad_plane(
                &mut s.pad,
                &mut s.gpad,
                xp,
                gp,
                p,
                d.dw(),
                &mut acc.ddw[ch * kk..(ch + 1) * kk],
            );
            depthwise::backward_input_plane(
                &mut s.pad,
                flipped,
                xp,
                gp,
                &wt.dw[ch * kk..(ch + 1) * kk],
                p,
                d.dw(),
                &mut dxb[ch * hw..(ch + 1) * hw],
            );
        }
    };
    // The samples in a fixed number of groups: each group's weight
    // gradients summed in sample order, then the groups in theirs. The
    // same bits whatever rayon's work stealing does (a fold over its splits
    // merged partial sums in a varying order, so one seed trained to
    // different networks).
    let per = d.n.div_ceil(GRAD_GROUPS).max(1);
    let parts: Vec<WeightAcc> = dx
        .par_chunks_mut((per * in_len).max(1))
        .enumerate()
        .map_init(
            || {
                (
                    Scratch::new(&d, front),
                    vec![0f32; cout * pix],
                    vec![0f32; kk],
                )
            },
            |(s, dz, flipped), (gi, dxg)| {
                let mut acc = zero_acc();
                for (j, dxb) in dxg.chunks_mut(in_len.max(1)).enumerate() {
                    sample(s, dz, flipped, &mut acc, gi * per + j, dxb);
                }
                acc
            },
        )
        .collect();
    let mut acc = zero_acc();
    for part in &parts {
        for (u, v) in acc.ddw.iter_mut().zip(&part.ddw) {
            *u += v;
        }
        for (u, v) in acc.dpw.iter_mut().zip(&part.dpw) {
            *u += v;
        }
    }
    (
        acc.ddw.iter().map(|v| *v as f32).collect(),
        acc.dpw,
        sums.iter().map(|s| s.1).collect(),
        sums.iter().map(|s| s.0).collect(),
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::testutil::{close, values};
    use crate::{batchnorm, pointwise};

    /// The unfused composition of the existing kernels.
    struct Unfused {
        y: Vec<f32>,
        stats: Stats,
        grads: BlockGrads,
    }

    #[allow(clippy::too_many_arguments)]
    fn unfused(
        x: &[f32],
        wt: BlockWeights<'_>,
        gamma: &[f32],
        beta: &[f32],
        g: &[f32],
        front: &Front,
        d: BlockDims,
        eps: f64,
    ) -> Unfused {
        let dd = d.dw();
        let pd = pointwise::Dims {
            n: d.n,
            cin: d.cin,
            cout: d.cout,
            hw: d.pix(),
        };
        // The pointwise input and whether the pointwise op applies ReLU.
        let (t, relu) = match front {
            Front::Depthwise(p) => (depthwise::forward(x, wt.dw, p, dd), false),
            Front::Relu => (x.to_vec(), true),
            Front::ReluReduce => unreachable!("the reduce front has its own test"),
        };
        let z = pointwise::forward(&t, wt.pw, pd, relu);
        let (y, stats) = batchnorm::forward(&z, gamma, beta, d.n, d.cout, d.pix(), eps);
        let (dz, dgamma, dbeta) = batchnorm::backward(&z, gamma, g, &stats, d.n, d.cout, d.pix());
        let dt = pointwise::backward_input(&t, &dz, wt.pw, pd, relu);
        let dpw = pointwise::backward_weight(&t, &dz, pd, relu);
        let (dx, ddw) = match front {
            Front::Depthwise(p) => (
                depthwise::backward_input(x, &dt, wt.dw, p, dd),
                depthwise::backward_weight(x, &dt, p, dd),
            ),
            Front::Relu | Front::ReluReduce => (dt, Vec::new()),
        };
        Unfused {
            y,
            stats,
            grads: BlockGrads {
                dx,
                ddw,
                dpw,
                dgamma,
                dbeta,
            },
        }
    }

    /// Values, statistics and every gradient against the unfused kernels,
    /// at odd sizes, strides 1 and 2, dilation 1 and 2, with and without
    /// the ReLU; and the inference pass against normalising by hand.
    #[test]
    fn fused_block_matches_the_unfused_kernels() {
        for &(k, stride, dilation, relu, n, cin, cout, h, w) in &[
            (3, 1, 1, true, 3, 5, 7, 11, 9),
            (5, 1, 1, true, 2, 4, 3, 13, 10),
            (3, 1, 2, true, 3, 3, 6, 9, 12),
            (5, 2, 2, true, 2, 6, 5, 11, 13),
            (3, 2, 1, false, 4, 3, 4, 7, 7),
            (3, 1, 1, false, 1, 2, 2, 1, 1),
            // k 0: the ReLU front (no depthwise stage).
            (0, 1, 1, true, 3, 9, 5, 7, 9),
            (0, 1, 1, true, 2, 3, 4, 1, 1),
        ] {
            let front = if k == 0 {
                Front::Relu
            } else {
                Front::Depthwise(DwParams {
                    k,
                    stride,
                    pad: dilation * (k - 1) / 2,
                    dilation,
                    relu,
                })
            };
            let (oh, ow) = match &front {
                Front::Depthwise(p) => (p.out_size(h).unwrap(), p.out_size(w).unwrap()),
                Front::Relu | Front::ReluReduce => (h, w),
            };
            let d = BlockDims {
                n,
                cin,
                cout,
                h,
                w,
                oh,
                ow,
            };
            let what = format!("{front:?} {d:?}");
            let x = values(n * cin * h * w, 1);
            let dw = values(cin * k * k, 2);
            let pw = values(cout * cin, 3);
            let gamma: Vec<f32> = values(cout, 4).iter().map(|v| v + 1.5).collect();
            let beta = values(cout, 5);
            let g = values(n * cout * oh * ow, 6);
            let wt = BlockWeights { dw: &dw, pw: &pw };
            let want = unfused(&x, wt, &gamma, &beta, &g, &front, d, 1e-5);
            let (y, z, st) = forward_train(&x, wt, &gamma, &beta, &front, d, 1e-5, None);
            close(&y, &want.y, &format!("y {what}"));
            close(&st.mean, &want.stats.mean, &format!("mean {what}"));
            close(&st.var, &want.stats.var, &format!("var {what}"));
            assert_eq!(st.count, want.stats.count);
            let gr = backward(&x, &z, &g, wt, &gamma, &st, &front, d);
            close(&gr.dx, &want.grads.dx, &format!("dx {what}"));
            close(&gr.ddw, &want.grads.ddw, &format!("ddw {what}"));
            close(&gr.dpw, &want.grads.dpw, &format!("dpw {what}"));
            close(&gr.dgamma, &want.grads.dgamma, &format!("dgamma {what}"));
            close(&gr.dbeta, &want.grads.dbeta, &format!("dbeta {what}"));
            // Inference with the batch statistics as running ones equals the
            // training output.
            let scale: Vec<f32> = (0..cout).map(|c| gamma[c] * st.invstd[c]).collect();
            let shift: Vec<f32> = (0..cout).map(|c| beta[c] - st.mean[c] * scale[c]).collect();
            let yi = forward_infer(&x, wt, &scale, &shift, &front, d, None);
            close(&yi, &want.y, &format!("infer {what}"));
            // A residual is added to the output, in training and inference,
            // and changes nothing else.
            let r = values(y.len(), 7);
            let plus: Vec<f32> = y.iter().zip(&r).map(|(a, b)| a + b).collect();
            let (yr, zr, _) = forward_train(&x, wt, &gamma, &beta, &front, d, 1e-5, Some(&r));
            assert_eq!(yr, plus, "residual {what}");
            assert_eq!(zr, z, "residual z {what}");
            let yir = forward_infer(&x, wt, &scale, &shift, &front, d, Some(&r));
            let iplus: Vec<f32> = yi.iter().zip(&r).map(|(a, b)| a + b).collect();
            assert_eq!(yir, iplus, "residual infer {what}");
        }
    }

    /// Channels `c0..c0 + cn` of each sample of `v` (`[n, c, per]`).
    fn channels(v: &[f32], c: usize, per: usize, c0: usize, cn: usize) -> Vec<f32> {
        v.chunks_exact(c * per)
            .flat_map(|s| s[c0 * per..(c0 + cn) * per].iter().copied())
            .collect()
    }

    /// The reduce front is the ReLU front run on each stride-2 subsample
    /// for its half of the channels: outputs, statistics, every gradient,
    /// and no gradient for the pixels neither subsample reads; even and odd
    /// sizes, an odd number of channels, a 1x1 input.
    #[test]
    fn reduce_front_is_two_relu_blocks_on_the_subsamples() {
        for &(n, cin, cout, h, w) in &[(2, 3, 4, 6usize, 8usize), (3, 4, 5, 7, 5), (1, 2, 2, 1, 1)]
        {
            let (oh, ow) = (h.div_ceil(2), w.div_ceil(2));
            let d = BlockDims {
                n,
                cin,
                cout,
                h,
                w,
                oh,
                ow,
            };
            let x = values(n * cin * h * w, 1);
            let pw = values(cout * cin, 3);
            let gamma: Vec<f32> = values(cout, 4).iter().map(|v| v + 1.5).collect();
            let beta = values(cout, 5);
            let g = values(n * cout * oh * ow, 6);
            let wt = BlockWeights { dw: &[], pw: &pw };
            let front = Front::ReluReduce;
            let (y, z, st) = forward_train(&x, wt, &gamma, &beta, &front, d, 1e-5, None);
            let gr = backward(&x, &z, &g, wt, &gamma, &st, &front, d);
            let half = cout / 2;
            let what = format!("{d:?}");
            let mut covered = vec![false; x.len()];
            for (o, lo, len) in [(0, 0, half), (1, half, cout - half)] {
                let at = |p: usize, yy: usize, xx: usize| {
                    let (iy, ix) = (2 * yy + o, 2 * xx + o);
                    (iy < h && ix < w).then_some(p * h * w + iy * w + ix)
                };
                let mut xs = Vec::new();
                for p in 0..n * cin {
                    for yy in 0..oh {
                        for xx in 0..ow {
                            xs.push(at(p, yy, xx).map_or(0.0, |i| x[i]));
                        }
                    }
                }
                let ds = BlockDims {
                    cout: len,
                    h: oh,
                    w: ow,
                    ..d
                };
                let ws = BlockWeights {
                    dw: &[],
                    pw: &pw[lo * cin..(lo + len) * cin],
                };
                let (gm, bt) = (&gamma[lo..lo + len], &beta[lo..lo + len]);
                let gs = channels(&g, cout, oh * ow, lo, len);
                let (ys, zs, sts) = forward_train(&xs, ws, gm, bt, &Front::Relu, ds, 1e-5, None);
                let grs = backward(&xs, &zs, &gs, ws, gm, &sts, &Front::Relu, ds);
                close(
                    &channels(&y, cout, oh * ow, lo, len),
                    &ys,
                    &format!("y {o} {what}"),
                );
                close(
                    &st.mean[lo..lo + len],
                    &sts.mean,
                    &format!("mean {o} {what}"),
                );
                close(&st.var[lo..lo + len], &sts.var, &format!("var {o} {what}"));
                close(
                    &gr.dpw[lo * cin..(lo + len) * cin],
                    &grs.dpw,
                    &format!("dpw {o} {what}"),
                );
                close(
                    &gr.dgamma[lo..lo + len],
                    &grs.dgamma,
                    &format!("dgamma {o} {what}"),
                );
                close(
                    &gr.dbeta[lo..lo + len],
                    &grs.dbeta,
                    &format!("dbeta {o} {what}"),
                );
                let (mut got, mut want) = (Vec::new(), Vec::new());
                for p in 0..n * cin {
                    for yy in 0..oh {
                        for xx in 0..ow {
                            if let Some(i) = at(p, yy, xx) {
                                got.push(gr.dx[i]);
                                want.push(grs.dx[(p * oh + yy) * ow + xx]);
                                covered[i] = true;
                            }
                        }
                    }
                }
                close(&got, &want, &format!("dx {o} {what}"));
            }
            for (i, c) in covered.iter().enumerate() {
                assert!(
                    *c || gr.dx[i] == 0.0,
                    "dx {i} unread yet {} {what}",
                    gr.dx[i]
                );
            }
        }
    }

    /// The weight gradients are the same bits with 1, 2, 3 or 5 threads
    /// (sums in a fixed order), so a seeded training run repeats exactly.
    #[test]
    fn gradients_do_not_depend_on_the_threads() {
        let d = BlockDims {
            n: 19,
            cin: 6,
            cout: 5,
            h: 9,
            w: 7,
            oh: 9,
            ow: 7,
        };
        let dwp = DwParams {
            k: 3,
            stride: 1,
            pad: 1,
            dilation: 1,
            relu: true,
        };
        let x = values(d.n * d.cin * d.h * d.w, 1);
        let (dw, pw) = (values(d.cin * 9, 2), values(d.cout * d.cin, 3));
        let gamma: Vec<f32> = values(d.cout, 4).iter().map(|v| v + 1.5).collect();
        let beta = values(d.cout, 5);
        let g = values(d.n * d.cout * d.pix(), 6);
        for front in [Front::Depthwise(dwp), Front::Relu] {
            let wt = BlockWeights { dw: &dw, pw: &pw };
            let run = |threads: usize| {
                let pool = rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .unwrap();
                pool.install(|| {
                    let (_, z, st) = forward_train(&x, wt, &gamma, &beta, &front, d, 1e-5, None);
                    backward(&x, &z, &g, wt, &gamma, &st, &front, d)
                })
            };
            let one = run(1);
            for threads in [2, 3, 5] {
                assert_eq!(run(threads), one, "{front:?}, {threads} threads");
            }
        }
    }
}
