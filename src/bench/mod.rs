//! The NAS-Bench-201 benchmark: many seeded sessions of each strategy against
//! the table, reported as the mean ± std of the test accuracy of the
//! architecture each session would return at each checkpoint.
//!
//! With `in_flight` above 1, each session keeps that many evaluations in
//! flight on a virtual clock ([`Simulated`](crate::executor::Simulated)):
//! the strategy proposes before the results of the others are known, as
//! with several workers, and results come back out of order.

use crate::eval::Nb201Table;
use crate::record::{best_step, Step};
use crate::session::{Session, SessionError, Spec};
use crate::strategy::{
    CpuMeter, ProxyCsv, RegularizedEvolution, Strategy, StrategyError, StrategyKind,
};
use serde::Serialize;

pub mod claims;
mod journal;
mod plan;
mod ties;

pub use journal::{fingerprint, SessionLine, SessionLog};
pub use plan::{
    best_within, noise_ties_on, run_nb201, BenchBudget, BenchError, BestWithin, Nb201Bench, Plan,
};
pub use ties::{noise_ties, render_ties, NoiseTies, TieResult};

/// A listener of finished sessions: strategy, seed, the session's figure
/// at its budget, whether it was read back from the journal.
pub type Told<'a> = Box<dyn FnMut(&str, u64, Option<f64>, bool) + 'a>;

/// Where a benchmark's sessions report as they end: its session journal,
/// when it keeps one (sessions found there are read back, not run again),
/// and a listener told each session's strategy, seed, final figure and
/// whether it was read back.
pub struct Progress<'a> {
    log: Option<SessionLog>,
    told: Told<'a>,
}

impl<'a> Progress<'a> {
    /// No journal; `told` hears of each session.
    pub fn new(told: impl FnMut(&str, u64, Option<f64>, bool) + 'a) -> Self {
        Self {
            log: None,
            told: Box::new(told),
        }
    }

    /// No journal, no listener.
    pub fn quiet() -> Self {
        Self::new(|_, _, _, _| {})
    }

    /// Keep the sessions in `log`.
    pub fn with_log(mut self, log: SessionLog) -> Self {
        self.log = Some(log);
        self
    }
}

/// Mean and spread at one checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Checkpoint {
    /// Evaluations done.
    pub evaluations: usize,
    /// Mean 200-epoch test accuracy (%) of the returned architectures.
    pub mean: f64,
    /// Sample standard deviation over seeds.
    pub std: f64,
    /// Standard error of the mean over seeds (`std / sqrt(n)`).
    pub se: f64,
    /// Each seed's figure, in seed order (to pool runs made apart).
    pub values: Vec<f64>,
}

/// One strategy's results.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StrategyResult {
    /// Strategy name.
    pub strategy: String,
    /// Evaluations per session.
    pub budget: usize,
    /// Sessions run.
    pub seeds: usize,
    /// One entry per checkpoint.
    pub checkpoints: Vec<Checkpoint>,
    /// Mean wall-clock seconds per session (LLM calls included).
    pub seconds_per_session: f64,
    /// What a screened strategy ranked its candidates by (e.g. `synflow`);
    /// absent for the others.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub screen: Option<String>,
    /// Mean CPU seconds per session of the zero-cost proxy scores a screened
    /// strategy consulted (as the scores file measured them, each
    /// architecture once); absent for the others. The evaluation budget
    /// counts trained (table) evaluations only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proxy_cpu_seconds_per_session: Option<f64>,
}

/// A strategy `seki bench nb201` compares: a baseline or the agent, or one
/// of them screened by zero-cost proxy scores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BenchStrategy {
    /// A strategy as it runs in `seki search`.
    Plain(StrategyKind),
    /// Regularized evolution with the zero-cost warm-up (and screened
    /// mutations).
    ReaZc,
    /// The SEKI agent choosing among its candidates by the screen.
    SekiZc,
    /// The SEKI agent with the score-blind stand-in for its LLM: the same
    /// prompts, operators and budget, replies drawn at random from what
    /// each constraint allows. What seki gains over it is the model's.
    SekiBlind,
}

