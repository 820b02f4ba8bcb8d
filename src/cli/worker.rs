//! Hidden commands of the Candle evaluator: `eval-worker` (one evaluation in
//! a child process) and `bench-train` (the seki side of
//! `bench/train-vs-pytorch.sh`).

use anyhow::{Context, Result};
use clap::Args;
use seki::eval::candle::{nn, train, worker, CandleConfig, DeviceKind};
use seki::space::Space;
use std::time::Instant;

#[derive(Debug, Args)]
pub struct EvalWorkerArgs {
    /// A request file (`RUN_DIR/evals/<id>/request.json`); without it, a
    /// Candle request is read from stdin.
    pub request: Option<std::path::PathBuf>,
}

pub fn run_worker(a: EvalWorkerArgs) -> Result<()> {
    match a.request {
        Some(file) => {
            let o = seki::executor::worker::serve_file(&file).with_context(|| {
                format!(
                    "evaluation worker: cannot write the result of {}",
                    file.display()
                )
            })?;
            eprintln!(
                "eval-worker: {} {}: {}",
                o.id,
                o.evaluation.status.name(),
                o.evaluation.score.map_or_else(
                    || o.evaluation.status.reason().unwrap_or("").to_string(),
                    |s| format!("score {s:.3}")
                )
            );
            Ok(())
        }
        None => {
            let stdin = std::io::stdin();
            let stdout = std::io::stdout();
            worker::serve(&mut stdin.lock(), &mut stdout.lock()).context("evaluation worker pipe")
        }
    }
}

#[derive(Debug, Args)]
pub struct BenchTrainArgs {
    /// DARTS architecture (text or @FILE).
    #[arg(long, default_value = "DARTS_V2")]
    pub arch: String,
    /// Cells.
    #[arg(long, default_value_t = 6)]
    pub cells: usize,
    /// Initial channels.
    #[arg(long, default_value_t = 16)]
    pub channels: usize,
    /// Batch size.
    #[arg(long, default_value_t = 64)]
    pub batch: usize,
    /// Image size (square) and channels.
    #[arg(long, default_value_t = 32)]
    pub size: usize,
    #[arg(long, default_value_t = 3)]
    pub in_channels: usize,
    /// Timed training steps (after warm-up steps).
    #[arg(long, default_value_t = 20)]
    pub steps: usize,
    #[arg(long, default_value_t = 3)]
    pub warmup: usize,
    /// Print per-step timing spans (forward, backward, update).
    #[arg(long)]
    pub spans: bool,
    /// Where to train: cpu, cuda (needs --features cuda) or auto.
    #[arg(long, default_value = "cpu", value_parser = parse_device)]
    pub device: DeviceKind,
}

fn parse_device(s: &str) -> std::result::Result<DeviceKind, String> {
    match s {
        "cpu" => Ok(DeviceKind::Cpu),
        "cuda" => Ok(DeviceKind::Cuda),
        "auto" => Ok(DeviceKind::Auto),
        other => Err(format!(
            "unknown device {other:?}: expected cpu, cuda or auto"
        )),
    }
}

/// The DARTS_V2 genotype (Liu et al., 2019).
const DARTS_V2: &str = "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), ('dil_conv_3x3', 2)], normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1), ('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)], reduce_concat=[2, 3, 4, 5])";

pub fn run_bench_train(a: BenchTrainArgs) -> Result<()> {
    use candle_core::Tensor;
    let text = if a.arch == "DARTS_V2" {
        DARTS_V2.to_string()
    } else {
        a.arch.clone()
    };
    let arch = super::read_arch_arg(Space::Darts, &text)?;
    let cfg = CandleConfig {
        cells: a.cells,
        channels: a.channels,
        weight_decay: 3e-4,
        ..CandleConfig::default()
    };
    let dev = train::select_device(a.device)?;
    let (mut net, params) = train::build(&arch, &cfg, a.in_channels, a.size, 10, &dev)?;
    let n = a.batch;
    let mut rng = seki::rng::Rng::seed(1);
    let xs: Vec<f32> = (0..n * a.in_channels * a.size * a.size)
        .map(|_| rng.unit() as f32 * 2.0 - 1.0)
        .collect();
    let x = Tensor::from_vec(xs, (n, a.in_channels, a.size, a.size), &dev)?;
    let ys: Vec<u32> = (0..n).map(|i| (i % 10) as u32).collect();
    let y = Tensor::from_vec(ys, n, &dev)?;
    let opt_cfg = seki::eval::candle::optim::OptimConfig {
        kind: seki::eval::candle::optim::OptimizerKind::Sgd,
        momentum: 0.9,
        nesterov: false,
        weight_decay: 3e-4,
    };
    let mut opt = seki::eval::candle::optim::Optimizer::new(opt_cfg, params.len());
    let mut ctx = nn::Ctx::new(true, 0.0, 0);
    let (mut tf, mut tb, mut tu) = (0f64, 0f64, 0f64);
    let mut train_time = 0f64;
    // The fastest step too: under load on a shared machine the mean moves
    // with the load, the minimum much less.
    let (mut train_min, mut infer_min) = (f64::INFINITY, f64::INFINITY);
    for i in 0..a.warmup + a.steps {
        let t0 = Instant::now();
        let (logits, _) = net.forward(&x, &mut ctx)?;
        let loss = candle_nn::loss::cross_entropy(&logits, &y)?;
        let _ = loss.to_scalar::<f32>()?;
        let t1 = Instant::now();
        let grads = loss.backward()?;
        let t2 = Instant::now();
        opt.step(&params, &grads, 0.01)?;
        let t3 = Instant::now();
        if i >= a.warmup {
            tf += (t1 - t0).as_secs_f64();
            tb += (t2 - t1).as_secs_f64();
            tu += (t3 - t2).as_secs_f64();
            train_time += (t3 - t0).as_secs_f64();
            train_min = train_min.min((t3 - t0).as_secs_f64());
        }
    }
    let mut ictx = nn::Ctx::new(false, 0.0, 0);
    let mut infer_time = 0f64;
    for i in 0..a.warmup + a.steps {
        let t0 = Instant::now();
        let (logits, _) = net.forward(&x, &mut ictx)?;
        let _ = logits.sum_all()?.to_scalar::<f32>()?;
        if i >= a.warmup {
            let t = t0.elapsed().as_secs_f64();
            infer_time += t;
            infer_min = infer_min.min(t);
        }
    }
    let images = (a.steps * n) as f64;
    if a.spans {
        let s = a.steps as f64;
        eprintln!(
            "per step: forward {:.1} ms, backward {:.1} ms, update {:.1} ms",
            tf / s * 1e3,
            tb / s * 1e3,
            tu / s * 1e3
        );
    }
    println!(
        "{}",
        serde_json::json!({
            "train_images_per_second": images / train_time,
            "infer_images_per_second": images / infer_time,
            "train_step_ms_min": train_min * 1e3,
            "infer_step_ms_min": infer_min * 1e3,
            "peak_memory_mib": train::peak_rss_mib(),
            "params": train::param_count(&params),
            "device": if dev.is_cuda() { "cuda" } else { "cpu" },
        })
    );
    Ok(())
}
