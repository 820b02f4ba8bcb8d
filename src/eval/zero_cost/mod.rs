//! Zero-cost proxies: scores of an untrained network, from one or two
//! forward/backward passes at initialisation, that rank architectures
//! without training them.
//!
//! Every proxy is computed on the Candle evaluator's own network for the
//! architecture (DARTS or NAS-Bench-201), built with its initialisation
//! seed, in a worker process ([`worker`]) with the evaluator's isolation
//! and time limit. The proxies, as the literature defines them:
//!
//! - **synflow** (Tanaka et al., NeurIPS 2020; as a NAS proxy, Abdelfattah
//!   et al., ICLR 2021): every parameter replaced by its absolute value,
//!   batch normalisation left out, an all-ones input of one sample; with
//!   `R` the sum of the logits, the score is `Σ |θ · ∂R/∂θ|` over the
//!   weights of convolutions and linear layers. Data-free.
//! - **naswot** (Mellor et al., ICML 2021, "NAS without training"): each
//!   sample of a batch gets a binary code, whether each ReLU unit is
//!   active; `K[i][j]` counts the units on which samples `i` and `j` agree;
//!   the score is `ln |det K|`.
//! - **jacob_cov** (Mellor et al., 2020, the first version of the same
//!   paper): the Jacobian of the summed logits with respect to each input
//!   of a batch, the correlation matrix of those Jacobians, its eigenvalues
//!   `λ`; the score is `-Σ (ln(λ + k) + 1 / (λ + k))` with `k = 1e-5`.
//! - **snip** (Lee et al., ICLR 2019; Abdelfattah et al.): `Σ |θ · ∂L/∂θ|`
//!   over the weights, `L` the cross-entropy loss of a batch.
//! - **grad_norm** (Abdelfattah et al.): `Σ ||∂L/∂W||₂` over the weight
//!   tensors (the Frobenius norm of each).
//! - **params** and **flops**: the baselines every paper reports beside
//!   them: trainable parameters, and multiply-adds of one sample (the
//!   figure NAS-Bench-201 calls FLOPs).
//!
//! The data-dependent proxies (naswot, jacob_cov, snip, grad_norm) share one
//! forward pass of one batch (batch normalisation with batch statistics, as
//! at the start of training); snip and grad_norm share its loss backward,
//! jacob_cov has a backward of its own. Their batch is the configured
//! dataset's ([`ProbeInput::Dataset`]) or Gaussian noise
//! ([`ProbeInput::Noise`]); images smaller than the network's input are
//! placed in the middle of the frame and gray images repeated over the
//! colour channels, so Fashion-MNIST can feed a CIFAR-shaped network.
//!
//! A proxy that cannot score an architecture (the output does not depend
//! on the input, a singular kernel) gets no value and a note; rankings put
//! such architectures below every scored one, never a NaN at the top.

pub mod linalg;
pub mod worker;

use crate::eval::candle::data::{self, Dataset, DatasetKind};
use crate::eval::candle::nn::{Ctx, Probe};
use crate::eval::candle::{train, CandleConfig, CandleError};
use crate::rng::Rng;
use crate::space::Arch;
use candle_core::{DType, Device, Tensor, Var};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Instant;

/// One zero-cost proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Proxy {
    /// Synaptic flow (data-free).
    Synflow,
    /// NAS without training: log-determinant of the ReLU-code kernel.
    Naswot,
    /// Jacobian covariance.
    JacobCov,
    /// Connection sensitivity.
    Snip,
    /// Sum of the weight gradients' norms.
    GradNorm,
    /// Trainable parameters.
    Params,
    /// Multiply-adds of one sample.
    Flops,
}

impl Proxy {
    /// Every proxy, in the order tables and files list them.
    pub const ALL: [Proxy; 7] = [
        Proxy::Synflow,
        Proxy::Naswot,
        Proxy::JacobCov,
        Proxy::Snip,
        Proxy::GradNorm,
        Proxy::Params,
        Proxy::Flops,
    ];

