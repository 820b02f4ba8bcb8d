//! `seki proxy check`

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use seki::config::EvaluatorKind;
use seki::proxy::{self, zero_cost as zc, Fidelity};
use seki::space::Space;
use std::path::{Path, PathBuf};

#[derive(Debug, Subcommand)]
pub enum ProxyCommand {
    /// Measure how faithfully the proxy ranks architectures: train a sample
    /// (the knowledge base's published cells plus random ones) with the
    /// proxy settings ([evaluator.candle]) and with a higher-fidelity
    /// setting named by the --high-* flags, and report Kendall τ and
    /// Spearman ρ between the two rankings, with a scatter chart. With
    /// --evaluator nb201: the table's 12-epoch validation against its
    /// 200-epoch test accuracy, over all 15,625 architectures.
    Check(CheckArgs),
    /// Score architectures with the zero-cost proxies (synflow, naswot,
    /// jacob_cov, snip, grad_norm, and params and flops as baselines) on
    /// untrained networks, and report how each ranks them: Spearman ρ and
    /// Kendall τ against the NAS-Bench-201 table's 200-epoch test and
    /// 12-epoch validation accuracies (--space nb201, the benchmark's
    /// network: 5 cells per stage, 16 channels, 3x32x32 input), or against
    /// `seki proxy check`'s trained scores (--space darts).
    #[command(after_help = ZC_EXAMPLES)]
    Zc(ZcArgs),
}

const ZC_EXAMPLES: &str = "Examples:
  seki proxy zc --space nb201 --sample 1000 --out runs/zc-1000.csv
  seki proxy zc --space nb201 --proxies synflow --out runs/zc-synflow.csv
  seki proxy zc --space darts --check runs/proxy-check";

#[derive(Debug, Args)]
pub struct ZcArgs {
    /// Search space [config: search.space].
    #[arg(long)]
    pub space: Option<Space>,
    /// NAS-Bench-201 table CSV [config: evaluator.nb201.table].
    #[arg(long, value_name = "PATH")]
    pub table: Option<PathBuf>,
    /// Cells of the table to score (0: all 15,625).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub sample: usize,
    /// Seed of the sample (the networks' initialisation follows
    /// evaluator.candle.seed).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Proxies to compute (params and flops always are).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "synflow,naswot,jacob_cov,snip,grad_norm,params,flops"
    )]
    pub proxies: Vec<seki::eval::zero_cost::Proxy>,
    /// Images in the data-dependent proxies' batch.
    #[arg(long, value_name = "N", default_value_t = 64)]
    pub batch: usize,
    /// What feeds the data-dependent proxies: `dataset` (the evaluator's
    /// dataset, placed in the network's input frame) or `noise` (Gaussian).
    #[arg(long, default_value = "dataset", value_parser = parse_input)]
    pub input: seki::eval::zero_cost::ProbeInput,
    /// Dataset of the batch [config: evaluator.candle.dataset].
    #[arg(long)]
    pub dataset: Option<seki::eval::candle::data::DatasetKind>,
    /// DARTS: the `seki proxy check` output folder whose sample and trained
    /// scores the proxies are compared with [default: RUNS_DIR/proxy-check].
    #[arg(long, value_name = "DIR")]
    pub check: Option<PathBuf>,
    /// CPU threads per worker (0: all cores) [config: evaluator.candle.threads].
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// Seconds one architecture may take before its worker is killed.
    #[arg(long, value_name = "S", default_value_t = 120.0)]
    pub timeout: f64,
    /// The scores as CSV (one row per architecture, appended as each is
    /// scored; a rerun with the same file scores only what is missing),
    /// and the figures beside it as FILE.json.
    #[arg(long, value_name = "FILE.csv")]
    pub out: Option<PathBuf>,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

