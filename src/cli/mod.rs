//! Command-line flags, parsed into the library's validated settings.

mod bench;
mod eval;
mod kb;
mod kb_truth;
mod llm;
mod proxy;
mod search;
mod serve;
mod worker;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use seki::config::{Config, Loaded};
use seki::space::{Arch, Space};
use std::path::{Path, PathBuf};

/// seki: neural architecture search guided by large language models.
///
/// Strategies propose architectures of a search space, an evaluator scores
/// them, sessions journal every step (and resume after a crash), and the
/// knowledge base keeps what was learnt.
#[derive(Debug, Parser)]
#[command(name = "seki", version, propagate_version = true, max_term_width = 100)]
pub struct Cli {
    /// Config file [default: ./config.toml if present, else built-in defaults].
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// More log output (-v info, -vv debug). RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Only errors on stderr; no progress bar.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a search session (or resume one with --resume).
    #[command(after_help = search::EXAMPLES)]
    Search(search::SearchArgs),
    /// Evaluate one architecture and print the result.
    Eval(eval::EvalArgs),
    /// Inspect and curate the knowledge base.
    #[command(subcommand)]
    Kb(kb::KbCommand),
    /// Benchmark strategies.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// Write a report of run directories (the first is the subject; the others
    /// are compared with it): report.md with SVG charts, and report.html, one
    /// self-contained page with cell diagrams, the lineage and sortable tables.
    Report(ReportArgs),
    /// Show sessions live in the browser: a read-only local web server of
    /// their run directories (the report's views, updated as the journals
    /// grow) and the knowledge base.
    #[command(after_help = serve::EXAMPLES)]
    Serve(serve::ServeArgs),
    /// Parse, check and convert an architecture between text forms.
    Arch(ArchArgs),
    /// Describe a search space: its ops, rules and text format.
    Space(SpaceArgs),
    /// Internal: run one evaluation: the request file REQUEST (its result is
    /// written beside it), or a Candle request read as JSON on stdin (the
    /// result printed on stdout).
    #[command(hide = true)]
    EvalWorker(worker::EvalWorkerArgs),
    /// Internal: score architectures with the zero-cost proxies, a JSON
    /// request read on stdin, one JSON line per architecture on stdout.
    #[command(hide = true)]
    ZcWorker,
    /// Internal: time Candle training and inference of a DARTS network (benchmark).
    #[command(hide = true)]
    BenchTrain(worker::BenchTrainArgs),
    /// Chat with a configured LLM profile, or measure its speed.
    #[command(subcommand)]
    Llm(llm::LlmCommand),
    /// Check how faithfully cheap signals rank architectures: the proxy
    /// training (`check`) and the zero-cost proxies (`zc`).
    #[command(subcommand)]
    Proxy(proxy::ProxyCommand),
}

impl Cli {
    /// Parse the process arguments.
    pub fn try_parse_args() -> Result<Self, clap::Error> {
        Cli::try_parse()
    }
}

/// Set up `tracing` on stderr.
pub fn init_logging(verbose: u8, quiet: bool) {
    let default = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, _) => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}

/// Run the parsed command.
pub fn run(cli: Cli) -> Result<()> {
    let quiet = cli.quiet;
    match cli.command {
        Command::Search(a) => search::run(cli.config.as_deref(), a, quiet),
        Command::Eval(a) => eval::run(cli.config.as_deref(), a),
        Command::Kb(c) => kb::run(cli.config.as_deref(), c),
        Command::Bench(c) => bench::run(cli.config.as_deref(), c),
        Command::Report(a) => run_report(a),
        Command::Serve(a) => serve::run(cli.config.as_deref(), a),
        Command::Arch(a) => run_arch(cli.config.as_deref(), a),
        Command::Space(a) => run_space(a),
        Command::EvalWorker(a) => worker::run_worker(a),
        Command::ZcWorker => {
            let (stdin, stdout) = (std::io::stdin(), std::io::stdout());
            seki::eval::zero_cost::worker::serve(&mut stdin.lock(), &mut stdout.lock())
                .context("zero-cost worker pipe")
        }
        Command::BenchTrain(a) => seki_kernels::on_pool(|| worker::run_bench_train(a)),
        Command::Llm(c) => llm::run(cli.config.as_deref(), c),
        Command::Proxy(c) => proxy::run(cli.config.as_deref(), c),
    }
}

/// Load the config file.
pub fn load_config(path: Option<&Path>) -> Result<Loaded> {
    Ok(Config::load(path)?)
}

/// Read an architecture argument: the text itself, or `@FILE` for a file's contents.
pub fn read_arch_arg(space: Space, arg: &str) -> Result<Arch> {
    let text = match arg.strip_prefix('@') {
        Some(file) => std::fs::read_to_string(file)
            .with_context(|| format!("cannot read architecture file {file}"))?,
        None => arg.to_string(),
    };
    let origin = arg
        .strip_prefix('@')
        .map(|f| format!("{f}: "))
        .unwrap_or_default();
    space
        .parse(&text)
        .map_err(|e| anyhow::anyhow!("{origin}{e}"))
}

/// The text forms `seki arch` converts to.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum ArchFormat {
    /// The space's primary text form (DARTS: the Genotype(...) string).
    Text,
    /// JSON.
    Json,
    /// The canonical form (equal for equivalent networks).
    Canonical,
    /// The compact notation prompts and LLM replies use.
    Notation,
}

