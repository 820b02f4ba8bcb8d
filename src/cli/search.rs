//! `seki search`

use anyhow::{bail, Context, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use seki::agent::{initial_state, load_recording, recording_from_journal, used_before_resume};
use seki::config::{EvaluatorKind, ExecutorKind, KbRecords, Loaded};
use seki::knowledge::{KnowledgeBase, OpenOptions};
use seki::record::Summary;
use seki::session::setup::{self, LlmSource};
use seki::session::{RunDir, Session, Spec};
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
    loaded
        .validate()
        .context("the command-line flags give an invalid setting")?;
    Ok(())
}

fn new_run_dir(runs: &Path, spec: &Spec) -> PathBuf {
    let now = time::OffsetDateTime::now_utc();
    let fmt = time::macros::format_description!("[year][month][day]-[hour][minute][second]");
    let stamp = now
        .format(&fmt)
        .unwrap_or_else(|_| now.unix_timestamp().to_string());
    let base = format!(
        "{stamp}-{}-{}-s{}",
        spec.strategy.name(),
        spec.space,
        spec.seed
    );
    let mut p = runs.join(&base);
    let mut k = 2;
    while p.exists() {
        p = runs.join(format!("{base}-{k}"));
        k += 1;
    }
    p
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
        let run = RunDir::open(dir)?;
        let cfg = Session::snapshot(&run)
            .with_context(|| format!("cannot read the config snapshot of {}", dir.display()))?;
        let events = seki::record::journal::read(&run.journal())?;
        let mut evaluator = setup::evaluator(&cfg)?;
        let llm = match recording {
            Some(replies) => LlmSource::Recorded {
                replies,
                strict: false,
                skip: used_before_resume(&events),
            },
            None => LlmSource::profiles(),
        };
        let kb = open_kb(&cfg, a.kb.as_deref())?;
        let strategy = setup::strategy(&cfg, &run.session_id(), &evaluator.info(), &llm)?;
        let exec = setup::executor(&cfg, run.path(), &run.session_id(), evaluator.as_mut())?;
        let session = Session::resume_with(run, &cfg, strategy, exec)?.interrupt_on(interrupt());
        eprintln!(
            "resuming {} after {} evaluations ({})",
            dir.display(),
            session.steps().len(),
            session.executor()
        );
        let session = attach_kb(session, kb)?;
        (
            run_session(session.on_progress(progress), dir)?,
            dir.clone(),
        )
    } else if let Some(original) = &a.replay {
        let orig = RunDir::open(original)?;
        let mut cfg = Session::snapshot(&orig).with_context(|| {
            format!("cannot read the config snapshot of {}", original.display())
        })?;
        if cfg.search.strategy != StrategyKind::Seki {
            bail!(
                "{} is a {} session; only seki sessions have LLM replies to replay",
                original.display(),
                cfg.search.strategy.name()
            );
        }
        cfg.search.kb_records = KbRecords::None;
        let events = seki::record::journal::read(&orig.journal())?;
        let replies = LlmSource::Recorded {
            replies: recording_from_journal(&events),
            strict: true,
            skip: 0,
        };
        let run_path = a.run_dir.clone().unwrap_or_else(|| {
            let mut name = original.as_os_str().to_owned();
            name.push("-replay");
            PathBuf::from(name)
        });
        let mut evaluator = setup::evaluator(&cfg)?;
        // The replay's records keep the original session's ids.
        let strategy = setup::strategy(&cfg, &orig.session_id(), &evaluator.info(), &replies)?;
        let run = RunDir::create(&run_path)?;
        let snapshot = toml::to_string_pretty(&cfg).context("cannot write the config snapshot")?;
        let mut session = Session::create(
            Spec::from_config(&cfg),
            strategy,
            run,
            &snapshot,
            evaluator.as_mut(),
        )?;
        let start = initial_state(&events);
        if !start.is_none() {
            session.restore_strategy(&start)?;
        }
        let summary = session.on_progress(progress).run()?;
        bar.finish_and_clear();
        let ours = seki::record::journal::read(&run_path.join(seki::session::run_dir::JOURNAL))?;
        let archs = |ev: &[seki::record::Event]| -> Vec<String> {
            ev.iter()
                .filter_map(|e| match e {
                    seki::record::Event::Evaluation(s) => Some(s.arch.clone()),
                    _ => None,
                })
                .collect()
        };
        let (want, got) = (archs(&events), archs(&ours));
        if want != got {
            bail!(
                "the replay diverged from {}: {} of its {} evaluations match, in order, before the first difference",
                original.display(),
                want.iter().zip(&got).take_while(|(a, b)| a == b).count(),
                want.len()
            );
        }
        eprintln!(
            "replay matches {}: the same {} evaluations, in order",
            original.display(),
            got.len()
        );
        (summary, run_path)
    } else {
        let mut loaded = super::load_config(config)?;
        apply_flags(&mut loaded, &a)?;
        let cfg = loaded.config.clone();
        let spec = Spec::from_config(&cfg);
        let run_path = a
            .run_dir
            .clone()
            .unwrap_or_else(|| new_run_dir(&cfg.search.runs_dir, &spec));
        // Everything that can fail on the setup (the evaluator's data, the
        // knowledge base's lock, the LLM's model file) fails before the run
        // directory exists: a session that cannot start leaves nothing behind.
        let mut evaluator = setup::evaluator(&cfg)?;
        let kb = open_kb(&cfg, None)?;
        let id = seki::session::run_dir::new_session_id(&run_path);
        let llm = match recording {
            Some(replies) => LlmSource::Recorded {
                replies,
                strict: false,
                skip: 0,
            },
            None => LlmSource::profiles(),
        };
        let strategy = setup::strategy(&cfg, &id, &evaluator.info(), &llm)?;
        // Slurm is checked here too: before anything is submitted, and
        // before the run directory exists.
        let exec = setup::executor(&cfg, &run_path, &id, evaluator.as_mut())?;
        let run = RunDir::create_with_id(&run_path, &id)?;
        let session = Session::create_with(spec, strategy, run, &loaded.to_toml(), exec)?
            .interrupt_on(interrupt());
        let session = attach_kb(session, kb)?;
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

fn open_kb(
    cfg: &seki::config::Config,
    kb_override: Option<&Path>,
) -> Result<Option<KnowledgeBase>> {
    if cfg.search.kb_records == KbRecords::None {
        return Ok(None);
    }
    let dir = kb_override.unwrap_or(&cfg.kb.dir);
    let kb = KnowledgeBase::open(
        dir,
        OpenOptions {
            skip_bad_lines: cfg.kb.skip_bad_lines,
            write: true,
            create: true,
        },
    )
    .with_context(|| format!("cannot open knowledge base {} for writing (use --kb-records none to search without it)", dir.display()))?;
    Ok(Some(kb))
}

fn attach_kb(session: Session<'_>, kb: Option<KnowledgeBase>) -> Result<Session<'_>> {
    match kb {
        Some(kb) => Ok(session.with_knowledge_base(kb)?),
        None => Ok(session),
    }
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
    if s.reevaluations > 0 {
        println!(
            "repeats    {} re-evaluations with other seeds (counted in the budget)",
            s.reevaluations
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
    match &s.best {
        Some(b) => {
            let how = match &b.uncertainty {
                Some(u) if u.repeats > 1 => format!(", mean of {} evaluations", u.repeats),
                _ => String::new(),
            };
            println!(
                "best       {} (evaluation {}{how})",
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