impl std::str::FromStr for BenchStrategy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "rea-zc" => Ok(BenchStrategy::ReaZc),
            "seki-zc" => Ok(BenchStrategy::SekiZc),
            "seki-blind" => Ok(BenchStrategy::SekiBlind),
            other => other.parse().map(BenchStrategy::Plain).map_err(|_| {
                format!(
                    "unknown strategy '{other}'; valid strategies: seki, seki-blind, rea, random, rea-zc, seki-zc"
                )
            }),
        }
    }
}

impl BenchStrategy {
    /// The name results are reported under.
    pub fn name(&self) -> &'static str {
        match self {
            BenchStrategy::Plain(k) => k.name(),
            BenchStrategy::ReaZc => "rea-zc",
            BenchStrategy::SekiZc => "seki-zc",
            BenchStrategy::SekiBlind => "seki-blind",
        }
    }

    /// The strategy it runs.
    pub fn kind(&self) -> StrategyKind {
        match self {
            BenchStrategy::Plain(k) => *k,
            BenchStrategy::ReaZc => StrategyKind::Rea,
            BenchStrategy::SekiZc | BenchStrategy::SekiBlind => StrategyKind::Seki,
        }
    }

    /// Whether it needs proxy scores ([`Screening`]).
    pub fn screened(&self) -> bool {
        matches!(self, BenchStrategy::ReaZc | BenchStrategy::SekiZc)
    }
}

/// A warm start: a knowledge base (typically of another dataset) whose best
/// records the strategies evaluate first. The agent also sees its records as
/// labelled context and its insights as priors; regularized evolution gets
/// the same records as its first population, so the gain of the records is
/// told apart from the gain of the model's reading of them.
#[derive(Debug)]
pub struct WarmStart {
    /// The knowledge base (read only).
    pub kb: crate::knowledge::KnowledgeBase,
    /// Its best records evaluated first.
    pub seeds: usize,
}

/// Why a warm knowledge base cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum WarmError {
    /// It could not be read.
    #[error("warm knowledge base {dir}: {source}")]
    Kb {
        /// The folder.
        dir: std::path::PathBuf,
        /// The error.
        #[source]
        source: crate::knowledge::KbError,
    },
    /// It holds no architecture of the benchmark's space.
    #[error("warm knowledge base {dir} holds no {space} architectures{others}")]
    WrongSpace {
        /// The folder.
        dir: std::path::PathBuf,
        /// The benchmark's space.
        space: crate::space::Space,
        /// What it holds instead, in words.
        others: String,
    },
    /// No seeds asked for.
    #[error("--warm-seeds must be 1 or more")]
    NoSeeds,
}

impl WarmStart {
    /// Open the knowledge base in `dir` for a benchmark of `space`; one
    /// without architectures of `space` is refused, naming what it holds.
    pub fn open(
        dir: &std::path::Path,
        space: crate::space::Space,
        seeds: usize,
    ) -> Result<Self, WarmError> {
        if seeds == 0 {
            return Err(WarmError::NoSeeds);
        }
        let kb =
            crate::knowledge::KnowledgeBase::open(dir, Default::default()).map_err(|source| {
                WarmError::Kb {
                    dir: dir.to_path_buf(),
                    source,
                }
            })?;
        let mut spaces: std::collections::BTreeMap<String, usize> = Default::default();
        for e in kb.entries() {
            *spaces.entry(e.record.space.to_string()).or_default() += 1;
        }
        if !spaces.contains_key(&space.to_string()) {
            let others = if spaces.is_empty() {
                " (it is empty)".to_string()
            } else {
                let held: Vec<String> = spaces
                    .iter()
                    .map(|(s, n)| format!("{n} of the {s} space"))
                    .collect();
                format!("; it holds {}", held.join(", "))
            };
            return Err(WarmError::WrongSpace {
                dir: dir.to_path_buf(),
                space,
                others,
            });
        }
        Ok(WarmStart { kb, seeds })
    }

