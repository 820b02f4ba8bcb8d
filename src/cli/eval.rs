//! `seki eval`

use anyhow::Result;
use clap::Args;
use seki::config::EvaluatorKind;
use seki::space::Space;
use std::path::{Path, PathBuf};

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// Search space of the architecture [config: search.space].
    #[arg(long)]
    pub space: Option<Space>,
    /// Evaluator [config: search.evaluator].
    #[arg(long)]
    pub evaluator: Option<EvaluatorKind>,
    /// NAS-Bench-201 table CSV [config: evaluator.nb201.table].
    #[arg(long, value_name = "PATH")]
    pub table: Option<PathBuf>,
    /// The architecture, or @FILE to read it from a file.
    #[arg(long)]
    pub arch: String,
    /// Dataset of the candle evaluator: fashion-mnist, mnist, cifar10, cifar100
    /// [config: evaluator.candle.dataset]. Implies --evaluator candle.
    #[arg(long)]
    pub dataset: Option<seki::eval::candle::data::DatasetKind>,
    /// Dataset folder [config: evaluator.candle.data_dir].
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Training epochs of the candle evaluator [config: evaluator.candle.epochs].
    /// Implies --evaluator candle.
    #[arg(long, value_name = "N")]
    pub epochs: Option<usize>,
    /// Print the result as one JSON object.
    #[arg(long)]
    pub json: bool,
}

pub fn run(config: Option<&Path>, a: EvalArgs) -> Result<()> {
    let mut loaded = super::load_config(config)?;
    if let Some(s) = a.space {
        loaded.config.search.space = s;
    }
    if let Some(e) = a.evaluator {
        loaded.config.search.evaluator = e;
    } else if a.dataset.is_some()
        || a.epochs.is_some()
        || (loaded.config.search.space == Space::Darts
            && loaded.config.search.evaluator == EvaluatorKind::Nb201)
    {
        // Only the candle evaluator scores DARTS cells or uses these flags.
        loaded.config.search.evaluator = EvaluatorKind::Candle;
    }
    let candle = &mut loaded.config.evaluator.candle;
    if let Some(d) = a.dataset {
        candle.dataset = d;
    }
    if let Some(d) = &a.data_dir {
        candle.data_dir = d.clone();
    }
    if let Some(e) = a.epochs {
        candle.epochs = e;
    }
    if let Some(t) = &a.table {
        loaded.config.evaluator.nb201.table = t.clone();
    }
    loaded.validate()?;
    let cfg = &loaded.config;
    let arch = super::read_arch_arg(cfg.search.space, &a.arch)?;
    if cfg.search.evaluator == EvaluatorKind::Candle {
        return run_candle(cfg, &arch, a.json);
    }
    let mut evaluator = seki::session::setup::evaluator(cfg)?;
    let result = evaluator.evaluate(&arch)?;
    if a.json {
        let mut v = serde_json::to_value(&result)?;
        if let Some(o) = v.as_object_mut() {
            o.insert("arch".into(), arch.to_text().into());
            o.insert("hash".into(), arch.hash().into());
            o.insert("evaluator".into(), serde_json::to_value(evaluator.info())?);
        }
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!("arch       {}", arch.to_text());
        println!("hash       {}", arch.hash());
        println!("status     {}", result.status.name());
        if let Some(s) = result.score {
            println!(
                "score      {} (validation accuracy, % ± one standard error)",
                seki::stats::with_se(s, result.score_se)
            );
        }
        if let Some(t) = result.test_accuracy {
            println!("test       {t:.2} (test accuracy, %)");
        }
        for (k, v) in &result.metrics {
            println!("{k:<10} {v}");
        }
    }
    Ok(())
}

/// `seki eval` with the candle evaluator: trains in a child process and
/// prints accuracies as fractions (`valid_accuracy`, `test_accuracy`) next to
/// the search score in percent (`score`), and the loss curve.
fn run_candle(cfg: &seki::config::Config, arch: &seki::space::Arch, json: bool) -> Result<()> {
    let (report, info) = seki::eval::candle::evaluate_once(cfg.evaluator.candle.clone(), arch)?;
    let e = &report.evaluation;
    let metric = |k: &str| e.metrics.get(k).copied();
    if json {
        let v = serde_json::json!({
            "status": e.status.name(),
            "reason": e.status.reason(),
            "valid_accuracy": e.score.map(|s| s / 100.0),
            "test_accuracy": e.test_accuracy.map(|s| s / 100.0),
            "score": e.score,
            "score_se": e.score_se,
            "params": metric("params"),
            "flops": metric("flops"),
            "train_seconds": metric("train_seconds"),
            "metrics": e.metrics,
            "loss_curve": report.loss_curve,
            "arch": arch.to_text(),
            "hash": arch.hash(),
            "evaluator": info,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!("arch       {}", arch.to_text());
        println!("hash       {}", arch.hash());
        println!("status     {}", e.status.name());
        if let Some(r) = e.status.reason() {
            println!("reason     {r}");
        }
        if let Some(s) = e.score {
            println!(
                "valid      {} (validation accuracy, % ± one standard error)",
                seki::stats::with_se(s, e.score_se)
            );
        }
        if let Some(t) = e.test_accuracy {
            println!("test       {t:.2} (test accuracy, %)");
        }
        for (k, v) in &e.metrics {
            println!("{k:<24} {v}");
        }
        if !report.loss_curve.is_empty() {
            let c: Vec<String> = report
                .loss_curve
                .iter()
                .map(|l| format!("{l:.4}"))
                .collect();
            println!("loss curve {}", c.join(" "));
        }
    }
    Ok(())
}