    /// The name in files and on the command line.
    pub fn name(&self) -> &'static str {
        match self {
            Proxy::Synflow => "synflow",
            Proxy::Naswot => "naswot",
            Proxy::JacobCov => "jacob_cov",
            Proxy::Snip => "snip",
            Proxy::GradNorm => "grad_norm",
            Proxy::Params => "params",
            Proxy::Flops => "flops",
        }
    }

    /// Whether it needs a batch of data (not synflow, params or flops).
    pub fn needs_data(&self) -> bool {
        matches!(
            self,
            Proxy::Naswot | Proxy::JacobCov | Proxy::Snip | Proxy::GradNorm
        )
    }
}

impl std::fmt::Display for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Proxy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Proxy::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| {
                format!(
                    "unknown proxy '{s}'; valid proxies: {}",
                    Proxy::ALL.map(|p| p.name()).join(", ")
                )
            })
    }
}

/// Where the data-dependent proxies' batch comes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum ProbeInput {
    /// The first training images of the evaluator's dataset after a
    /// seeded shuffle (`evaluator.candle.dataset`, `data_dir`).
    Dataset,
    /// Standard Gaussian images with uniformly random labels.
    Noise,
}

/// The network's input when it is not the dataset's own (a NAS-Bench-201
/// network is CIFAR-shaped whatever data feeds it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputShape {
    /// Image channels.
    pub channels: usize,
    /// Height and width.
    pub size: usize,
    /// Classes (the width of the classifier).
    pub classes: usize,
}

/// Settings of a zero-cost scoring.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ZcConfig {
    /// The network's shape and initialisation seed, the dataset, the
    /// threads and the per-architecture time limit: the Candle evaluator's
    /// settings (training ones unused).
    pub candle: CandleConfig,
    /// Images in the data-dependent proxies' batch.
    pub batch: usize,
    /// What feeds the data-dependent proxies.
    pub input: ProbeInput,
    /// The network's input shape when it is not the dataset's.
    pub shape: Option<InputShape>,
    /// Which proxies to compute (params and flops always are).
    pub proxies: Vec<Proxy>,
}

impl ZcConfig {
    /// Settings over `candle`: a batch of 64 of its dataset, every proxy.
    pub fn new(candle: CandleConfig) -> Self {
        ZcConfig {
            candle,
            batch: 64,
            input: ProbeInput::Dataset,
            shape: None,
            proxies: Proxy::ALL.to_vec(),
        }
    }

    /// The NAS-Bench-201 benchmark's network and input, whatever the
    /// evaluator's own shape: 5 cells per stage, 16 channels, a CIFAR-shaped
    /// 3x32x32 input and 10 classes.
    pub fn nb201_benchmark(mut self) -> Self {
        self.candle.stage_cells = 5;
        self.candle.channels = 16;
        self.shape = Some(InputShape {
            channels: 3,
            size: 32,
            classes: 10,
        });
        self
    }

    /// Whether any requested proxy needs data.
    pub fn needs_data(&self) -> bool {
        self.proxies.iter().any(Proxy::needs_data)
    }

    /// Refuse settings that cannot work, naming the key.
    pub fn check(&self) -> Result<(), CandleError> {
        if self.needs_data() && self.batch < 2 {
            return Err(CandleError::Setup(format!(
                "batch: the data-dependent proxies need at least 2 images (got {})",
                self.batch
            )));
        }
        if let Some(s) = self.shape {
            if s.channels == 0 || s.size < 4 || s.classes < 2 {
                return Err(CandleError::Setup(format!(
                    "shape: {}x{}x{} with {} classes cannot be a network's input",
                    s.channels, s.size, s.size, s.classes
                )));
            }
        }
        Ok(())
    }
}

/// The scores of one architecture.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ZcScores {
    /// Each computed proxy's value; a proxy that could not score the
    /// architecture is absent (see `notes`).
    pub values: BTreeMap<Proxy, f64>,
    /// Seconds of each part (wall clock of the worker's computation, on
    /// its configured threads): `build` (network and initialisation),
    /// `synflow`, `forward` (the data batch's forward pass: naswot's cost),
    /// `loss_backward` (snip and grad_norm), `jacob_backward` (jacob_cov).
    pub seconds: BTreeMap<String, f64>,
    /// Why a proxy has no value.
    pub notes: Vec<String>,
}