#[derive(Debug, Args)]
pub struct ArchArgs {
    /// Search space of the architecture.
    #[arg(long, default_value = "darts")]
    pub space: Space,
    /// Output form.
    #[arg(long, value_enum, default_value = "text", conflicts_with = "svg")]
    pub to: ArchFormat,
    /// Draw the cells as an SVG diagram instead (to stdout, or to --out).
    #[arg(long)]
    pub svg: bool,
    /// Write the output to this file instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Print its cost instead: parameters, FLOPs and batch-1 CPU latency on
    /// the configured evaluator's network (the nb201 table: the benchmark's;
    /// a darts cell: the candle evaluator's), without training.
    #[arg(long, conflicts_with_all = ["svg", "out"])]
    pub cost: bool,
    /// The architecture, or @FILE to read it from a file.
    pub arch: String,
}

fn run_arch(config: Option<&Path>, a: ArchArgs) -> Result<()> {
    let arch = read_arch_arg(a.space, &a.arch)?;
    if a.cost {
        let cfg = load_config(config)?.config;
        let kind = match a.space {
            Space::Nb201 => cfg.search.evaluator,
            Space::Darts => seki::eval::EvaluatorKind::Candle,
        };
        let (c, on) = seki::eval::cost::cost_on(kind, &cfg.evaluator, &arch, true)?;
        println!(
            "params   {}\nflops    {}\nlatency  {:.3} ms ± {:.3} (median, half the IQR; batch 1, {} threads)\non       {on}",
            c.params,
            c.flops,
            c.latency_ms.unwrap_or(f64::NAN),
            c.latency_spread_ms.unwrap_or(f64::NAN),
            match cfg.evaluator.candle.threads {
                0 => "all".to_string(),
                n => n.to_string(),
            }
        );
        return Ok(());
    }
    let text = if a.svg {
        seki::space::diagram::svg(&arch)
    } else {
        let line = match a.to {
            ArchFormat::Text => arch.to_text(),
            ArchFormat::Json => arch.to_json().to_string(),
            ArchFormat::Canonical => arch.canonical(),
            ArchFormat::Notation => seki::space::notation::to_llm(&arch),
        };
        line + "\n"
    };
    match &a.out {
        Some(path) => {
            seki::store::write_atomic(path, text.as_bytes())?;
            println!("{}", path.display());
        }
        None => print!("{text}"),
    }
    eprintln!("hash: {}", arch.hash());
    Ok(())
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Run directories: the session to report, then any to compare with it.
    #[arg(required = true, value_name = "RUN_DIR")]
    pub runs: Vec<PathBuf>,
    /// Output folder [default: the first run directory].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

/// Write the report of a run directory (and comparisons); returns what was written.
pub fn write_report(runs: &[PathBuf], out: Option<&Path>) -> Result<seki::report::Written> {
    let loaded = runs
        .iter()
        .map(|r| {
            seki::report::Run::load(r)
                .with_context(|| format!("cannot read run directory {}", r.display()))
        })
        .collect::<Result<Vec<_>>>()?;
    let out = out
        .map(Path::to_path_buf)
        .unwrap_or_else(|| runs[0].clone());
    Ok(seki::report::write(&loaded, &out)?)
}

fn run_report(a: ReportArgs) -> Result<()> {
    let w = write_report(&a.runs, a.out.as_deref())?;
    println!("{}", w.markdown.display());
    println!("{}", w.html.display());
    Ok(())
}

#[derive(Debug, Args)]
pub struct SpaceArgs {
    /// The space to describe.
    pub space: Space,
    /// Print as JSON.
    #[arg(long)]
    pub json: bool,
}

fn run_space(a: SpaceArgs) -> Result<()> {
    let d = a.space.describe();
    if a.json {
        println!("{}", serde_json::to_string_pretty(&d)?);
    } else {
        println!(
            "space:   {}\nops:     {}\nrules:   {}\nformat:  {}\nexample: {}",
            d.name,
            d.ops.join(", "),
            d.rules,
            d.format,
            d.example
        );
    }
    Ok(())
}

/// Hard budgets on the command line (`seki search`, `seki bench nb201`).
#[derive(Debug, Clone, Default, Args)]
pub struct ConstraintArgs {
    /// Refuse architectures with more parameters, e.g. 400000, 400k or 0.4M
    /// [config: search.constraints.max_params].
    #[arg(long, value_name = "N", value_parser = seki::eval::cost::parse_count)]
    pub max_params: Option<f64>,
    /// Refuse architectures with more multiply-adds per image, e.g. 50M
    /// [config: search.constraints.max_flops].
    #[arg(long, value_name = "N", value_parser = seki::eval::cost::parse_count)]
    pub max_flops: Option<f64>,
    /// Refuse architectures slower than this at batch 1 on the CPU, in ms
    /// [config: search.constraints.max_latency_ms].
    #[arg(long, value_name = "MS")]
    pub max_latency_ms: Option<f64>,
    /// A Pareto search of two or three objectives, e.g.
    /// accuracy:max,params:min (of accuracy, params, flops, latency)
    /// [config: search.objectives].
    #[arg(long, value_name = "LIST", value_delimiter = ',', value_parser = parse_objective)]
    pub objectives: Option<Vec<seki::eval::Objective>>,
}

fn parse_objective(s: &str) -> Result<seki::eval::Objective, String> {
    seki::eval::Objective::try_from(s.to_string())
}

impl ConstraintArgs {
    /// Put the flags given over `config`'s budgets.
    pub fn apply(&self, config: &mut Config) {
        config.search.constraints =
            config
                .search
                .constraints
                .overridden_by(seki::eval::Constraints {
                    max_params: self.max_params,
                    max_flops: self.max_flops,
                    max_latency_ms: self.max_latency_ms,
                });
        if let Some(o) = &self.objectives {
            config.search.objectives = o.clone();
        }
    }
}
