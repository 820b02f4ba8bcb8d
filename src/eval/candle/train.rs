//! Build, size-check, train and score one architecture.

use super::data::{self, Augment, Dataset, Images};
use super::nn::darts::{DartsNet, DartsShape};
use super::nn::nb201::{Nb201Net, Nb201Shape};
use super::nn::{count_macs, Builder, Ctx, Network, Param};
use super::optim::{clip_grad_norm, cosine_lr, OptimConfig, Optimizer};
use super::settings::{CandleConfig, DeviceKind};
use super::CandleError;
use crate::eval::{EvalStatus, Evaluation};
use crate::rng::Rng;
use crate::space::Arch;
use candle_core::{DType, Device, Tensor};
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};

/// The full outcome of one evaluation: the [`Evaluation`] a session records
/// and the per-epoch training loss.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Status, score, test accuracy and metrics.
    pub evaluation: Evaluation,
    /// Mean training loss of each epoch.
    #[serde(default)]
    pub loss_curve: Vec<f64>,
}

impl Report {
    /// A report with only a failed status.
    pub fn failed(status: EvalStatus) -> Self {
        Report {
            evaluation: Evaluation::failed(status),
            loss_curve: Vec::new(),
        }
    }
}

/// The device a setting names.
pub fn select_device(kind: DeviceKind) -> Result<Device, CandleError> {
    match kind {
        DeviceKind::Cpu => Ok(Device::Cpu),
        DeviceKind::Cuda => {
            if cfg!(feature = "cuda") {
                Ok(Device::new_cuda(0)?)
            } else {
                Err(CandleError::Setup(
                    "device = \"cuda\" needs seki built with --features cuda".into(),
                ))
            }
        }
        DeviceKind::Auto => {
            if cfg!(feature = "cuda") && candle_core::utils::cuda_is_available() {
                Ok(Device::new_cuda(0).unwrap_or(Device::Cpu))
            } else {
                Ok(Device::Cpu)
            }
        }
    }
}

/// Build the network for `arch` with `cfg`'s shape; returns it with its parameters.
pub fn build(
    arch: &Arch,
    cfg: &CandleConfig,
    in_channels: usize,
    size: usize,
    classes: usize,
    device: &Device,
) -> Result<(Box<dyn Network>, Vec<Param>), CandleError> {
    let mut b = Builder::new(device.clone(), cfg.seed);
    let net: Box<dyn Network> = match arch {
        Arch::Darts(g) => {
            let shape = DartsShape {
                cells: cfg.cells,
                channels: cfg.channels,
                in_channels,
                classes,
                auxiliary: cfg.auxiliary_weight > 0.0,
            };
            Box::new(DartsNet::new(&mut b, g, shape, size)?)
        }
        Arch::Nb201(c) => {
            let shape = Nb201Shape {
                stage_cells: cfg.stage_cells,
                channels: cfg.channels,
                in_channels,
                classes,
            };
            Box::new(Nb201Net::new(&mut b, c, shape)?)
        }
    };
    Ok((net, b.params))
}

/// Trainable parameters, not counting the auxiliary head (as papers report).
pub fn param_count(params: &[Param]) -> u64 {
    params
        .iter()
        .filter(|p| !p.name.starts_with("auxiliary_head"))
        .map(|p| p.var.elem_count() as u64)
        .sum()
}

/// A batch as tensors.
fn batch(
    images: &Images,
    idx: &[usize],
    d: &Dataset,
    aug: Option<(&Augment, &mut Rng)>,
    device: &Device,
) -> Result<(Tensor, Tensor), CandleError> {
    let x = data::to_f32(images, idx, d.kind, aug);
    let x = Tensor::from_vec(
        x,
        (idx.len(), images.channels, images.size, images.size),
        device,
    )?;
    let y: Vec<u32> = idx.iter().map(|&i| images.labels[i] as u32).collect();
    let y = Tensor::from_vec(y, idx.len(), device)?;
    Ok((x, y))
}