fn parse_input(s: &str) -> std::result::Result<seki::eval::zero_cost::ProbeInput, String> {
    match s {
        "dataset" => Ok(seki::eval::zero_cost::ProbeInput::Dataset),
        "noise" => Ok(seki::eval::zero_cost::ProbeInput::Noise),
        o => Err(format!("unknown input '{o}'; valid inputs: dataset, noise")),
    }
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Search space [config: search.space].
    #[arg(long)]
    pub space: Option<Space>,
    /// Evaluator [config: search.evaluator].
    #[arg(long)]
    pub evaluator: Option<EvaluatorKind>,
    /// NAS-Bench-201 table CSV [config: evaluator.nb201.table].
    #[arg(long, value_name = "PATH")]
    pub table: Option<PathBuf>,
    /// Random architectures added to the published cells.
    #[arg(long, value_name = "N", default_value_t = 2)]
    pub random: usize,
    /// Add the space's degenerate cells: all skips, all pools, separable
    /// convolutions only.
    #[arg(long)]
    pub degenerate: bool,
    /// Seed of the random architectures.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Knowledge-base folder whose published cells are sampled [config: kb.dir].
    #[arg(long, value_name = "DIR")]
    pub kb: Option<PathBuf>,
    /// Proxy override: training epochs [config: evaluator.candle.epochs].
    #[arg(long, value_name = "N")]
    pub epochs: Option<usize>,
    /// Proxy override: training images (0: all) [config: evaluator.candle.train_subset].
    #[arg(long, value_name = "N")]
    pub train_subset: Option<usize>,
    /// Proxy override: validation images [config: evaluator.candle.valid_size].
    #[arg(long, value_name = "N")]
    pub valid_size: Option<usize>,
    /// Higher fidelity: training epochs.
    #[arg(long, value_name = "N")]
    pub high_epochs: Option<usize>,
    /// Higher fidelity: training images (0: all that the validation split leaves).
    #[arg(long, value_name = "N")]
    pub high_train_subset: Option<usize>,
    /// Higher fidelity: validation images.
    #[arg(long, value_name = "N")]
    pub high_valid_size: Option<usize>,
    /// Higher fidelity: initial channels.
    #[arg(long, value_name = "N")]
    pub high_channels: Option<usize>,
    /// Higher fidelity: DARTS cells.
    #[arg(long, value_name = "N")]
    pub high_cells: Option<usize>,
    /// Higher fidelity: seed of its validation split, initialisation and
    /// batch order [default: one drawn apart from the proxy's and every
    /// rung's].
    #[arg(long, value_name = "N")]
    pub high_seed: Option<u64>,
    /// CPU threads per evaluation, both settings (0: all cores) [config: evaluator.candle.threads].
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// Output folder: proxy-check.json, proxy-check.svg and the evaluation
    /// cache evaluations.jsonl (a rerun with the same folder reuses it)
    /// [default: RUNS_DIR/proxy-check].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(config: Option<&Path>, c: ProxyCommand) -> Result<()> {
    let a = match c {
        ProxyCommand::Check(a) => a,
        ProxyCommand::Zc(a) => return run_zc(config, a),
    };
    let mut loaded = super::load_config(config)?;
    let cfg = &mut loaded.config;
    if let Some(s) = a.space {
        cfg.search.space = s;
    }
    if let Some(e) = a.evaluator {
        cfg.search.evaluator = e;
    }
    if let Some(t) = &a.table {
        cfg.evaluator.nb201.table = t.clone();
    }
    if let Some(d) = &a.kb {
        cfg.kb.dir = d.clone();
    }
    let low = &mut cfg.evaluator.candle;
    if let Some(v) = a.epochs {
        low.epochs = v;
    }
    if let Some(v) = a.train_subset {
        low.train_subset = v;
    }
    if let Some(v) = a.valid_size {
        low.valid_size = v;
    }
    if let Some(v) = a.threads {
        low.threads = v;
    }
    loaded
        .validate()
        .context("the command-line flags give an invalid setting")?;
    let cfg = &loaded.config;
    let out = a
        .out
        .clone()
        .unwrap_or_else(|| cfg.search.runs_dir.join("proxy-check"));
    std::fs::create_dir_all(&out)
        .with_context(|| format!("cannot create output folder {}", out.display()))?;
    let plan = proxy::CheckPlan {
        high: proxy::HighFidelity {
            epochs: a.high_epochs,
            train_subset: a.high_train_subset,
            valid_size: a.high_valid_size,
            channels: a.high_channels,
            cells: a.high_cells,
            seed: a.high_seed,
        },
        random: a.random,
        degenerate: a.degenerate,
        seed: a.seed,
        cache: Some(out.join("evaluations.jsonl")),
    };
    let quiet = a.json;
    let mut progress = |i: usize, total: usize, p: &proxy::Pair| {
        if !quiet {
            let show = |v: Option<f64>, s: Option<f64>| {
                v.map_or("failed".to_string(), |v| {
                    format!("{v:.2} ({:.0} s)", s.unwrap_or(0.0))
                })
            };
            let upper: String = p
                .rungs
                .iter()
                .map(|r| format!(" rung {} {:<16}", r.rung, show(r.score, r.seconds)))
                .collect();
            eprintln!(
                "[{}/{total}] {:<14} proxy {:<16}{upper} high fidelity {}",
                i + 1,
                p.label,
                show(p.low, p.low_seconds),
                show(p.high, p.high_seconds)
            );
        }
    };
    let f = proxy::run_check(cfg, &plan, &mut progress)?;
    write_outputs(&f, &out)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&f)?);
    } else {
        print_fidelity(&f, &out);
    }
    Ok(())
}

