//! `seki proxy check`

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use seki::config::EvaluatorKind;
use seki::eval::candle::CandleEvaluator;
use seki::eval::Nb201Table;
use seki::knowledge::{KnowledgeBase, OpenOptions};
use seki::proxy::{self, Fidelity};
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
    let ProxyCommand::Check(a) = c;
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
    let f = if cfg.search.evaluator == EvaluatorKind::Nb201 {
        let table = Nb201Table::load(&cfg.evaluator.nb201.table)?;
        proxy::table_check(&table, 8)
    } else {
        let mut high_cfg = cfg.evaluator.candle.clone();
        let mut named = false;
        for (flag, slot) in [
            (a.high_epochs, &mut high_cfg.epochs),
            (a.high_train_subset, &mut high_cfg.train_subset),
            (a.high_valid_size, &mut high_cfg.valid_size),
            (a.high_channels, &mut high_cfg.channels),
            (a.high_cells, &mut high_cfg.cells),
        ] {
            if let Some(v) = flag {
                *slot = v;
                named = true;
            }
        }
        if !named {
            bail!("name the higher-fidelity setting with --high-epochs, --high-train-subset, --high-valid-size, --high-channels or --high-cells");
        }
        let mut low = CandleEvaluator::with_current_exe(cfg.evaluator.candle.clone())?;
        let mut high = CandleEvaluator::with_current_exe(high_cfg)
            .context("the higher-fidelity setting is invalid")?;
        let kb = if cfg.kb.dir.is_dir() {
            Some(KnowledgeBase::open(
                &cfg.kb.dir,
                OpenOptions {
                    skip_bad_lines: cfg.kb.skip_bad_lines,
                    ..Default::default()
                },
            )?)
        } else {
            None
        };
        let archs = proxy::sample(kb.as_ref(), cfg.search.space, a.random, a.seed);
        let total = archs.len();
        let quiet = a.json;
        let mut progress = |i: usize, p: &proxy::Pair| {
            if !quiet {
                let show = |v: Option<f64>, s: Option<f64>| {
                    v.map_or("failed".to_string(), |v| {
                        format!("{v:.2} ({:.0} s)", s.unwrap_or(0.0))
                    })
                };
                eprintln!(
                    "[{}/{total}] {:<14} proxy {:<16} high fidelity {}",
                    i + 1,
                    p.label,
                    show(p.low, p.low_seconds),
                    show(p.high, p.high_seconds)
                );
            }
        };
        proxy::check(
            &mut low,
            &mut high,
            &archs,
            Some(&out.join("evaluations.jsonl")),
            &mut progress,
        )?
    };
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
    if let (Some(l), Some(h)) = (f.low_seconds_mean, f.high_seconds_mean) {
        println!("seconds        {l:.0} per proxy evaluation, {h:.0} per high-fidelity one");
    }
    println!("chart          {}", out.join("proxy-check.svg").display());
    println!("data           {}", out.join("proxy-check.json").display());
}