/// Accuracy (fraction) and mean loss of `net` on `images` in inference mode.
pub fn accuracy(
    net: &mut dyn Network,
    images: &Images,
    d: &Dataset,
    batch_size: usize,
    device: &Device,
) -> Result<(f64, f64), CandleError> {
    let mut ctx = Ctx::new(false, 0.0, 0);
    let (mut correct, mut loss_sum) = (0usize, 0f64);
    let all: Vec<usize> = (0..images.len()).collect();
    for idx in all.chunks(batch_size.max(1)) {
        let (x, y) = batch(images, idx, d, None, device)?;
        let (logits, _) = net.forward(&x, &mut ctx)?;
        let loss = candle_nn::loss::cross_entropy(&logits, &y)?.to_scalar::<f32>()? as f64;
        loss_sum += loss * idx.len() as f64;
        let pred = logits.argmax(1)?;
        correct += pred
            .eq(&y)?
            .to_dtype(DType::F32)?
            .sum_all()?
            .to_scalar::<f32>()? as usize;
    }
    let n = images.len().max(1) as f64;
    Ok((correct as f64 / n, loss_sum / n))
}

/// Peak resident memory of this process in MiB (`VmHWM`), where the OS tells it.
pub fn peak_rss_mib() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// Evaluate `arch` on loaded data: size check, training, scoring. A
/// `deadline` makes the loop stop itself with `timed_out` (in-process runs;
/// the worker process is killed from outside instead).
pub fn evaluate(
    arch: &Arch,
    cfg: &CandleConfig,
    d: &Dataset,
    deadline: Option<Instant>,
) -> Result<Report, CandleError> {
    // On a pool thread, so that every op's parallel part runs with this
    // thread taking part rather than a hand-off and wake-up per op
    // (10-20 % of a CPU training step on two threads).
    seki_kernels::on_pool(|| evaluate_here(arch, cfg, d, deadline))
}