    /// Its best `seeds` records for a session of `space` under `info`, in
    /// the order the agent seeds from them (its own protocol first, best
    /// first), with the origin each is proposed under.
    pub fn best(
        &self,
        space: crate::space::Space,
        info: &crate::knowledge::EvaluatorInfo,
    ) -> Vec<(crate::space::Arch, String)> {
        let pool = crate::agent::SekiAgent::pool_from_kb(&self.kb, space, info, "score");
        let mut seen = std::collections::HashSet::new();
        pool.iter()
            .filter_map(|e| {
                let a = space.parse(&e.arch).ok()?;
                seen.insert(a.hash()).then(|| {
                    (
                        a,
                        format!(
                            "seed: {} from the knowledge base ({} {:.1})",
                            e.id, e.score_label, e.score
                        ),
                    )
                })
            })
            .take(self.seeds)
            .collect()
    }
}

/// The zero-cost screening of `rea-zc` and `seki-zc`.
#[derive(Debug, Clone)]
pub struct Screening {
    /// The proxy scores, checked against the table.
    pub proxies: ProxyCsv,
    /// The proxies ranked by (their mean percentile rank).
    pub screen: Vec<String>,
    /// Random architectures regularized evolution scores at the start; the
    /// best `population` of them are trained first.
    pub warmup: usize,
    /// Children of each tournament winner the screen chooses among (1: off).
    pub screen_mutations: usize,
}

impl Screening {
    /// A fresh screen for one seeded session; its CPU meter joins `meters`
    /// and its name goes to `name`.
    fn fresh(
        &self,
        meters: &mut Vec<CpuMeter>,
        name: &mut String,
    ) -> Result<crate::strategy::ProxyScreen, SessionError> {
        let screen = self
            .proxies
            .screen(&self.screen)
            .map_err(StrategyError::from)?;
        meters.push(screen.meter());
        *name = crate::strategy::Screen::name(&screen);
        Ok(screen)
    }
}

/// The checkpoints reported for a budget: 10, 25, 50, then every 100, and the budget itself.
pub fn checkpoints(budget: usize) -> Vec<usize> {
    let mut v: Vec<usize> = [10, 25, 50].into_iter().filter(|&c| c < budget).collect();
    v.extend((1..).map(|k| k * 100).take_while(|&c| c < budget));
    v.push(budget);
    v
}

/// The test accuracy of the architecture a session returns after `n`
/// evaluations: the one with the best search score among the first `n`.
pub fn returned_test_accuracy(steps: &[Step], n: usize) -> Option<f64> {
    best_step(&steps[..n.min(steps.len())]).and_then(|s| s.result.test_accuracy)
}

fn mean_std(xs: &[f64]) -> (f64, f64) {
    if xs.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let var = if xs.len() > 1 {
        xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)
    } else {
        0.0
    };
    (mean, var.sqrt())
}

/// Makes a fresh strategy for each seeded session.
pub type StrategyFactory<'a> = dyn FnMut(&Spec) -> Result<Box<dyn Strategy>, SessionError> + 'a;

/// Run `seeds` sessions (seeds `first_seed..first_seed + seeds`) of the
/// baseline strategy in `spec` against the table and summarise them.
pub fn run_strategy(
    table: &Nb201Table,
    spec: &Spec,
    seeds: usize,
    first_seed: u64,
    in_flight: usize,
    progress: &mut Progress<'_>,
) -> Result<StrategyResult, SessionError> {
    let mut baseline = |s: &Spec| {
        Ok(crate::strategy::build_with(
            s.strategy,
            s.space,
            s.rea,
            &s.objectives,
        )?)
    };
    run_with(
        table,
        spec,
        seeds,
        first_seed,
        in_flight,
        &mut baseline,
        progress,
    )
}

