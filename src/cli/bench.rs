//! `seki bench`

use anyhow::Result;
use clap::{Args, Subcommand};
use seki::bench;
use seki::bench::BenchStrategy;
use std::path::{Path, PathBuf};

#[derive(Debug, Subcommand)]
// Parsed once per run; boxing the large variant would buy nothing.
#[allow(clippy::large_enum_variant)]
pub enum BenchCommand {
    /// Run seeded sessions of each strategy against the NAS-Bench-201 table and
    /// print the mean ± standard error test accuracy of the returned architecture at
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
    let settings = bench::NoiseTies {
        noise_sd,
        z: a.z.clone(),
        seeds: a.seeds,
        steps: a.steps,
    };
    let results = bench::noise_ties_on(&cfg.evaluator.nb201.table, &settings)?;
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
    /// Strategies to compare (repeat or comma-separate): random, rea, seki,
    /// seki-blind (the agent with the score-blind stand-in for its LLM:
    /// what seki gains over it is the model's), and with --proxies rea-zc
    /// (regularized evolution with a zero-cost warm-up and screened
    /// mutations) and seki-zc (the agent choosing among its candidates by
    /// the proxy scores).
    #[arg(long, value_delimiter = ',', default_values = ["random", "rea"])]
    pub strategy: Vec<BenchStrategy>,
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
    /// Zero-cost proxy scores (a `seki proxy zc --out` CSV) for rea-zc and
    /// seki-zc; every row is checked against the table at the start.
    #[arg(long, value_name = "FILE")]
    pub proxies: Option<PathBuf>,
    /// Proxies the screened strategies rank by (comma-separate several: the
    /// mean of their percentile ranks).
    #[arg(long, value_name = "PROXY", value_delimiter = ',', default_values = ["synflow"])]
    pub screen: Vec<String>,
    /// rea-zc: random architectures scored by the screen at the start; the
    /// best population-many of them are trained first.
    #[arg(long, value_name = "M", default_value_t = 100)]
    pub warmup: usize,
    /// rea-zc: mutated children of each tournament winner; the best by the
    /// screen is trained (1: plain mutation).
    #[arg(long, value_name = "K", default_value_t = 1)]
    pub screen_mutations: usize,
    /// A warm start: a knowledge base (e.g. built on another dataset)
    /// whose best records rea and the seki strategies evaluate first; the
    /// agent also reads its records as labelled context and its insights as
    /// priors. Rows are marked `warm`.
    #[arg(long, value_name = "DIR")]
    pub warm_kb: Option<PathBuf>,
    /// With --warm-kb: how many of its best records are evaluated first.
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub warm_seeds: usize,
    #[command(flatten)]
    pub constraints: super::ConstraintArgs,
    /// Keep each finished session in FILE (JSON Lines, appended and
    /// fsynced as it ends). Sessions already there under the same settings
    /// are read back instead of run again: an interrupted benchmark resumes
    /// where it stopped, more seeds add to the same file, and processes
    /// running different seeds may share it. A file made with other
    /// settings is refused. It keys on the settings, not on seki's version:
    /// start a new file after changing seki.
    #[arg(long, value_name = "FILE")]
    pub sessions: Option<PathBuf>,
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
    a.constraints.apply(&mut loaded.config);
    loaded.validate()?;
    let cfg = &loaded.config;
    let plan = bench::Plan {
        strategies: a.strategy.clone(),
        in_flight: a.in_flight.clone(),
        first_seed: a.first_seed,
        llm: a.llm.clone(),
        proxies: a.proxies.clone(),
        screen: a.screen.clone(),
        warmup: a.warmup,
        screen_mutations: a.screen_mutations,
        warm_kb: a.warm_kb.clone(),
        warm_seeds: a.warm_seeds,
        sessions: a.sessions.clone(),
    };
    let quiet = a.json;
    let what = if cfg.search.objectives.len() >= 2 {
        "hypervolume of the returned front, % of the true front's"
    } else {
        "test accuracy of the returned architecture"
    };
    let done = |label: &str, seed: u64, t: Option<f64>, read_back: bool| {
        if !quiet {
            eprintln!(
                "{label} seed {seed}: {what} {}{}",
                t.map_or("-".into(), |t| format!("{t:.2}")),
                if read_back { " (from --sessions)" } else { "" }
            );
        }
    };
    let bench::Nb201Bench {
        dataset,
        best_test,
        budget,
        results,
    } = bench::run_nb201(cfg, &plan, done)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&results)?);
    } else {
        if cfg.search.objectives.len() >= 2 {
            let names: Vec<&str> = cfg.search.objectives.iter().map(|o| o.spec()).collect();
            println!(
                "NAS-Bench-201 {}, Pareto search of {}: hypervolume of the returned front (its\nnon-dominated cells by 12-epoch validation accuracy, placed by 200-epoch test accuracy)\nas % of the table's true front's, mean ± standard error over seeds\n",
                dataset,
                names.join(", ")
            );
        } else {
            println!(
                "NAS-Bench-201 {}: test accuracy (200 epochs, %) of the architecture with the best\n12-epoch validation accuracy seen, mean ± standard error over seeds (best in table: {:.2})\n",
                dataset, best_test
            );
        }
        if let Some(b) = &budget {
            println!("budget: {}; every evaluated cell within it", b.constraints);
            match &b.best_within {
                Some(w) => println!(
                    "best cell within the budget: {:.2} ({}, {}; rank {} in the table)\n",
                    w.test_accuracy,
                    w.arch,
                    w.cost.map_or("-".into(), |c| c.describe()),
                    w.rank
                ),
                None => println!("no cell of the table is within the budget\n"),
            }
        }
        print!("{}", bench::render_table(&results));
        if results
            .iter()
            .any(|r| r.proxy_cpu_seconds_per_session.is_some())
        {
            println!(
                "\nzc cpu s: mean CPU seconds per session of the untrained-network proxy scores\nconsulted (from the scores file); the evaluation budget counts trained evaluations only."
            );
        }
    }
    Ok(())
}