/// [`evaluate`] on the calling thread.
fn evaluate_here(
    arch: &Arch,
    cfg: &CandleConfig,
    d: &Dataset,
    deadline: Option<Instant>,
) -> Result<Report, CandleError> {
    let device = select_device(cfg.device)?;
    let (ch, size) = (d.train.channels, d.train.size);
    let (mut net, params) = build(arch, cfg, ch, size, d.classes, &device)?;
    let n_params = param_count(&params);
    let macs = count_macs(net.as_mut(), ch, size, &device)?;
    let mut metrics = std::collections::BTreeMap::new();
    metrics.insert("params".to_string(), n_params as f64);
    metrics.insert("flops".to_string(), macs as f64);
    if cfg.max_params > 0 && n_params > cfg.max_params {
        let mut r = Report::failed(EvalStatus::TooLarge(format!(
            "{n_params} parameters exceed max_params = {}",
            cfg.max_params
        )));
        r.evaluation.metrics = metrics;
        return Ok(r);
    }
    if cfg.max_flops > 0 && macs > cfg.max_flops {
        let mut r = Report::failed(EvalStatus::TooLarge(format!(
            "{macs} multiply-adds per image exceed max_flops = {}",
            cfg.max_flops
        )));
        r.evaluation.metrics = metrics;
        return Ok(r);
    }

    let splits = data::split(
        d,
        cfg.valid_size,
        cfg.train_subset,
        cfg.test_subset,
        cfg.seed,
    );
    if splits.train.is_empty() {
        return Err(CandleError::Setup(
            "no training images left after the validation split".into(),
        ));
    }
    let aug = Augment {
        crop_pad: if cfg.augment { (size / 8).max(1) } else { 0 },
        flip: cfg.augment && d.kind.flips(),
        cutout: cfg.cutout,
    };
    let opt_cfg = OptimConfig {
        kind: cfg.optimizer,
        momentum: cfg.momentum,
        nesterov: cfg.nesterov,
        weight_decay: cfg.weight_decay,
    };
    let mut opt = Optimizer::new(opt_cfg, params.len());
    let mut rng = Rng::seed(cfg.seed ^ 0x7EA1);
    let steps_per_epoch = splits.train.len().div_ceil(cfg.batch_size);
    let total = steps_per_epoch * cfg.epochs;
    let mut ctx = Ctx::new(true, cfg.drop_path, cfg.seed ^ 0xD209);
    let mut curve = Vec::new();
    let started = Instant::now();
    let mut step = 0usize;
    for epoch in 0..cfg.epochs {
        let order = rng.sample_indices(splits.train.len(), splits.train.len());
        let (mut sum, mut count) = (0f64, 0usize);
        for idx in order.chunks(cfg.batch_size) {
            if deadline.is_some_and(|t| Instant::now() > t) {
                return Ok(Report::failed(EvalStatus::TimedOut(format!(
                    "stopped after {:.1} s, in epoch {}",
                    started.elapsed().as_secs_f64(),
                    epoch + 1
                ))));
            }
            // Batch norm needs two samples per batch.
            if idx.len() < 2 {
                continue;
            }
            let lr = cosine_lr(cfg.lr, cfg.lr_min, step, total);
            let (x, y) = batch(&splits.train, idx, d, Some((&aug, &mut rng)), &device)?;
            let (logits, aux) = net.forward(&x, &mut ctx)?;
            let mut loss = candle_nn::loss::cross_entropy(&logits, &y)?;
            if let Some(a) = aux {
                loss = (loss + (candle_nn::loss::cross_entropy(&a, &y)? * cfg.auxiliary_weight)?)?;
            }
            let lv = loss.to_scalar::<f32>()? as f64;
            if !lv.is_finite() {
                let mut r = Report::failed(EvalStatus::Diverged(format!(
                    "training loss became {lv} at epoch {}, step {}",
                    epoch + 1,
                    step + 1
                )));
                r.evaluation.metrics = metrics;
                r.loss_curve = curve;
                return Ok(r);
            }
            let mut grads = loss.backward()?;
            if cfg.grad_clip > 0.0 {
                clip_grad_norm(&params, &mut grads, cfg.grad_clip)?;
            }
            opt.step(&params, &grads, lr)?;
            sum += lv * idx.len() as f64;
            count += idx.len();
            step += 1;
        }
        curve.push(sum / count.max(1) as f64);
    }
    let train_seconds = started.elapsed().as_secs_f64();
    let eval_batch = (cfg.batch_size * 4).max(64);
    let (valid_acc, valid_loss) = accuracy(net.as_mut(), &splits.valid, d, eval_batch, &device)?;
    let (test_acc, _) = accuracy(net.as_mut(), &splits.test, d, eval_batch, &device)?;
    if !valid_loss.is_finite() {
        let mut r = Report::failed(EvalStatus::Diverged(format!(
            "validation loss is {valid_loss}"
        )));
        r.evaluation.metrics = metrics;
        r.loss_curve = curve;
        return Ok(r);
    }
    metrics.insert("train_seconds".into(), train_seconds);
    metrics.insert(
        "train_images_per_second".into(),
        (count_images(&curve, splits.train.len())) / train_seconds.max(1e-9),
    );
    metrics.insert(
        "final_loss".into(),
        curve.last().copied().unwrap_or(f64::NAN),
    );
    metrics.insert("valid_loss".into(), valid_loss);
    metrics.insert("valid_images".into(), splits.valid.len() as f64);
    metrics.insert("epochs".into(), cfg.epochs as f64);
    metrics.insert(
        "latency_ms".into(),
        latency_ms(net.as_mut(), ch, size, &device)?,
    );
    if let Some(m) = peak_rss_mib() {
        metrics.insert("peak_memory_mib".into(), m);
    }
    Ok(Report {
        evaluation: Evaluation {
            status: EvalStatus::Ok,
            score: Some(valid_acc * 100.0),
            test_accuracy: Some(test_acc * 100.0),
            score_se: crate::stats::binomial_se(valid_acc * 100.0, splits.valid.len()),
            metrics,
        },
        loss_curve: curve,
    })
}

fn count_images(curve: &[f64], per_epoch: usize) -> f64 {
    (curve.len() * per_epoch) as f64
}