/// Run `seeds` sessions of the SEKI agent with `models` against the table.
/// Each seed's agent starts from an empty, private pool (no knowledge base),
/// so seeds are independent; prompts only ever see validation scores.
#[allow(clippy::too_many_arguments)]
pub fn run_seki(
    label: &str,
    table: &Nb201Table,
    spec: &Spec,
    cfg: &crate::config::Config,
    models: crate::agent::Models,
    warm: Option<&WarmStart>,
    first_seed: u64,
    seeds: usize,
    in_flight: usize,
    progress: &mut Progress<'_>,
) -> Result<StrategyResult, SessionError> {
    let info = crate::eval::Evaluator::info(table);
    let mut make = |s: &Spec| -> Result<Box<dyn crate::strategy::Strategy>, SessionError> {
        Ok(Box::new(
            bench_agent(&cfg.agent, s.space, &info, &models, warm, s.seed)?
                .with_objectives(s.objectives.clone()),
        ))
    };
    run_named(
        &warm_label(label, warm),
        table,
        spec,
        seeds,
        first_seed,
        in_flight,
        &mut make,
        progress,
    )
}

/// A strategy's label with a warm start marked.
pub fn warm_label(label: &str, warm: Option<&WarmStart>) -> String {
    match warm {
        Some(_) => format!("{label} warm"),
        None => label.to_string(),
    }
}

/// The agent of one seeded bench session, its session id named by the
/// seed: an empty, private pool, or with a warm start the warm knowledge
/// base's records and insights (read only; every seed starts from the same).
fn bench_agent(
    agent: &crate::agent::AgentConfig,
    space: crate::space::Space,
    info: &crate::knowledge::EvaluatorInfo,
    models: &crate::agent::Models,
    warm: Option<&WarmStart>,
    seed: u64,
) -> Result<crate::agent::SekiAgent, SessionError> {
    let mut settings = agent.clone();
    if let Some(w) = warm {
        settings.warm_seeds = w.seeds;
    }
    Ok(crate::agent::build(
        &settings,
        space,
        &format!("bench-s{seed}"),
        info,
        warm.map(|w| &w.kb),
        models.clone(),
    )?)
}

/// Run `seeds` sessions of regularized evolution whose first evaluations
/// are the warm knowledge base's best records (the same the agent seeds
/// from), then evolution as usual.
pub fn run_rea_warm(
    table: &Nb201Table,
    spec: &Spec,
    warm: &WarmStart,
    seeds: usize,
    first_seed: u64,
    in_flight: usize,
    progress: &mut Progress<'_>,
) -> Result<StrategyResult, SessionError> {
    let info = crate::eval::Evaluator::info(table);
    let best = warm.best(spec.space, &info);
    let mut make = |s: &Spec| -> Result<Box<dyn Strategy>, SessionError> {
        Ok(Box::new(
            RegularizedEvolution::new(s.space, s.rea)
                .with_seeds(best.clone())
                .with_objectives(s.objectives.clone()),
        ))
    };
    run_named(
        &warm_label("rea", Some(warm)),
        table,
        spec,
        seeds,
        first_seed,
        in_flight,
        &mut make,
        progress,
    )
}

/// Run `seeds` sessions of regularized evolution with the zero-cost warm-up
/// and screened mutations of `screening` (`rea-zc`) against the table.
pub fn run_rea_zc(
    table: &Nb201Table,
    spec: &Spec,
    screening: &Screening,
    seeds: usize,
    first_seed: u64,
    in_flight: usize,
    progress: &mut Progress<'_>,
) -> Result<StrategyResult, SessionError> {
    let mut meters: Vec<CpuMeter> = Vec::new();
    let mut screen_name = String::new();
    let mut make = |s: &Spec| -> Result<Box<dyn Strategy>, SessionError> {
        let screen = screening.fresh(&mut meters, &mut screen_name)?;
        let rea = crate::strategy::ReaSettings {
            warmup: screening.warmup,
            screen_mutations: screening.screen_mutations,
            ..s.rea
        };
        Ok(Box::new(
            RegularizedEvolution::new(s.space, rea).with_screen(Box::new(screen)),
        ))
    };
    let mut r = run_named(
        BenchStrategy::ReaZc.name(),
        table,
        spec,
        seeds,
        first_seed,
        in_flight,
        &mut make,
        progress,
    )?;
    r.screen = Some(screen_name);
    r.proxy_cpu_seconds_per_session = Some(mean_seconds(&meters));
    Ok(r)
}