impl ZcScores {
    /// A proxy's value.
    pub fn get(&self, p: Proxy) -> Option<f64> {
        self.values.get(&p).copied()
    }

    /// Seconds the whole scoring took.
    pub fn total_seconds(&self) -> f64 {
        self.seconds.values().sum()
    }

    /// Seconds one proxy would cost computed on its own (its network
    /// build, its forward pass and its backward).
    pub fn seconds_of(&self, p: Proxy) -> f64 {
        let s = |k: &str| self.seconds.get(k).copied().unwrap_or(0.0);
        s("build")
            + match p {
                Proxy::Synflow => s("synflow"),
                Proxy::Naswot => s("forward"),
                Proxy::Snip | Proxy::GradNorm => s("forward") + s("loss_backward"),
                Proxy::JacobCov => s("forward") + s("jacob_backward"),
                Proxy::Params | Proxy::Flops => s("synflow"),
            }
    }

    fn set(&mut self, p: Proxy, v: Option<f64>, why: impl FnOnce() -> String) {
        match v.filter(|v| v.is_finite()) {
            Some(v) => {
                self.values.insert(p, v);
            }
            None => self.notes.push(format!("{p}: {}", why())),
        }
    }
}

/// The data-dependent proxies' batch, as tensors.
pub struct ProbeBatch {
    /// Images `[N, C, H, W]`.
    pub x: Tensor,
    /// Labels `[N]`.
    pub y: Tensor,
    /// The network's input shape.
    pub shape: InputShape,
}

/// The batch `cfg` asks for: loads the dataset (unless the input is noise,
/// or no requested proxy needs data, when only the shape is read from the
/// dataset's kind).
pub fn probe_batch(cfg: &ZcConfig, device: &Device) -> Result<ProbeBatch, CandleError> {
    cfg.check()?;
    let kind = cfg.candle.dataset;
    let own = own_shape(kind);
    let shape = cfg.shape.unwrap_or(own);
    let n = cfg.batch.max(1);
    let mut rng = Rng::seed(cfg.candle.seed ^ 0x2E60_C057);
    let per = shape.channels * shape.size * shape.size;
    if !cfg.needs_data() || cfg.input == ProbeInput::Noise {
        let x: Vec<f32> = (0..n * per).map(|_| gaussian(&mut rng) as f32).collect();
        let y: Vec<u32> = (0..n).map(|_| rng.below(shape.classes) as u32).collect();
        return Ok(ProbeBatch {
            x: Tensor::from_vec(x, (n, shape.channels, shape.size, shape.size), device)?,
            y: Tensor::from_vec(y, n, device)?,
            shape,
        });
    }
    let d = Dataset::load(kind, &cfg.candle.data_dir)?;
    if d.train.len() < n {
        return Err(CandleError::Setup(format!(
            "batch: {n} images asked for, the {} training set has {}",
            kind.name(),
            d.train.len()
        )));
    }
    let mut order: Vec<usize> = (0..d.train.len()).collect();
    for i in (1..order.len()).rev() {
        order.swap(i, rng.below(i + 1));
    }
    let idx = &order[..n];
    let raw = data::to_f32(&d.train, idx, kind, None);
    let (c0, s0) = (d.train.channels, d.train.size);
    if s0 > shape.size {
        return Err(CandleError::Setup(format!(
            "shape: {} images are {s0}x{s0}, larger than the network's {}x{} input",
            kind.name(),
            shape.size,
            shape.size
        )));
    }
    let off = (shape.size - s0) / 2;
    let mut x = vec![0f32; n * per];
    for (k, img) in raw.chunks(c0 * s0 * s0).enumerate() {
        for c in 0..shape.channels {
            let src = c % c0;
            for r in 0..s0 {
                let dst = k * per + c * shape.size * shape.size + (r + off) * shape.size + off;
                let from = src * s0 * s0 + r * s0;
                x[dst..dst + s0].copy_from_slice(&img[from..from + s0]);
            }
        }
    }
    if d.classes > shape.classes {
        return Err(CandleError::Setup(format!(
            "shape: the network has {} classes, {} has {}; use a dataset of at most {} classes or noise input",
            shape.classes,
            kind.name(),
            d.classes,
            shape.classes
        )));
    }
    let y: Vec<u32> = idx.iter().map(|&i| u32::from(d.train.labels[i])).collect();
    Ok(ProbeBatch {
        x: Tensor::from_vec(x, (n, shape.channels, shape.size, shape.size), device)?,
        y: Tensor::from_vec(y, n, device)?,
        shape,
    })
}