/// Median wall time of a batch-1 forward pass in inference mode, in ms.
fn latency_ms(
    net: &mut dyn Network,
    ch: usize,
    size: usize,
    device: &Device,
) -> Result<f64, CandleError> {
    let x = Tensor::zeros((1, ch, size, size), DType::F32, device)?;
    let mut times = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let mut ctx = Ctx::new(false, 0.0, 0);
        let (y, _) = net.forward(&x, &mut ctx)?;
        y.to_device(&Device::Cpu)?;
        times.push(t.elapsed());
    }
    times.sort();
    Ok(times
        .get(2)
        .copied()
        .unwrap_or(Duration::ZERO)
        .as_secs_f64()
        * 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::space::{Genotype, Nb201Cell};

    const DARTS_V2: &str = "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), ('dil_conv_3x3', 2)], normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1), ('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)], reduce_concat=[2, 3, 4, 5])";

    fn sizes(arch: &Arch, cfg: &CandleConfig, ch: usize, size: usize) -> (u64, u64) {
        let (mut net, params) = build(arch, cfg, ch, size, 10, &Device::Cpu).unwrap();
        (
            param_count(&params),
            count_macs(net.as_mut(), ch, size, &Device::Cpu).unwrap(),
        )
    }

    /// DARTS reports 3.3M parameters for DARTS_V2 at 20 cells, 36 channels
    /// on CIFAR-10 (its training log: 3.349342 MB, auxiliary head excluded).
    #[test]
    fn darts_v2_has_the_published_parameter_count() {
        let arch = Arch::Darts(Genotype::parse(DARTS_V2).unwrap());
        let cfg = CandleConfig {
            cells: 20,
            channels: 36,
            auxiliary_weight: 0.4,
            ..CandleConfig::default()
        };
        let (params, macs) = sizes(&arch, &cfg, 3, 32);
        assert_eq!(params, 3_349_342);
        // Roughly 0.5 G multiply-adds per 32x32 image.
        assert!((400_000_000..700_000_000).contains(&macs), "{macs}");
    }

    /// NAS-Bench-201 lists 1.5316 M parameters and 220.1 M FLOPs on CIFAR-10
    /// for the all-3x3-convolution cell (N = 5, C = 16).
    #[test]
    fn nb201_has_the_published_sizes() {
        let cell = Nb201Cell::parse("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|").unwrap();
        let cfg = CandleConfig {
            stage_cells: 5,
            channels: 16,
            ..CandleConfig::default()
        };
        let (params, macs) = sizes(&Arch::Nb201(cell), &cfg, 3, 32);
        assert!((params as f64 - 1_531_546.0).abs() < 2_000.0, "{params}");
        assert!((macs as f64 / 1e6 - 220.1).abs() < 3.0, "{macs}");
    }

    #[test]
    fn networks_run_forward_and_backward_on_small_inputs() {
        let cfg = CandleConfig {
            cells: 3,
            channels: 4,
            stage_cells: 1,
            drop_path: 0.2,
            auxiliary_weight: 0.4,
            ..CandleConfig::default()
        };
        let mut rng = Rng::seed(3);
        for arch in [
            Arch::Darts(Genotype::random(&mut rng)),
            Arch::Nb201(Nb201Cell::random(&mut rng)),
        ] {
            for (ch, size) in [(1, 12), (3, 10)] {
                let (mut net, params) = build(&arch, &cfg, ch, size, 10, &Device::Cpu).unwrap();
                let x = Tensor::randn(0f32, 1.0, (2, ch, size, size), &Device::Cpu).unwrap();
                let mut ctx = Ctx::new(true, cfg.drop_path, 1);
                let (y, aux) = net.forward(&x, &mut ctx).unwrap();
                assert_eq!(y.dims(), &[2, 10]);
                let loss = match aux {
                    Some(a) => (y.sum_all().unwrap() + a.sum_all().unwrap()).unwrap(),
                    None => y.sum_all().unwrap(),
                };
                let g = loss.backward().unwrap();
                let with_grad = params
                    .iter()
                    .filter(|p| g.get(p.var.as_tensor()).is_some())
                    .count();
                assert!(
                    with_grad > params.len() / 2,
                    "{arch:?}: {with_grad}/{}",
                    params.len()
                );
            }
        }
    }
}