/// Run `seeds` sessions of the SEKI agent with `models`, choosing among its
/// candidates by the screen of `screening` (`seki-zc`), against the table;
/// as [`run_seki`] otherwise.
#[allow(clippy::too_many_arguments)]
pub fn run_seki_zc(
    table: &Nb201Table,
    spec: &Spec,
    cfg: &crate::config::Config,
    models: crate::agent::Models,
    screening: &Screening,
    first_seed: u64,
    seeds: usize,
    in_flight: usize,
    progress: &mut Progress<'_>,
) -> Result<StrategyResult, SessionError> {
    let info = crate::eval::Evaluator::info(table);
    let mut meters: Vec<CpuMeter> = Vec::new();
    let mut screen_name = String::new();
    let mut make = |s: &Spec| -> Result<Box<dyn Strategy>, SessionError> {
        let screen = screening.fresh(&mut meters, &mut screen_name)?;
        let agent = bench_agent(&cfg.agent, s.space, &info, &models, None, s.seed)?;
        Ok(Box::new(
            agent
                .with_screen(Box::new(screen))
                .with_screen_warmup(screening.warmup),
        ))
    };
    let mut r = run_named(
        BenchStrategy::SekiZc.name(),
        table,
        spec,
        seeds,
        first_seed,
        in_flight,
        &mut make,
        progress,
    )?;
    r.screen = Some(screen_name);
    r.proxy_cpu_seconds_per_session = Some(mean_seconds(&meters));
    Ok(r)
}

fn mean_seconds(meters: &[CpuMeter]) -> f64 {
    if meters.is_empty() {
        return 0.0;
    }
    meters.iter().map(CpuMeter::seconds).sum::<f64>() / meters.len() as f64
}

/// Like [`run_strategy`], with each session's strategy from `make` (e.g. the
/// LLM-guided agent with a fresh, private knowledge pool); `progress` keeps
/// and hears of each session.
pub fn run_with(
    table: &Nb201Table,
    spec: &Spec,
    seeds: usize,
    first_seed: u64,
    in_flight: usize,
    make: &mut StrategyFactory<'_>,
    progress: &mut Progress<'_>,
) -> Result<StrategyResult, SessionError> {
    run_named(
        spec.strategy.name(),
        table,
        spec,
        seeds,
        first_seed,
        in_flight,
        make,
        progress,
    )
}