/// The input shape of a dataset's images and its classes.
pub fn own_shape(kind: DatasetKind) -> InputShape {
    match kind {
        DatasetKind::FashionMnist | DatasetKind::Mnist => InputShape {
            channels: 1,
            size: 28,
            classes: 10,
        },
        DatasetKind::Cifar10 => InputShape {
            channels: 3,
            size: 32,
            classes: 10,
        },
        DatasetKind::Cifar100 => InputShape {
            channels: 3,
            size: 32,
            classes: 100,
        },
    }
}

fn gaussian(rng: &mut Rng) -> f64 {
    let u1 = rng.unit().max(1e-300);
    let u2 = rng.unit();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// The input of the synflow pass's first (sizing) forward. The linearised
/// network (absolute weights, no batch norm, biases zeroed: they change no
/// weight's gradient) is positively homogeneous in its input, so its
/// summed logits `R` scale with the input exactly; deep all-convolution
/// cells reach `R` of 1e45 and more for an input of ones, past `f32`.
const SYNFLOW_PROBE: f64 = 1e-24;

/// Score `arch` with the proxies `cfg` names, on `batch` (the network is
/// built on the batch's device with `cfg.candle`'s shape and seed).
pub fn score(arch: &Arch, cfg: &ZcConfig, batch: &ProbeBatch) -> Result<ZcScores, CandleError> {
    seki_kernels::on_pool(|| score_here(arch, cfg, batch))
}

fn score_here(arch: &Arch, cfg: &ZcConfig, batch: &ProbeBatch) -> Result<ZcScores, CandleError> {
    let device = batch.x.device().clone();
    let s = batch.shape;
    let mut out = ZcScores::default();
    // The evaluator's own network (its auxiliary head too, so every weight
    // is initialised as in training; the head is not run under a probe).
    let mut cc = cfg.candle.clone();
    cc.drop_path = 0.0;
    let t = Instant::now();
    let (mut net, params) = train::build(arch, &cc, s.channels, s.size, s.classes, &device)?;
    out.values
        .insert(Proxy::Params, train::param_count(&params) as f64);
    // Weights of convolutions and linear layers: the parameters of rank 2
    // and more (batch-norm scales and shifts and biases are vectors).
    let weights: Vec<&Var> = params
        .iter()
        .filter(|p| p.var.rank() >= 2)
        .map(|p| &p.var)
        .collect();
    out.seconds
        .insert("build".into(), t.elapsed().as_secs_f64());

    let want = |p: Proxy| cfg.proxies.contains(&p);
    if cfg.needs_data() {
        // One forward pass of the batch: ReLU codes, logits.
        let t = Instant::now();
        let x = Var::from_tensor(&batch.x)?;
        let mut ctx = Ctx::new(true, 0.0, cc.seed);
        ctx.probe = Some(Probe {
            batch_norm: true,
            record: want(Proxy::Naswot),
            ..Probe::default()
        });
        let (logits, _) = net.forward(x.as_tensor(), &mut ctx)?;
        let probe = ctx.probe.take().unwrap_or_default();
        if want(Proxy::Naswot) {
            let v = match &probe.codes {
                Some(k) => {
                    let n = k.dim(0)?;
                    let vals: Vec<f64> = k.to_dtype(DType::F64)?.flatten_all()?.to_vec1()?;
                    linalg::Square::from_rows(n, vals).and_then(|m| m.log_abs_det())
                }
                None => None,
            };
            out.set(Proxy::Naswot, v, || {
                "two samples share a ReLU code (the kernel is singular)".into()
            });
        }
        out.seconds
            .insert("forward".into(), t.elapsed().as_secs_f64());

        if want(Proxy::Snip) || want(Proxy::GradNorm) {
            let t = Instant::now();
            let loss = candle_nn::loss::cross_entropy(&logits, &batch.y)?;
            let grads = loss.backward()?;
            let (mut snip, mut norm) = (0f64, 0f64);
            for w in &weights {
                if let Some(g) = grads.get(w.as_tensor()) {
                    snip += (g * w.as_tensor())?
                        .abs()?
                        .sum_all()?
                        .to_dtype(DType::F64)?
                        .to_scalar::<f64>()?;
                    norm += g
                        .sqr()?
                        .sum_all()?
                        .to_dtype(DType::F64)?
                        .to_scalar::<f64>()?
                        .sqrt();
                }
            }
            let finite_loss = loss.to_dtype(DType::F64)?.to_scalar::<f64>()?.is_finite();
            if want(Proxy::Snip) {
                out.set(Proxy::Snip, finite_loss.then_some(snip), || {
                    "the loss is not finite".into()
                });
            }
            if want(Proxy::GradNorm) {
                out.set(Proxy::GradNorm, finite_loss.then_some(norm), || {
                    "the loss is not finite".into()
                });
            }
            out.seconds
                .insert("loss_backward".into(), t.elapsed().as_secs_f64());
        }

        if want(Proxy::JacobCov) {
            let t = Instant::now();
            let grads = logits.sum_all()?.backward()?;
            let v = match grads.get(x.as_tensor()) {
                Some(j) => {
                    let n = j.dim(0)?;
                    let j = j.to_dtype(DType::F64)?.reshape((n, ()))?;
                    let cols = j.dim(1)?;
                    let vals: Vec<f64> = j.flatten_all()?.to_vec1()?;
                    linalg::row_correlation(&vals, n, cols)
                        .and_then(|c| c.symmetric_eigenvalues())
                        .map(|ev| {
                            let k = 1e-5;
                            -ev.iter()
                                .map(|&l| {
                                    // Rounding can leave a zero eigenvalue slightly negative.
                                    let l = l.max(0.0) + k;
                                    l.ln() + 1.0 / l
                                })
                                .sum::<f64>()
                        })
                }
                None => None,
            };
            out.set(Proxy::JacobCov, v, || {
                "the output does not depend on the input (a constant Jacobian has no correlation)"
                    .into()
            });
            out.seconds
                .insert("jacob_backward".into(), t.elapsed().as_secs_f64());
        }
    }

    // Synflow (and the multiply-adds of one sample, counted on the way):
    // absolute weights, no batch norm, an input of equal values. A first
    // forward sizes `R` for an input of ones (R1 / SYNFLOW_PROBE); the
    // second runs with input and output gradient both scaled by
    // 1 / sqrt(R), so activations and their gradients stay near sqrt(R)
    // and every weight's `θ · ∂R/∂θ` near 1 (then rescaled in f64).
    let t = Instant::now();
    for p in &params {
        let v = if p.var.rank() >= 2 {
            p.var.as_tensor().abs()?
        } else {
            p.var.as_tensor().zeros_like()?
        };
        p.var.set(&v)?;
    }
    let probe = || Probe {
        batch_norm: false,
        record: false,
        ..Probe::default()
    };
    let ones = Tensor::ones((1, s.channels, s.size, s.size), DType::F32, &device)?;
    let mut ctx = Ctx::new(true, 0.0, cc.seed);
    ctx.probe = Some(probe());
    let (logits, _) = net.forward(&(&ones * SYNFLOW_PROBE)?, &mut ctx)?;
    out.values.insert(Proxy::Flops, ctx.macs as f64);
    if want(Proxy::Synflow) {
        let r1 = logits.to_dtype(DType::F64)?.sum_all()?.to_scalar::<f64>()?;
        let r = r1 / SYNFLOW_PROBE;
        let v = if r1 == 0.0 {
            out.notes
                .push("synflow: 0, the output does not depend on the input".into());
            Some(0.0)
        } else if !(r.is_finite() && r > 0.0) {
            None
        } else {
            // A value f32 holds exactly, so the rescaling below is exact.
            let scale = f64::from(r.sqrt().recip() as f32);
            let mut ctx = Ctx::new(true, 0.0, cc.seed);
            ctx.probe = Some(probe());
            let (logits, _) = net.forward(&(&ones * scale)?, &mut ctx)?;
            let grads = (logits.sum_all()? * scale)?.backward()?;
            let mut total = 0f64;
            for w in &weights {
                if let Some(g) = grads.get(w.as_tensor()) {
                    total += (g * w.as_tensor())?
                        .abs()?
                        .to_dtype(DType::F64)?
                        .sum_all()?
                        .to_scalar::<f64>()?;
                }
            }
            Some(total / (scale * scale))
        };
        out.set(Proxy::Synflow, v, || {
            "the linearised network overflowed".into()
        });
    }
    out.seconds
        .insert("synflow".into(), t.elapsed().as_secs_f64());
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::space::nb201::Nb201Cell;

    fn cfg() -> ZcConfig {
        let mut c = ZcConfig::new(CandleConfig {
            stage_cells: 1,
            channels: 4,
            ..CandleConfig::default()
        });
        c.input = ProbeInput::Noise;
        c.batch = 8;
        c.shape = Some(InputShape {
            channels: 3,
            size: 8,
            classes: 10,
        });
        c
    }

    fn nb(s: &str) -> Arch {
        Arch::Nb201(Nb201Cell::parse(s).unwrap())
    }

    #[test]
    fn proxies_are_deterministic_and_finite() {
        let c = cfg();
        let b = probe_batch(&c, &Device::Cpu).unwrap();
        let a = nb("|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_1x1~1|skip_connect~2|");
        let s1 = score(&a, &c, &b).unwrap();
        let s2 = score(&a, &c, &b).unwrap();
        assert_eq!(s1.values, s2.values);
        for p in Proxy::ALL {
            let v = s1.get(p).unwrap_or(f64::NAN);
            assert!(v.is_finite(), "{p}: {v} ({:?})", s1.notes);
        }
        assert!(s1.get(Proxy::Synflow).unwrap() > 0.0);
    }

    #[test]
    fn a_disconnected_cell_gets_defined_scores_and_notes() {
        let c = cfg();
        let b = probe_batch(&c, &Device::Cpu).unwrap();
        // Node 3 is reached by `none` edges only: the output ignores the input.
        let a = nb("|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|none~0|none~1|none~2|");
        let s = score(&a, &c, &b).unwrap();
        assert_eq!(s.get(Proxy::Synflow), Some(0.0));
        assert_eq!(s.get(Proxy::JacobCov), None);
        assert!(
            s.notes.iter().any(|n| n.starts_with("jacob_cov")),
            "{:?}",
            s.notes
        );
        assert!(s.values.values().all(|v| v.is_finite()));
    }

    #[test]
    fn synflow_grows_with_convolutions_and_flops_count_them() {
        let c = cfg();
        let b = probe_batch(&c, &Device::Cpu).unwrap();
        let skip = nb("|skip_connect~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|skip_connect~1|skip_connect~2|");
        let conv = nb("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|");
        let (a, z) = (score(&skip, &c, &b).unwrap(), score(&conv, &c, &b).unwrap());
        assert!(z.get(Proxy::Synflow) > a.get(Proxy::Synflow));
        assert!(z.get(Proxy::Flops) > a.get(Proxy::Flops));
        assert!(z.get(Proxy::Params) > a.get(Proxy::Params));
    }

    #[test]
    fn names_round_trip_and_bad_names_are_refused() {
        for p in Proxy::ALL {
            assert_eq!(p.name().parse::<Proxy>().unwrap(), p);
        }
        let e = "synflo".parse::<Proxy>().unwrap_err();
        assert!(e.contains("synflo") && e.contains("jacob_cov"), "{e}");
    }
}
