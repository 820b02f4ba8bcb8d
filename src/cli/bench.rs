//! `seki bench`

use anyhow::Result;
use clap::{Args, Subcommand};
use seki::bench;
use seki::eval::Nb201Table;
use seki::session::setup::{self, LlmSource};
use seki::session::Spec;
use seki::strategy::StrategyKind;
use std::path::{Path, PathBuf};

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Run seeded sessions of each strategy against the NAS-Bench-201 table and
    /// print the mean ± std test accuracy of the returned architecture at
    /// evaluations 25, 50, 100, 200, ..., budget.
    Nb201(Nb201Args),
}

#[derive(Debug, Args)]
pub struct Nb201Args {
    /// Strategies to compare (repeat or comma-separate).
    #[arg(long, value_delimiter = ',', default_values = ["random", "rea"])]
    pub strategy: Vec<StrategyKind>,
    /// Evaluations per session [config: bench.budget].
    #[arg(long, value_name = "N")]
    pub budget: Option<usize>,
    /// Sessions per strategy [config: bench.seeds].
    #[arg(long, value_name = "K")]
    pub seeds: Option<usize>,
    /// Seed of the first session; the others follow it.
    #[arg(long, default_value_t = 0)]
    pub first_seed: u64,
    /// NAS-Bench-201 table CSV [config: evaluator.nb201.table].
    #[arg(long, value_name = "PATH")]
    pub table: Option<PathBuf>,
    /// LLM profile for the seki strategy [config: agent.llm_evolution / agent.llm_inspiration].
    #[arg(long, value_name = "PROFILE")]
    pub llm: Option<String>,
    /// Evaluations in flight in each session, on a virtual clock: the
    /// strategy proposes before earlier results are known, and results come
    /// back out of order (repeat or comma-separate to compare, e.g. 1,4,8).
    #[arg(long, value_name = "N", value_delimiter = ',', default_values = ["1"])]
    pub in_flight: Vec<usize>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(config: Option<&Path>, c: BenchCommand) -> Result<()> {
    let BenchCommand::Nb201(a) = c;
    let mut loaded = super::load_config(config)?;
    if let Some(t) = &a.table {
        loaded.config.evaluator.nb201.table = t.clone();
    }
    if let Some(b) = a.budget {
        loaded.config.bench.budget = b;
    }
    if let Some(s) = a.seeds {
        loaded.config.bench.seeds = s;
    }
    loaded.config.search.space = seki::space::Space::Nb201;
    loaded.config.search.evaluator = seki::config::EvaluatorKind::Nb201;
    loaded.validate()?;
    let cfg = &loaded.config;
    let table = Nb201Table::load(&cfg.evaluator.nb201.table)?;
    let mut results = Vec::new();
    let runs: Vec<(StrategyKind, usize)> = a
        .strategy
        .iter()
        .flat_map(|k| a.in_flight.iter().map(move |n| (*k, (*n).max(1))))
        .collect();
    for (kind, in_flight) in &runs {
        let (kind, in_flight) = (kind, *in_flight);
        let mut spec = Spec::from_config(cfg);
        spec.strategy = *kind;
        spec.max_evaluations = cfg.bench.budget;
        spec.max_seconds = 0.0;
        if *kind != StrategyKind::Seki {
            results.push(bench::run_strategy(
                &table,
                &spec,
                cfg.bench.seeds,
                a.first_seed,
                in_flight,
            )?);
            continue;
        }
        let models = setup::models(
            cfg,
            &LlmSource::Profiles {
                profile: a.llm.clone(),
            },
        )?;
        let quiet = a.json;
        let mut done = |seed: u64, t: Option<f64>| {
            if !quiet {
                eprintln!(
                    "seki seed {seed}: test accuracy of the returned architecture {}",
                    t.map_or("-".into(), |t| format!("{t:.2}"))
                );
            }
        };
        results.push(bench::run_seki(
            &table,
            &spec,
            cfg,
            models,
            a.first_seed,
            cfg.bench.seeds,
            in_flight,
            &mut done,
        )?);
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&results)?);
    } else {
        println!(
            "NAS-Bench-201 CIFAR-10: test accuracy (200 epochs, %) of the architecture with the best\n12-epoch validation accuracy seen, mean ± std over seeds (best in table: {:.2})\n",
            table.best_test()
        );
        print!("{}", bench::render_table(&results));
    }
    Ok(())
}
