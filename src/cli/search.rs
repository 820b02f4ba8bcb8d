//! `seki search`

use anyhow::{bail, Context, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use seki::agent::load_recording;
use seki::config::{EvaluatorKind, ExecutorKind, KbRecords, Loaded};
use seki::record::Summary;
use seki::session::setup;
use seki::session::{Session, Spec};
use seki::space::Space;
use seki::strategy::StrategyKind;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

pub const EXAMPLES: &str = "\
Examples:
  seki search --strategy rea --budget 200 --seed 1
  seki search --workers 4                      four evaluations at once on this machine
  seki search --executor slurm --workers 16    sixteen Slurm jobs queued or running at once
  seki search --resume runs/RUN                after a crash, a kill or Ctrl-C

Slurm with GPUs (config.toml; the run directory must be on a filesystem the
compute nodes share, job logs stay in RUN_DIR/evals/<request>/):
  [search]
  space = \"darts\"
  evaluator = \"candle\"
  [evaluator.candle]
  device = \"cuda\"               # a seki built with --features cuda
  [executor]
  kind = \"slurm\"
  workers = 8                    # jobs queued or running at once
  [executor.slurm]
  partition = \"gpu\"
  time = \"02:00:00\"
  cpus_per_task = 8
  mem = \"32G\"
  gpus = \"1\"                     # or gres = \"gpu:a100:1\"
  setup = [\"module load cuda\"]

Local GPUs: [executor] devices = [\"0\", \"1\"] runs one worker per GPU.";

#[derive(Debug, Args)]
pub struct SearchArgs {
    /// Continue the session in this run directory (after a crash or kill);
    /// its own config snapshot is used.
    #[arg(long, value_name = "RUN_DIR", conflicts_with_all = ["space", "strategy", "evaluator", "seed", "run_dir", "table", "executor", "workers"])]
    pub resume: Option<PathBuf>,
    /// Search space [config: search.space].
    #[arg(long)]
    pub space: Option<Space>,
    /// Strategy: seki, rea or random [config: search.strategy].
    #[arg(long)]
    pub strategy: Option<StrategyKind>,
    /// Evaluator [config: search.evaluator].
    #[arg(long)]
    pub evaluator: Option<EvaluatorKind>,
    /// Where evaluations run: local (this machine) or slurm (one batch job
    /// each) [config: executor.kind].
    #[arg(long, value_name = "KIND")]
    pub executor: Option<ExecutorKind>,
    /// Evaluations in flight at once: local worker processes, or Slurm jobs
    /// [config: executor.workers].
    #[arg(long, value_name = "N")]
    pub workers: Option<usize>,
    /// NAS-Bench-201 table CSV [config: evaluator.nb201.table].
    #[arg(long, value_name = "PATH")]
    pub table: Option<PathBuf>,
    /// Evaluation budget [config: search.max_evaluations].
    #[arg(long, value_name = "N")]
    pub budget: Option<usize>,
    /// Wall-clock budget in seconds, 0 for none [config: search.max_seconds].
    #[arg(long, value_name = "SECONDS")]
    pub max_seconds: Option<f64>,
    /// LLM token budget, 0 for none [config: search.max_tokens].
    #[arg(long, value_name = "N")]
    pub max_tokens: Option<u64>,
    /// LLM cost budget in US dollars, 0 for none [config: search.max_cost_usd].
    #[arg(long, value_name = "USD")]
    pub max_cost: Option<f64>,
    /// Seed [config: search.seed].
    #[arg(long)]
    pub seed: Option<u64>,
    /// Run directory [default: a new folder under search.runs_dir].
    #[arg(long, value_name = "DIR")]
    pub run_dir: Option<PathBuf>,
    /// Knowledge-base folder [config: kb.dir].
    #[arg(long, value_name = "DIR")]
    pub kb: Option<PathBuf>,
    /// Which results enter the knowledge base: all, improvements, none [config: search.kb_records].
    #[arg(long, value_name = "WHICH", value_parser = parse_kb_records)]
    pub kb_records: Option<KbRecords>,
    /// Re-run the seki session in RUN_DIR from its recorded LLM replies,
    /// without calling any LLM, into a new run directory (--run-dir, default
    /// RUN_DIR-replay), and check that it evaluates the same architectures.
    #[arg(long, value_name = "RUN_DIR", conflicts_with_all = ["resume", "space", "strategy", "evaluator", "seed", "table"])]
    pub replay: Option<PathBuf>,
    /// Answer the agent's LLM calls from a recording (JSON Lines of
    /// `{"text": ...}` or full recorded replies) instead of the configured LLM.
    #[arg(long, value_name = "FILE")]
    pub llm_replay: Option<PathBuf>,
    #[command(flatten)]
    pub constraints: super::ConstraintArgs,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
}

fn parse_kb_records(s: &str) -> Result<KbRecords, String> {
    match s {
        "all" => Ok(KbRecords::All),
        "improvements" => Ok(KbRecords::Improvements),
        "none" => Ok(KbRecords::None),
        o => Err(format!("'{o}': expected all, improvements or none")),
    }
}

fn apply_flags(loaded: &mut Loaded, a: &SearchArgs) -> Result<()> {
    let c = &mut loaded.config;
    if let Some(v) = a.space {
        c.search.space = v;
    }
    if let Some(v) = a.strategy {
        c.search.strategy = v;
    }
    if let Some(v) = a.evaluator {
        c.search.evaluator = v;
    }
    if let Some(v) = &a.table {
        c.evaluator.nb201.table = v.clone();
    }
    if let Some(v) = a.executor {
        c.executor.kind = v;
    }
    if let Some(v) = a.workers {
        c.executor.workers = v;
    }
    if let Some(v) = a.budget {
        c.search.max_evaluations = v;
    }
    if let Some(v) = a.max_seconds {
        c.search.max_seconds = v;
    }
    if let Some(v) = a.seed {
        c.search.seed = v;
    }
    if let Some(v) = a.max_tokens {
        c.search.max_tokens = v;
    }
    if let Some(v) = a.max_cost {
        c.search.max_cost_usd = v;
    }
    if let Some(v) = &a.kb {
        c.kb.dir = v.clone();
    }
    if let Some(v) = a.kb_records {
        c.search.kb_records = v;
    }
    a.constraints.apply(c);
    loaded
        .validate()
        .context("the command-line flags give an invalid setting")?;
    Ok(())
}

pub fn run(config: Option<&Path>, a: SearchArgs, quiet: bool) -> Result<()> {
    let bar = if quiet || a.json {
        ProgressBar::hidden()
    } else {
        let b = ProgressBar::new(0);
        b.set_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} evals  {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        b
    };
    let progress = |p: &seki::session::Progress| {
        bar.set_length(p.max_evaluations as u64);
        bar.set_position(p.evaluations as u64);
        let best = p.best_score.map_or("-".to_string(), |b| format!("{b:.2}"));
        bar.set_message(format!("best {best}  dup {}  [{}]", p.duplicates, p.stage));
    };
    let recording = match &a.llm_replay {
        Some(f) => Some(
            load_recording(f)
                .with_context(|| format!("cannot read LLM recording {}", f.display()))?,
        ),
        None => None,
    };

    let (summary, run_path) = if let Some(dir) = &a.resume {
        let resumed = setup::resume(dir, a.kb.as_deref(), recording)?;
        let session = resumed.session.interrupt_on(interrupt());
        eprintln!(
            "resuming {} after {} evaluations ({})",
            dir.display(),
            session.steps().len(),
            session.executor()
        );
        warn_provenance(&resumed.provenance, dir, "the session continues: a different input is a warning, not an error, but its results may differ from an uninterrupted run's");
        (
            run_session(session.on_progress(progress), dir)?,
            dir.clone(),
        )
    } else if let Some(original) = &a.replay {
        let replay = setup::replay(original, a.run_dir.as_deref())?;
        warn_provenance(
            &replay.provenance,
            original,
            "the replay goes on; it may diverge",
        );
        let summary = replay.session.on_progress(progress).run()?;
        bar.finish_and_clear();
        let n = replay.check.verify()?;
        eprintln!(
            "replay matches {}: the same {n} evaluations, in order",
            original.display()
        );
        (summary, replay.run_dir)
    } else {
        let mut loaded = super::load_config(config)?;
        apply_flags(&mut loaded, &a)?;
        let run_path = a.run_dir.clone().unwrap_or_else(|| {
            setup::default_run_dir(
                &loaded.config.search.runs_dir,
                &Spec::from_config(&loaded.config),
            )
        });
        let session = setup::fresh(&loaded, &run_path, recording)?.interrupt_on(interrupt());
        (
            run_session(session.on_progress(progress), &run_path)?,
            run_path,
        )
    };
    bar.finish_and_clear();
    // (A session whose every evaluation failed has nothing to chart.)
    let report = if summary.best.is_some() {
        Some(super::write_report(std::slice::from_ref(&run_path), None)?)
    } else {
        None
    };
    print_summary(&summary, &run_path, a.json)?;
    if let (Some(r), false) = (report, a.json) {
        println!("report     {}", r.markdown.display());
        println!("html       {}", r.html.display());
    }
    Ok(())
}

/// Say how a resumed or replayed session's inputs differ from those its run
/// directory `dir` recorded; `then`: what happens next.
fn warn_provenance(check: &setup::Check, dir: &Path, then: &str) {
    match check {
        setup::Check::Same => {}
        setup::Check::NotRecorded => eprintln!(
            "note: {} has no {} (an older seki made it): its inputs are not checked",
            dir.display(),
            setup::provenance::PROVENANCE
        ),
        setup::Check::Differs(items) => {
            eprintln!(
                "warning: what this run uses differs from what {} recorded in {} (old -> new):",
                dir.display(),
                setup::provenance::PROVENANCE
            );
            for d in items {
                eprintln!("  {d}");
            }
            eprintln!("  ({then})");
        }
    }
}

/// A flag set by the first Ctrl-C (SIGINT) or SIGTERM: the session then
/// cancels what is in flight and stops, resumable. A second signal ends the
/// process at once.
fn interrupt() -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    let set = flag.clone();
    std::thread::spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        rt.block_on(async move {
            use tokio::signal::unix::{signal, SignalKind};
            let (Ok(mut int), Ok(mut term)) = (
                signal(SignalKind::interrupt()),
                signal(SignalKind::terminate()),
            ) else {
                return;
            };
            loop {
                tokio::select! {
                    _ = int.recv() => {}
                    _ = term.recv() => {}
                }
                if set.swap(true, Ordering::SeqCst) {
                    std::process::exit(130);
                }
                eprintln!("\ninterrupted: cancelling the evaluations in flight (interrupt again to quit at once)");
            }
        });
    });
    flag
}