fn write_outputs(f: &Fidelity, out: &Path) -> Result<()> {
    let mut json = serde_json::to_string_pretty(f)?;
    json.push('\n');
    seki::store::write_atomic(&out.join("proxy-check.json"), json.as_bytes())?;
    seki::store::write_atomic(&out.join("proxy-check.svg"), f.svg().as_bytes())?;
    Ok(())
}

fn print_fidelity(f: &Fidelity, out: &Path) {
    let fmt = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.3}"));
    println!("proxy          {}", f.low);
    println!("high fidelity  {}", f.high);
    println!("architectures  {} scored under both", f.n);
    if !f.failed.is_empty() {
        println!("failed         {}", f.failed.join(", "));
    }
    println!("Kendall tau    {}", fmt(f.kendall_tau));
    println!("Spearman rho   {}", fmt(f.spearman_rho));
    for r in &f.rungs {
        println!(
            "rung {:<9} tau {} rho {} over {} ({}{})",
            r.rung,
            fmt(r.kendall_tau),
            fmt(r.spearman_rho),
            r.n,
            r.setting,
            r.seconds_mean
                .map_or(String::new(), |s| format!(", {s:.0} s each"))
        );
    }
    if let (Some(l), Some(h)) = (f.low_seconds_mean, f.high_seconds_mean) {
        println!("seconds        {l:.0} per proxy evaluation, {h:.0} per high-fidelity one");
    }
    println!("chart          {}", out.join("proxy-check.svg").display());
    println!("data           {}", out.join("proxy-check.json").display());
}

/// The zero-cost check's result, as `--json` prints it and FILE.json keeps it.
#[derive(Debug, serde::Serialize)]
struct ZcResult {
    space: String,
    network: String,
    input: String,
    n: usize,
    proxies: Vec<zc::ProxyFigures>,
}

