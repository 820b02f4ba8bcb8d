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
    }
    if let Some(t) = &a.table {
        loaded.config.evaluator.nb201.table = t.clone();
    }
    loaded.validate()?;
    let cfg = &loaded.config;
    let arch = super::read_arch_arg(cfg.search.space, &a.arch)?;
    let mut evaluator = seki::eval::from_config(cfg)?;
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
            println!("score      {s:.2} (validation accuracy, %)");
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