/// [`run_with`], the results reported under `label`.
#[allow(clippy::too_many_arguments)]
fn run_named(
    label: &str,
    table: &Nb201Table,
    spec: &Spec,
    seeds: usize,
    first_seed: u64,
    in_flight: usize,
    make: &mut StrategyFactory<'_>,
    progress: &mut Progress<'_>,
) -> Result<StrategyResult, SessionError> {
    let budget = spec.max_evaluations;
    // With contenders, only the architecture the whole session returns (the
    // best by the mean over re-evaluations) is reported.
    let contenders = spec.contenders.count > 0;
    // With rungs too: the best at the highest rung.
    let rungs = spec.rungs.len() > 1;
    let whole = contenders || rungs;
    let marks = if whole {
        vec![budget]
    } else {
        checkpoints(budget)
    };
    let mut per_mark: Vec<Vec<f64>> = vec![Vec::new(); marks.len()];
    // A Pareto search is scored by the hypervolume of its front.
    let pareto = match (&spec.budget, spec.objectives.len() >= 2) {
        (Some(b), true) => Some(true_front(table, b, &spec.objectives, spec.space)?),
        _ => None,
    };
    let mut seconds: Vec<f64> = Vec::new();
    for k in 0..seeds {
        let mut s = spec.clone();
        s.seed = first_seed + k as u64;
        let seed = s.seed;
        if let Some(line) = progress
            .log
            .as_ref()
            .and_then(|l| l.recorded(label, in_flight, seed, &marks))
        {
            for (xs, v) in per_mark.iter_mut().zip(&line.values) {
                xs.extend(*v);
            }
            seconds.push(line.seconds);
            let last = line.values.last().copied().flatten();
            (progress.told)(label, seed, last, true);
            continue;
        }
        let started = std::time::Instant::now();
        for r in &mut s.rungs.rungs {
            // Each seeded session draws its own noise at every rung.
            r.settings.nb201.noise_seed = crate::eval::rung::noise_seed(seed, r.index);
        }
        // With noise, each seeded session draws its own.
        let mut eval = if table.noise_sd() > 0.0 {
            table.clone().with_noise(table.noise_sd(), seed)
        } else {
            table.clone()
        };
        let strategy = make(&s)?;
        let session = if in_flight <= 1 {
            Session::in_memory(s, strategy, &mut eval)
        } else {
            let exec = crate::executor::Simulated::new(&mut eval, in_flight, seed);
            Session::in_memory_with(s, strategy, Box::new(exec))
        };
        let values: Vec<Option<f64>> = if whole {
            let summary = session.run()?;
            vec![summary.best.and_then(|b| b.test_accuracy)]
        } else {
            let steps = session.run_to_steps()?;
            marks
                .iter()
                .map(|&m| match &pareto {
                    Some(p) => Some(p.ratio(&steps[..m.min(steps.len())], &spec.objectives)),
                    None => returned_test_accuracy(&steps, m),
                })
                .collect()
        };
        let took = started.elapsed().as_secs_f64();
        if let Some(log) = progress.log.as_mut() {
            log.record(label, in_flight, seed, &marks, &values, took)?;
        }
        for (xs, v) in per_mark.iter_mut().zip(&values) {
            xs.extend(*v);
        }
        seconds.push(took);
        (progress.told)(label, seed, values.last().copied().flatten(), false);
    }
    Ok(StrategyResult {
        strategy: if in_flight > 1 || whole {
            let mut name = label.to_string();
            if in_flight > 1 {
                name.push_str(&format!(" ×{in_flight}"));
            }
            if rungs {
                name.push_str(&format!(" {} rungs", spec.rungs.len()));
            }
            if contenders {
                name.push_str(&format!(
                    " +{}x{}",
                    spec.contenders.count, spec.contenders.repeats
                ));
            }
            name
        } else {
            label.into()
        },
        budget,
        seeds,
        checkpoints: marks
            .iter()
            .zip(per_mark)
            .map(|(&evaluations, xs)| {
                let (mean, std) = mean_std(&xs);
                Checkpoint {
                    evaluations,
                    mean,
                    std,
                    se: std / (xs.len().max(1) as f64).sqrt(),
                    values: xs,
                }
            })
            .collect(),
        seconds_per_session: seconds.iter().sum::<f64>() / seconds.len().max(1) as f64,
        screen: None,
        proxy_cpu_seconds_per_session: None,
    })
}

/// The table's true Pareto front under a benchmark's objectives (by
/// 200-epoch test accuracy and the cost model's figures for every cell),
/// the reference point and the hypervolume it dominates.
#[derive(Debug, Clone)]
pub struct TrueFront {
    /// The reference point (every coordinate minimised).
    pub reference: Vec<f64>,
    /// The hypervolume of the table's true front.
    pub hypervolume: f64,
    /// The true front's size.
    pub size: usize,
}

impl TrueFront {
    /// The hypervolume, as a percentage of the true front's, of the front
    /// a search returns after `steps`: its non-dominated cells by search
    /// score and cost, placed by their test accuracy.
    pub fn ratio(&self, steps: &[Step], objectives: &[crate::eval::Objective]) -> f64 {
        let front = crate::record::front_of(steps, objectives, &self.reference);
        let pts: Vec<Vec<f64>> = front
            .points
            .iter()
            .filter_map(|p| crate::eval::cost::point(objectives, p.test_accuracy?, Some(&p.cost)))
            .collect();
        100.0 * crate::pareto::hypervolume(&pts, &self.reference) / self.hypervolume.max(1e-300)
    }
}

