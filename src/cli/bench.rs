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
    /// Measure the agent's tie rule under evaluation noise, on the
    /// NAS-Bench-201 table with Gaussian noise added (no training, no LLM):
    /// a local search whose child replaces the current architecture only
    /// when it improved by more than TIE_Z standard errors; each decision
    /// is checked against the noiseless table.
    NoiseTies(NoiseTiesArgs),
}

#[derive(Debug, Args)]
pub struct NoiseTiesArgs {
    /// Noise standard deviation in points [config: evaluator.nb201.noise_sd, if above 0; else 1].
    #[arg(long, value_name = "POINTS")]
    pub noise_sd: Option<f64>,
    /// Tie thresholds to compare, in standard errors (0: strict comparison).
    #[arg(long, value_delimiter = ',', default_values = ["0", "1", "2"])]
    pub z: Vec<f64>,
    /// Runs per threshold.
    #[arg(long, default_value_t = 200)]
    pub seeds: usize,
    /// Children per run.
    #[arg(long, default_value_t = 100)]
    pub steps: usize,
    /// NAS-Bench-201 table CSV [config: evaluator.nb201.table].
    #[arg(long, value_name = "PATH")]
    pub table: Option<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

fn run_noise_ties(config: Option<&Path>, a: NoiseTiesArgs) -> Result<()> {
    let mut loaded = super::load_config(config)?;
    if let Some(t) = &a.table {
        loaded.config.evaluator.nb201.table = t.clone();
    }
    let cfg = &loaded.config;
    let noise_sd = a.noise_sd.unwrap_or(if cfg.evaluator.nb201.noise_sd > 0.0 {
        cfg.evaluator.nb201.noise_sd
    } else {
        1.0
    });
    if !(noise_sd > 0.0 && noise_sd.is_finite()) || a.z.iter().any(|z| z.is_nan() || *z < 0.0) {
        anyhow::bail!("--noise-sd must be above 0 and every --z 0 or above");
    }
    let table = Nb201Table::load(&cfg.evaluator.nb201.table)?;
    let settings = bench::NoiseTies {
        noise_sd,
        z: a.z.clone(),
        seeds: a.seeds,
        steps: a.steps,
    };
    let results = bench::noise_ties(&table, &settings);
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({"settings": settings, "results": results})
            )?
        );
    } else {
        print!("{}", bench::render_ties(&settings, &results));
    }
    Ok(())
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
    /// Gaussian noise (points) added to the table's validation accuracy
    /// [config: evaluator.nb201.noise_sd].
    #[arg(long, value_name = "POINTS")]
    pub noise_sd: Option<f64>,
    /// Contenders re-evaluated at the end of each session; with them only the
    /// architecture each session returns is reported [config: search.contenders].
    #[arg(long, value_name = "N")]
    pub contenders: Option<usize>,
    /// Re-evaluations of each contender [config: search.contender_repeats].
    #[arg(long, value_name = "N")]
    pub contender_repeats: Option<usize>,
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
    let a = match c {
        BenchCommand::Nb201(a) => a,
        BenchCommand::NoiseTies(a) => return run_noise_ties(config, a),
    };
    let mut loaded = super::load_config(config)?;
    if let Some(t) = &a.table {
        loaded.config.evaluator.nb201.table = t.clone();
    }
    if let Some(n) = a.noise_sd {
        loaded.config.evaluator.nb201.noise_sd = n;
    }
    if let Some(n) = a.contenders {
        loaded.config.search.contenders = n;
    }
    if let Some(n) = a.contender_repeats {
        loaded.config.search.contender_repeats = n;
    }
    if let Some(b) = a.budget {
        loaded.config.bench.budget = b;
    }
    if let Some(s) = a.seeds {
        loaded.config.bench.seeds = s;
    }
    loaded.config.search.space = seki::space::Space::Nb201;
    loaded.config.search.evaluator = seki::config::EvaluatorKind::Nb201;
    loaded.config.search.max_evaluations = loaded.config.bench.budget;
    loaded.config.search.max_seconds = 0.0;
    loaded.validate()?;
    let cfg = &loaded.config;
    let table = Nb201Table::load(&cfg.evaluator.nb201.table)?
        .with_noise(cfg.evaluator.nb201.noise_sd, cfg.evaluator.nb201.noise_seed);
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
