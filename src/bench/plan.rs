//! `seki bench nb201` as one call: the table, the proxy scores, the warm
//! start and the LLM models built from a [`Plan`] and the config, each
//! strategy run in turn.

use super::{
    run_rea_warm, run_rea_zc, run_seki, run_seki_zc, run_strategy, BenchStrategy, NoiseTies,
    Progress, Screening, SessionLog, StrategyResult, TieResult, WarmError, WarmStart,
};
use crate::config::{Config, ConfigError};
use crate::eval::nb201_table::{display_dataset, TableError};
use crate::eval::{Budget, Nb201Table};
use crate::session::setup::{self, LlmSource};
use crate::session::{SessionError, Spec};
use crate::strategy::{ProxyCsv, ScreenError, StrategyKind};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Why `seki bench` could not run.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// Screened strategies asked for without proxy scores.
    #[error("--strategy {0} needs zero-cost proxy scores: give them with --proxies FILE (a CSV written by `seki proxy zc --out FILE`)")]
    NeedsProxies(String),
    /// The table could not be read.
    #[error(transparent)]
    Table(#[from] TableError),
    /// The proxy scores could not be read, or lack a proxy screened by.
    #[error(transparent)]
    Screen(#[from] ScreenError),
    /// The warm knowledge base cannot be used.
    #[error(transparent)]
    Warm(#[from] WarmError),
    /// A session failed (its models, its strategy or its evaluations).
    #[error(transparent)]
    Session(#[from] SessionError),
    /// The session journal could not be read.
    #[error(transparent)]
    Journal(#[from] crate::store::StoreError),
    /// The settings could not be written down for their fingerprint.
    #[error("the benchmark's settings could not be serialized: {0}")]
    Settings(String),
}

/// What `seki bench nb201` runs, beside the config's settings (budget,
/// seeds, table, noise, contenders).
#[derive(Debug, Clone)]
pub struct Plan {
    /// Strategies compared, in order.
    pub strategies: Vec<BenchStrategy>,
    /// Evaluations in flight in each session (each strategy runs once per
    /// entry; 0 counts as 1).
    pub in_flight: Vec<usize>,
    /// Seed of the first session; the others follow it.
    pub first_seed: u64,
    /// LLM profile of the seki strategies (`None`: the config's).
    pub llm: Option<String>,
    /// Zero-cost proxy scores (a `seki proxy zc --out` CSV) of the screened
    /// strategies.
    pub proxies: Option<PathBuf>,
    /// Proxies the screened strategies rank by.
    pub screen: Vec<String>,
    /// rea-zc: random architectures scored by the screen at the start.
    pub warmup: usize,
    /// rea-zc: children of each tournament winner the screen chooses among
    /// (0 counts as 1).
    pub screen_mutations: usize,
    /// A warm knowledge base whose best records are evaluated first.
    pub warm_kb: Option<PathBuf>,
    /// With `warm_kb`: how many of its best records.
    pub warm_seeds: usize,
    /// The session journal: each finished session appended to this JSON
    /// Lines file; sessions already in it (same settings) are read back
    /// instead of run again.
    pub sessions: Option<PathBuf>,
}

impl Plan {
    /// The fingerprint of everything that decides a session's figures under
    /// `cfg` but its strategy, seed and evaluations in flight (the journal's
    /// keys): the whole configuration (but the number of seeds) and the
    /// benchmark's options.
    pub fn settings_fingerprint(&self, cfg: &Config) -> Result<String, BenchError> {
        let mut c = cfg.clone();
        c.bench.seeds = 0;
        let config = serde_json::to_value(&c).map_err(|e| BenchError::Settings(e.to_string()))?;
        Ok(super::fingerprint(&serde_json::json!({
            "config": config,
            "llm": self.llm,
            "proxies": self.proxies,
            "screen": self.screen,
            "warmup": self.warmup,
            "screen_mutations": self.screen_mutations,
            "warm_kb": self.warm_kb,
            "warm_seeds": self.warm_seeds,
        })))
    }
}

/// The table's best cell within a benchmark's budget.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct BestWithin {
    /// The cell.
    pub arch: String,
    /// Its 200-epoch test accuracy (%).
    pub test_accuracy: f64,
    /// Its cost.
    pub cost: Option<crate::eval::Cost>,
    /// Its rank in the whole table by test accuracy (1: the table's best).
    pub rank: usize,
}

/// A benchmark's hard budgets.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct BenchBudget {
    /// The budgets in words.
    pub constraints: String,
    /// The table's best cell within them.
    pub best_within: Option<BestWithin>,
}

/// The results of [`run_nb201`].
#[derive(Debug, Clone)]
pub struct Nb201Bench {
    /// The table's dataset as people write it (e.g. `CIFAR-10`).
    pub dataset: String,
    /// The best 200-epoch test accuracy in the table (%).
    pub best_test: f64,
    /// The hard budgets the sessions ran under, when any.
    pub budget: Option<BenchBudget>,
    /// One entry per strategy and in-flight count, in the plan's order.
    pub results: Vec<StrategyResult>,
}

/// Run the benchmark `plan` names under `cfg` (its space and evaluator
/// NAS-Bench-201, its budget and seeds `cfg.bench`'s): the table (with
/// `cfg`'s noise), the proxy scores checked against it, the warm start and
/// the LLM models are built here; `told(strategy, seed, the session's
/// figure at its budget, whether it was read back from the journal)` after
/// each session.
pub fn run_nb201(
    cfg: &Config,
    plan: &Plan,
    told: impl FnMut(&str, u64, Option<f64>, bool),
) -> Result<Nb201Bench, BenchError> {
    let screened: Vec<&str> = plan
        .strategies
        .iter()
        .filter(|s| s.screened())
        .map(BenchStrategy::name)
        .collect();
    if !screened.is_empty() && plan.proxies.is_none() {
        return Err(BenchError::NeedsProxies(screened.join(" and ")));
    }
    let table = Nb201Table::load(&cfg.evaluator.nb201.table)?
        .with_noise(cfg.evaluator.nb201.noise_sd, cfg.evaluator.nb201.noise_seed);
    let screening = match &plan.proxies {
        Some(path) => {
            let proxies = ProxyCsv::load(path, &table)?;
            // Refuse a proxy the file lacks now, not after other strategies ran.
            proxies.screen(&plan.screen)?;
            Some(Screening {
                proxies,
                screen: plan.screen.clone(),
                warmup: plan.warmup,
                screen_mutations: plan.screen_mutations.max(1),
            })
        }
        None => None,
    };
    let warm = match &plan.warm_kb {
        Some(dir) => Some(WarmStart::open(
            dir,
            crate::space::Space::Nb201,
            plan.warm_seeds,
        )?),
        None => None,
    };
    let warm = warm.as_ref();
    let budget = setup::budget(cfg, &|key, message| ConfigError::Invalid {
        path: "the benchmark's settings".into(),
        line: String::new(),
        key: key.to_string(),
        message,
    })?;
    let within = match &budget {
        Some(b) => best_within(&table, b),
        None => None,
    };
    let seeds = cfg.bench.seeds;
    let first_seed = plan.first_seed;
    let mut progress = Progress::new(told);
    if let Some(path) = &plan.sessions {
        let log = SessionLog::open(path, &plan.settings_fingerprint(cfg)?)?;
        progress = progress.with_log(log);
    }
    let progress = &mut progress;
    let mut results = Vec::new();
    for &which in &plan.strategies {
        for &n in &plan.in_flight {
            let in_flight = n.max(1);
            let kind = which.kind();
            let mut spec = Spec::from_config(cfg);
            spec.budget = budget.clone();
            spec.strategy = kind;
            spec.max_evaluations = cfg.bench.budget;
            spec.max_seconds = 0.0;
            let r = match (which, kind, &screening, warm) {
                (BenchStrategy::ReaZc, _, Some(s), _) => {
                    run_rea_zc(&table, &spec, s, seeds, first_seed, in_flight, progress)?
                }
                (BenchStrategy::ReaZc | BenchStrategy::SekiZc, _, None, _) => {
                    // Refused above; kept for the types.
                    return Err(BenchError::NeedsProxies(which.name().to_string()));
                }
                (_, StrategyKind::Rea, _, Some(w)) => {
                    run_rea_warm(&table, &spec, w, seeds, first_seed, in_flight, progress)?
                }
                (_, k, _, _) if k != StrategyKind::Seki => {
                    run_strategy(&table, &spec, seeds, first_seed, in_flight, progress)?
                }
                _ => {
                    let models = if which == BenchStrategy::SekiBlind {
                        crate::agent::Models::same(Arc::new(crate::llm::blind::BlindModel::new(0)))
                    } else {
                        setup::models(
                            cfg,
                            &LlmSource::Profiles {
                                profile: plan.llm.clone(),
                            },
                        )?
                    };
                    let label = which.name();
                    match (which, &screening) {
                        (BenchStrategy::SekiZc, Some(s)) => run_seki_zc(
                            &table, &spec, cfg, models, s, first_seed, seeds, in_flight, progress,
                        )?,
                        _ => run_seki(
                            label, &table, &spec, cfg, models, warm, first_seed, seeds, in_flight,
                            progress,
                        )?,
                    }
                }
            };
            results.push(r);
        }
    }
    Ok(Nb201Bench {
        dataset: display_dataset(table.dataset()),
        best_test: table.best_test(),
        budget: budget
            .filter(|b| !b.constraints.is_empty())
            .map(|b| BenchBudget {
                constraints: b.constraints.describe(),
                best_within: within,
            }),
        results,
    })
}

/// The table's best cell (by 200-epoch test accuracy) within `budget`: the
/// cells are checked best first until one fits.
pub fn best_within(table: &Nb201Table, budget: &Budget) -> Option<BestWithin> {
    // Row k is the cell of code k.
    let mut rows: Vec<(usize, &crate::eval::nb201_table::Row)> =
        table.rows().iter().enumerate().collect();
    rows.sort_by(|a, b| b.1.test_200ep.total_cmp(&a.1.test_200ep));
    for (i, (code, r)) in rows.iter().enumerate() {
        let Some(cell) = crate::space::Nb201Cell::from_code(*code) else {
            continue;
        };
        let arch = crate::space::Arch::Nb201(cell);
        let fit = budget.check(&arch);
        if fit.refused.is_none() {
            return Some(BestWithin {
                arch: arch.to_text(),
                test_accuracy: r.test_200ep,
                cost: fit.cost,
                rank: i + 1,
            });
        }
    }
    None
}

/// [`noise_ties`](super::noise_ties) on the NAS-Bench-201 table at `table`.
pub fn noise_ties_on(table: &Path, s: &NoiseTies) -> Result<Vec<TieResult>, BenchError> {
    let table = Nb201Table::load(table)?;
    Ok(super::noise_ties(&table, s))
}