/// [`TrueFront`] of `table` with `budget`'s cost model (cells over its
/// constraints left out).
pub fn true_front(
    table: &Nb201Table,
    budget: &crate::eval::Budget,
    objectives: &[crate::eval::Objective],
    space: crate::space::Space,
) -> Result<TrueFront, SessionError> {
    let ceiling = budget
        .model
        .ceiling(space)
        .map_err(|e| SessionError::Eval(e.into()))?;
    let reference = crate::eval::cost::reference(objectives, &ceiling);
    let mut pts = Vec::new();
    // Row k is the cell of code k.
    for (code, r) in table.rows().iter().enumerate() {
        let Some(cell) = crate::space::Nb201Cell::from_code(code) else {
            continue;
        };
        let fit = budget.check(&crate::space::Arch::Nb201(cell));
        if fit.refused.is_some() {
            continue;
        }
        if let Some(p) = crate::eval::cost::point(objectives, r.test_200ep, fit.cost.as_ref()) {
            pts.push(p);
        }
    }
    let front: Vec<Vec<f64>> = crate::pareto::front(&pts)
        .into_iter()
        .map(|i| pts[i].clone())
        .collect();
    Ok(TrueFront {
        hypervolume: crate::pareto::hypervolume(&front, &reference),
        size: front.len(),
        reference,
    })
}