/// Run a session; a failure (a full disk, a read-only folder, an LLM that
/// cannot be reached) says how to continue once its cause is fixed.
fn run_session(session: Session<'_>, dir: &Path) -> Result<Summary> {
    session.run().with_context(|| {
        format!(
            "the session stopped; its journal is intact: once the cause is fixed, continue it with `seki search --resume {}`",
            dir.display()
        )
    })
}

fn print_summary(s: &Summary, run: &Path, json: bool) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(s)?);
        return Ok(());
    }
    println!("session    {}", s.session);
    println!("run dir    {}", run.display());
    println!("stopped    {}", s.stop_reason);
    println!(
        "evals      {} ({} duplicates skipped{}, {} failed)",
        s.evaluations,
        s.duplicates,
        match s.strategy_stats.llm_duplicates {
            0 => String::new(),
            n => format!(", {n} repeated LLM replies asked again"),
        },
        s.failed
    );
    println!("executor   {}", s.executor);
    if let Some(b) = &s.budget {
        println!(
            "budget     {} on {}; {} proposals over it refused",
            b.constraints.describe(),
            b.measured_on,
            b.refused
        );
    }
    if let Some(f) = &s.front {
        println!(
            "front      {} non-dominated of {} ({}); hypervolume {:.4} of the reference box {:?}",
            f.points.len(),
            s.evaluations,
            f.objectives.join(", "),
            f.hypervolume,
            f.reference
        );
        for p in &f.points {
            println!(
                "           {}  {}  (evaluation {})",
                seki::stats::with_se(p.score, p.score_se),
                p.cost.describe(),
                p.evaluation
            );
        }
    }
    if s.reevaluations > 0 {
        println!(
            "repeats    {} re-evaluations{} (counted in the budget)",
            s.reevaluations,
            if s.rungs.is_some() {
                ": promotions to higher rungs, and repeats with other seeds"
            } else {
                " with other seeds"
            }
        );
    }
    for (i, c) in s.contenders.iter().enumerate() {
        let se = c.uncertainty.as_ref().map(|u| u.se);
        println!(
            "{}  {} mean of {} (evaluation {}; first {})",
            if i == 0 { "contenders" } else { "          " },
            seki::stats::with_se(c.mean, se),
            c.uncertainty.as_ref().map_or(1, |u| u.repeats),
            c.evaluation,
            seki::stats::round(c.first_score, se),
        );
    }
    if let Some(n) = &s.contenders_note {
        println!("note       {n}");
    }
    if let Some(r) = &s.rungs {
        for g in &r.rungs {
            println!(
                "{}  {}: {} architectures, {} evaluations, {:.1} s each ({})",
                if g.rung == 1 {
                    "rungs     "
                } else {
                    "          "
                },
                g.rung,
                g.architectures,
                g.evaluations,
                g.mean_seconds,
                g.settings
            );
        }
    }
    if let Some(c) = &s.against_seed {
        println!("seed       {}", c.text);
    }
    match &s.best {
        Some(b) => {
            let how = match &b.uncertainty {
                Some(u) if u.repeats > 1 => format!(", mean of {} evaluations", u.repeats),
                _ => String::new(),
            };
            let rung = b.rung.map_or_else(String::new, |r| format!(", rung {r}"));
            println!(
                "best       {} (evaluation {}{how}{rung})",
                seki::stats::with_se(b.score, b.score_se),
                b.evaluation
            );
            if b.score_se.is_some() {
                println!("           ± is one standard error: the validation set's size, and the spread over seeds where repeated");
            }
            if let Some(t) = b.test_accuracy {
                println!("test       {t:.2} (reported only; never seen by the search)");
            }
            println!("arch       {}", b.arch);
        }
        None => bail!("the session found no architecture that evaluated successfully"),
    }
    Ok(())
}