fn run_zc(config: Option<&Path>, a: ZcArgs) -> Result<()> {
    use seki::eval::zero_cost::ZcConfig;
    let mut loaded = super::load_config(config)?;
    let cfg = &mut loaded.config;
    if let Some(s) = a.space {
        cfg.search.space = s;
    }
    // The proxies run on the network the Candle evaluator would train; the
    // table is only the comparison's target.
    if cfg.search.space == Space::Darts {
        cfg.search.evaluator = EvaluatorKind::Candle;
    }
    if let Some(t) = &a.table {
        cfg.evaluator.nb201.table = t.clone();
    }
    if let Some(d) = a.dataset {
        cfg.evaluator.candle.dataset = d;
    }
    if let Some(t) = a.threads {
        cfg.evaluator.candle.threads = t;
    }
    loaded
        .validate()
        .context("the command-line flags give an invalid setting")?;
    let cfg = &loaded.config;
    if !(a.timeout > 0.0 && a.timeout.is_finite()) {
        bail!(
            "--timeout: must be a positive number of seconds (got {})",
            a.timeout
        );
    }
    let mut candle = cfg.evaluator.candle.clone();
    candle.timeout_seconds = a.timeout;
    let mut zcfg = ZcConfig::new(candle);
    zcfg.batch = a.batch;
    zcfg.input = a.input.clone();
    zcfg.proxies = a.proxies.clone();
    zcfg.check().map_err(|e| anyhow::anyhow!("--{e}"))?;
    let quiet = a.json;
    let started = std::time::Instant::now();
    let mut progress = |done: usize, total: usize, row: &zc::Row| {
        if !quiet && (done.is_multiple_of(50) || done == total || !row.note.is_empty() && done < 50)
        {
            let rate = started.elapsed().as_secs_f64() / done.max(1) as f64;
            eprintln!(
                "[{done}/{total}] {:.2} s per architecture, about {:.0} min left{}",
                rate,
                rate * (total - done) as f64 / 60.0,
                if row.note.is_empty() {
                    String::new()
                } else {
                    format!(" ({}: {})", row.index, row.note)
                }
            );
        }
    };
    let plan = zc::ZcPlan {
        sample: a.sample,
        seed: a.seed,
        check: a
            .check
            .clone()
            .unwrap_or_else(|| cfg.search.runs_dir.join("proxy-check")),
        out: a.out.clone(),
    };
    let zc::Scored {
        rows,
        targets,
        network,
        zc: zcfg,
    } = zc::score_space(cfg, zcfg, &plan, &mut progress)?;
    use seki::eval::zero_cost::Proxy;
    let figures: Vec<zc::ProxyFigures> = zc::correlate(&rows, &targets)
        .into_iter()
        .filter(|f| a.proxies.contains(&f.proxy) || matches!(f.proxy, Proxy::Params | Proxy::Flops))
        .collect();
    let result = ZcResult {
        space: cfg.search.space.name().to_string(),
        network,
        input: match a.input {
            _ if !zcfg.needs_data() => "none (no data-dependent proxy requested)".to_string(),
            seki::eval::zero_cost::ProbeInput::Dataset => format!(
                "a batch of {} {} training images{}",
                a.batch,
                zcfg.candle.dataset.name(),
                if cfg.search.space == Space::Nb201 {
                    ", each placed in the middle of a 32x32 frame and repeated over 3 channels"
                } else {
                    ""
                }
            ),
            seki::eval::zero_cost::ProbeInput::Noise => {
                format!("a batch of {} Gaussian images with random labels", a.batch)
            }
        },
        n: rows.len(),
        proxies: figures,
    };
    if let Some(out) = &a.out {
        let mut json = serde_json::to_string_pretty(&result)?;
        json.push('\n');
        seki::store::write_atomic(&out.with_extension("json"), json.as_bytes())?;
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&result)?);
        return Ok(());
    }
    println!("{} architectures; {}", result.n, result.network);
    println!("data-dependent proxies: {}", result.input);
    let names: Vec<String> = targets.iter().map(|(n, _)| n.clone()).collect();
    let mut head = format!("{:<10} {:>6} {:>9}", "proxy", "n", "unscored");
    for n in &names {
        head.push_str(&format!("  {:>8} {:>8}", "rho", "tau"));
        let _ = n;
    }
    head.push_str("  s/arch");
    println!(
        "{}",
        names
            .iter()
            .enumerate()
            .map(|(i, n)| format!("[{}] {n}", i + 1))
            .collect::<Vec<_>>()
            .join("   ")
    );
    println!("{head}");
    let f3 = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.3}"));
    for f in &result.proxies {
        let mut line = format!("{:<10} {:>6} {:>9}", f.proxy.name(), f.n, f.unscored);
        for ag in &f.agreement {
            line.push_str(&format!(
                "  {:>8} {:>8}",
                f3(ag.spearman_rho),
                f3(ag.kendall_tau)
            ));
        }
        line.push_str(&format!(
            "  {}",
            f.seconds_per_arch.map_or("-".into(), |s| format!("{s:.3}"))
        ));
        println!("{line}");
    }
    if let Some(out) = &a.out {
        println!("scores  {}", out.display());
        println!("figures {}", out.with_extension("json").display());
    }
    Ok(())
}