/// The results as a text table, strategies side by side.
pub fn render_table(results: &[StrategyResult]) -> String {
    let mut out = String::new();
    out.push_str(&format!("{:>11}", "evaluations"));
    for r in results {
        out.push_str(&format!(
            "  {:>16}",
            format!("{} (n={})", r.strategy, r.seeds)
        ));
    }
    out.push('\n');
    let rows = results.first().map_or(0, |r| r.checkpoints.len());
    for i in 0..rows {
        let evals = results[0].checkpoints[i].evaluations;
        out.push_str(&format!("{evals:>11}"));
        for r in results {
            let c = &r.checkpoints[i];
            out.push_str(&format!("  {:>16}", format!("{:.2} ± {:.2}", c.mean, c.se)));
        }
        out.push('\n');
    }
    // Paired differences against the first strategy (same seeds in the
    // same order), with their standard error over seeds.
    if let Some(base) = results.first() {
        for r in results.iter().skip(1) {
            let mut line = String::new();
            let mut any = false;
            for (c, b) in r.checkpoints.iter().zip(&base.checkpoints) {
                if c.values.len() == b.values.len() && c.values.len() > 1 {
                    let d: Vec<f64> = c.values.iter().zip(&b.values).map(|(x, y)| x - y).collect();
                    let (m, sd) = mean_std(&d);
                    line.push_str(&format!(
                        "  @{}: {m:+.2} ± {:.2}",
                        c.evaluations,
                        sd / (d.len() as f64).sqrt()
                    ));
                    any = true;
                }
            }
            if any {
                out.push_str(&format!(
                    "{:>11}  {} − {}:{line}\n",
                    "paired", r.strategy, base.strategy
                ));
            }
        }
    }
    out.push_str(&format!("{:>11}", "s/session"));
    for r in results {
        out.push_str(&format!(
            "  {:>16}",
            format!("{:.1}", r.seconds_per_session)
        ));
    }
    out.push('\n');
    if results
        .iter()
        .any(|r| r.proxy_cpu_seconds_per_session.is_some())
    {
        out.push_str(&format!("{:>11}", "zc cpu s"));
        for r in results {
            let cell = match (&r.screen, r.proxy_cpu_seconds_per_session) {
                (Some(name), Some(s)) => format!("{s:.1} {name}"),
                (None, Some(s)) => format!("{s:.1}"),
                _ => "-".into(),
            };
            out.push_str(&format!("  {cell:>16}"));
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoint_marks() {
        assert_eq!(checkpoints(100), vec![10, 25, 50, 100]);
        assert_eq!(checkpoints(250), vec![10, 25, 50, 100, 200, 250]);
        assert_eq!(checkpoints(30), vec![10, 25, 30]);
        assert_eq!(checkpoints(10), vec![10]);
    }

    #[test]
    fn ties_make_improved_decisions_more_often_right_under_noise() {
        let table = Nb201Table::load(std::path::Path::new(
            "../shared/benchmarks/nb201/nb201-cifar10.csv",
        ))
        .unwrap();
        let s = NoiseTies {
            noise_sd: 1.0,
            z: vec![0.0, 1.0],
            seeds: 20,
            steps: 40,
        };
        let r = noise_ties(&table, &s);
        assert_eq!(r.len(), 4);
        let precision = |t: &TieResult| t.improved_truly as f64 / t.improved as f64;
        assert_eq!(r[0].ties, 0, "strict comparison has no ties");
        assert!(r[1].ties > 0 && r[1].improved < r[0].improved);
        assert!(precision(&r[1]) > precision(&r[0]), "{r:?}");
        // `higher` moves as the strict rule does: the same final architectures.
        assert_eq!(r[1].final_test_mean, r[0].final_test_mean);
        assert!(render_ties(&s, &r).contains("tie_z"));
    }

    #[test]
    fn bench_strategy_names() {
        for name in ["random", "rea", "seki", "rea-zc", "seki-zc"] {
            let s: BenchStrategy = name.parse().unwrap();
            assert_eq!(s.name(), name);
            assert_eq!(s.screened(), name.ends_with("-zc"));
        }
        assert_eq!(BenchStrategy::SekiZc.kind(), StrategyKind::Seki);
        let e = "zc".parse::<BenchStrategy>().unwrap_err();
        assert!(e.contains("rea-zc, seki-zc"), "{e}");
    }

    #[test]
    fn rea_zc_trains_the_screens_picks_first_and_reports_their_cost() {
        use crate::space::nb201::Nb201Cell;
        let table = Nb201Table::load(std::path::Path::new(
            "../shared/benchmarks/nb201/nb201-cifar10.csv",
        ))
        .unwrap();
        // An oracle "proxy" over every other cell: the 200-epoch test accuracy.
        let mut csv = String::from("index,arch,synflow,seconds,note\n");
        for (code, r) in table.rows().iter().enumerate().step_by(2) {
            let cell = Nb201Cell::from_code(code).unwrap();
            csv.push_str(&format!(
                "{},{},{},0.25,\n",
                r.index,
                cell.to_text(),
                r.test_200ep
            ));
        }
        let proxies = ProxyCsv::parse(std::path::Path::new("zc.csv"), &csv, &table).unwrap();
        let screening = Screening {
            proxies,
            screen: vec!["synflow".into()],
            warmup: 100,
            screen_mutations: 3,
        };
        let mut spec = Spec::from_config(&crate::config::Config::default());
        spec.strategy = StrategyKind::Rea;
        spec.max_evaluations = 30;
        spec.max_seconds = 0.0;
        let zc = run_rea_zc(&table, &spec, &screening, 4, 0, 1, &mut Progress::quiet()).unwrap();
        let plain = run_strategy(&table, &spec, 4, 0, 1, &mut Progress::quiet()).unwrap();
        assert_eq!(zc.strategy, "rea-zc");
        assert_eq!(zc.screen.as_deref(), Some("synflow"));
        // About half of the 100 drawn are in the file, then the screened
        // mutations' children: 0.25 s each.
        let cpu = zc.proxy_cpu_seconds_per_session.unwrap();
        assert!(cpu > 5.0 && cpu < 40.0, "{cpu}");
        assert_eq!(plain.proxy_cpu_seconds_per_session, None);
        // Warm-up picks by the oracle beat random ones at 25 evaluations.
        assert!(
            zc.checkpoints[0].mean > plain.checkpoints[0].mean,
            "{zc:?} {plain:?}"
        );
        let text = render_table(&[plain.clone(), zc.clone()]);
        assert!(
            text.contains("zc cpu s") && text.contains(" synflow"),
            "{text}"
        );
        assert!(!render_table(std::slice::from_ref(&plain)).contains("zc cpu s"));
        let json = serde_json::to_value(&zc).unwrap();
        assert_eq!(json["screen"], "synflow");
        assert!(serde_json::to_value(&plain)
            .unwrap()
            .get("screen")
            .is_none());
    }

    #[test]
    fn mean_and_sample_std() {
        let (m, s) = mean_std(&[1.0, 2.0, 3.0]);
        assert!((m - 2.0).abs() < 1e-12);
        assert!((s - 1.0).abs() < 1e-12);
    }
}
