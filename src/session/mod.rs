//! Sessions: a strategy searching a space through an evaluator under a
//! budget, journalled so that a killed session resumes and ends exactly as an
//! uninterrupted one would.

mod contenders;
mod kb_sync;
mod resume;
mod run;
pub mod run_dir;
mod rungs;
pub mod setup;
#[cfg(test)]
mod tests;

pub use contenders::ContenderSettings;
pub use run_dir::RunDir;

use crate::config::{Config, ConfigError, KbRecords};
use crate::eval::{EvalError, EvalStatus, Evaluator};
use crate::executor::{ExecError, Executor, Inline};
use crate::knowledge::{
    now_rfc3339, ArchRecord, EvaluatorInfo, KbError, KnowledgeBase, Provenance,
};
use crate::record::{
    journal, operators, Best, BudgetSummary, Contender, Event, JournalError, OpenRequests,
    Placement, Proposed, Reevaluation, Step, StepState, Submission, Summary,
};
use crate::rng::Rng;
use crate::space::{Arch, ArchError, Space};
use crate::store::StoreError;
use crate::strategy::{
    self, Context, Observation, ReaSettings, Strategy, StrategyError, StrategyKind,
};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// A session failure (a failed evaluation is not one: it is a result).
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// Run directory or journal I/O.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The journal could not be read.
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// The evaluator could not run at all.
    #[error(transparent)]
    Eval(#[from] EvalError),
    /// The executor could not run evaluations.
    #[error(transparent)]
    Exec(#[from] ExecError),
    /// The user interrupted the session (it can be resumed).
    #[error("interrupted after {evaluations} evaluations ({cancelled} in flight cancelled); continue with `seki search --resume {run_dir}`")]
    Interrupted {
        /// Evaluations journalled.
        evaluations: usize,
        /// Requests cancelled.
        cancelled: usize,
        /// The run directory.
        run_dir: String,
    },
    /// The strategy failed.
    #[error(transparent)]
    Strategy(#[from] StrategyError),
    /// The knowledge base failed.
    #[error(transparent)]
    Kb(#[from] KbError),
    /// The agent could not be set up.
    #[error(transparent)]
    Agent(#[from] crate::agent::AgentError),
    /// An LLM backend could not be set up.
    #[error(transparent)]
    Llm(#[from] crate::llm::LlmError),
    /// The config snapshot is bad.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A journalled architecture does not parse.
    #[error("journal: {0}")]
    Arch(#[from] ArchError),
    /// The journal contradicts the run directory's config.
    #[error("journal {path} does not match its config: {message}")]
    Mismatch {
        /// The journal.
        path: String,
        /// What differs.
        message: String,
    },
}

/// What a session runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Spec {
    /// Search space.
    pub space: Space,
    /// Strategy.
    pub strategy: StrategyKind,
    /// Regularized-evolution settings.
    pub rea: ReaSettings,
    /// Seed.
    pub seed: u64,
    /// Evaluation budget.
    pub max_evaluations: usize,
    /// Wall-clock budget in seconds (0: none).
    pub max_seconds: f64,
    /// Stop after this many consecutive duplicates.
    pub max_consecutive_duplicates: usize,
    /// LLM token budget (0: none).
    pub max_tokens: u64,
    /// LLM cost budget in US dollars (0: none).
    pub max_cost_usd: f64,
    /// Which results go to the knowledge base.
    pub kb_records: KbRecords,
    /// Re-evaluation of contenders.
    pub contenders: ContenderSettings,
    /// Hard budgets checked before anything is evaluated
    /// ([`setup::budget`] builds them from `[search.constraints]`).
    pub budget: Option<crate::eval::Budget>,
    /// A Pareto search's objectives (empty: accuracy alone).
    pub objectives: Vec<crate::eval::Objective>,
    /// Fidelity rungs (one: every evaluation at the evaluator's settings).
    pub rungs: crate::eval::Rungs,
}

impl Spec {
    /// The session settings of a config.
    pub fn from_config(c: &Config) -> Self {
        Spec {
            space: c.search.space,
            strategy: c.search.strategy,
            rea: c.strategy.rea,
            seed: c.search.seed,
            max_evaluations: c.search.max_evaluations,
            max_seconds: c.search.max_seconds,
            max_consecutive_duplicates: c.search.max_consecutive_duplicates.max(1),
            max_tokens: c.search.max_tokens,
            max_cost_usd: c.search.max_cost_usd,
            kb_records: c.search.kb_records,
            contenders: ContenderSettings::from_config(c),
            budget: None,
            objectives: c.search.objectives.clone(),
            rungs: c.rungs(),
        }
    }
}

/// Progress reported after each step.
#[derive(Debug, Clone)]
pub struct Progress {
    /// Evaluations done.
    pub evaluations: usize,
    /// Evaluation budget.
    pub max_evaluations: usize,
    /// Duplicates skipped.
    pub duplicates: usize,
    /// Best score so far.
    pub best_score: Option<f64>,
    /// What the strategy is doing.
    pub stage: String,
}

/// A callback told of progress after each step.
pub type ProgressFn<'e> = Box<dyn FnMut(&Progress) + 'e>;

/// A request in flight (or lost, to submit again).
#[derive(Debug, Clone)]
pub(super) struct Flight {
    arch: Arch,
    hash: String,
    origin: String,
    parent: Option<String>,
    operator: String,
    /// Unix time of the submission.
    submitted: f64,
    job: Option<String>,
}

impl Flight {
    /// The proposal as the journal names it.
    pub(super) fn proposed(&self) -> Proposed {
        Proposed {
            arch: self.arch.to_text(),
            hash: self.hash.clone(),
            origin: self.origin.clone(),
            parent: self.parent.clone(),
            operator: self.operator.clone(),
        }
    }
}

/// A running session.
pub struct Session<'e> {
    spec: Spec,
    id: String,
    strategy: Box<dyn Strategy>,
    exec: Box<dyn Executor + 'e>,
    info: EvaluatorInfo,
    rng: Rng,
    seen: HashMap<String, (usize, Option<f64>)>,
    steps: Vec<Step>,
    reevaluations: Vec<Reevaluation>,
    best: Option<usize>,
    duplicates: usize,
    duplicate_operators: std::collections::BTreeMap<String, usize>,
    consecutive_duplicates: usize,
    elapsed_before: f64,
    started: Instant,
    run: Option<RunDir>,
    kb: Option<KnowledgeBase>,
    on_progress: Option<ProgressFn<'e>>,
    /// Requests in flight, by id.
    in_flight: BTreeMap<String, Flight>,
    /// Hashes of the architectures in flight or lost → their request ids.
    pending: HashMap<String, String>,
    /// Requests to submit again (their job was lost while the session was down).
    lost: VecDeque<(String, Flight)>,
    /// Requests a resumed session found in its journal, with whether it had
    /// cancelled them, to re-attach before anything else.
    recovered: Vec<(String, Flight, bool)>,
    /// Requests made so far (the last request id's number).
    requests: usize,
    cancelled: usize,
    interrupt: Option<Arc<AtomicBool>>,
    /// Why the session stops proposing (an LLM rate limit), if it does.
    halt: Option<String>,
    /// Re-evaluations in flight, by request id (see contenders.rs).
    reevals_in_flight: BTreeMap<String, contenders::ReevalFlight>,
    /// Re-evaluation requests made so far.
    reeval_requests: usize,
    /// Search results that arrived while the session waited for a
    /// re-evaluation; the loop takes them first.
    deferred: Vec<crate::executor::Outcome>,
    /// Hard budgets checked before anything is evaluated, if any.
    budget: Option<crate::eval::Budget>,
    /// Proposals refused as over budget.
    refused: usize,
}

impl<'e> Session<'e> {
    /// A session of a baseline strategy (random, rea) kept in memory only.
    pub fn baseline(spec: Spec, evaluator: &'e mut dyn Evaluator) -> Result<Self, SessionError> {
        let strategy = strategy::build_with(spec.strategy, spec.space, spec.rea, &spec.objectives)?;
        Ok(Session::in_memory(spec, strategy, evaluator))
    }

    /// A session kept in memory only (no run directory), driven by any
    /// strategy, evaluating one architecture at a time with `evaluator`.
    pub fn in_memory(
        spec: Spec,
        strategy: Box<dyn Strategy>,
        evaluator: &'e mut dyn Evaluator,
    ) -> Self {
        Session::in_memory_with(spec, strategy, Box::new(Inline::new(evaluator)))
    }

    /// A session kept in memory only, evaluating through `exec`.
    pub fn in_memory_with(
        spec: Spec,
        strategy: Box<dyn Strategy>,
        exec: Box<dyn Executor + 'e>,
    ) -> Self {
        Session {
            rng: Rng::seed(spec.seed),
            budget: spec.budget.clone(),
            spec,
            id: "in-memory".into(),
            strategy,
            info: exec.info(),
            exec,
            seen: HashMap::new(),
            steps: Vec::new(),
            reevaluations: Vec::new(),
            best: None,
            duplicates: 0,
            duplicate_operators: Default::default(),
            consecutive_duplicates: 0,
            elapsed_before: 0.0,
            started: Instant::now(),
            run: None,
            kb: None,
            on_progress: None,
            in_flight: BTreeMap::new(),
            pending: HashMap::new(),
            lost: VecDeque::new(),
            recovered: Vec::new(),
            requests: 0,
            cancelled: 0,
            interrupt: None,
            halt: None,
            reevals_in_flight: BTreeMap::new(),
            reeval_requests: 0,
            deferred: Vec::new(),
            refused: 0,
        }
    }

    /// The budgets, if any.
    pub fn budget(&self) -> Option<&crate::eval::Budget> {
        self.budget.as_ref()
    }

    /// Proposals refused as over budget so far.
    pub fn refused(&self) -> usize {
        self.refused
    }

    /// Keep the cost a journalled evaluation recorded, so that a resumed
    /// session does not measure it again (latency would differ).
    pub(super) fn remember_cost(&self, step: &Step) {
        if let Some(b) = &self.budget {
            if let Some(c) = crate::eval::Cost::from_metrics(&step.result.metrics) {
                b.model.remember(&step.proposal.arch, c);
            }
        }
    }

    /// Stop, cancelling what is in flight, once `flag` is set (e.g. by a
    /// Ctrl-C handler); the session can then be resumed.
    pub fn interrupt_on(mut self, flag: Arc<AtomicBool>) -> Self {
        self.interrupt = Some(flag);
        self
    }

    pub(super) fn interrupted(&self) -> bool {
        self.interrupt
            .as_ref()
            .is_some_and(|f| f.load(Ordering::SeqCst))
    }

    /// Where evaluations run.
    pub fn executor(&self) -> String {
        self.exec.describe()
    }

    /// Restore the strategy's state (e.g. a replay's recorded starting state).
    pub fn restore_strategy(
        &mut self,
        state: &crate::record::StrategyState,
    ) -> Result<(), SessionError> {
        Ok(self.strategy.restore(state)?)
    }

    /// Call `f` after every step.
    pub fn on_progress(mut self, f: impl FnMut(&Progress) + 'e) -> Self {
        self.on_progress = Some(Box::new(f));
        self
    }

    /// The session id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Evaluations so far, in order.
    pub fn steps(&self) -> &[Step] {
        &self.steps
    }

    /// Repeated evaluations so far, in order.
    pub fn reevaluations(&self) -> &[Reevaluation] {
        &self.reevaluations
    }

    /// The best evaluation so far (by the mean over its evaluations where
    /// it was evaluated more than once).
    pub fn best(&self) -> Option<Best> {
        let step = self.best.and_then(|i| self.steps.get(i))?;
        let mut b = Best::of(step)?;
        let rung = self.top_rung(step.n);
        if let Some((mean, u)) = self.estimate(step) {
            match u {
                Some(u) if u.repeats > 1 => {
                    b.score = mean;
                    b.score_se = Some(u.se);
                    b.uncertainty = Some(u);
                }
                _ if rung > 1 => {
                    b.score = mean;
                    b.score_se = self.score_at(step.n, rung).and_then(|x| x.1);
                }
                _ => {}
            }
        }
        if self.spec.rungs.len() > 1 {
            b.rung = Some(rung);
            if rung > 1 {
                // The test accuracy of the evaluations at its rung.
                let tests: Vec<f64> = self
                    .reevaluations
                    .iter()
                    .filter(|r| r.of == step.n && r.rung == rung)
                    .filter_map(|r| r.result.test_accuracy)
                    .collect();
                if !tests.is_empty() {
                    b.test_accuracy = Some(crate::stats::mean_sd(&tests).0);
                }
            }
        }
        Some(b)
    }

    pub(super) fn elapsed(&self) -> f64 {
        self.elapsed_before + self.started.elapsed().as_secs_f64()
    }

    pub(super) fn record_step(&mut self, step: Step) {
        let best_rung = self
            .best
            .and_then(|i| self.steps.get(i))
            .map_or(1, |b| self.top_rung(b.n));
        let better = best_rung <= 1
            && match (
                step.result.score,
                self.best
                    .and_then(|i| self.steps.get(i))
                    .and_then(|b| self.estimate(b))
                    .map(|(m, _)| m),
            ) {
                (Some(s), Some(b)) => s > b,
                (Some(_), None) => true,
                _ => false,
            };
        self.steps.push(step);
        if better {
            self.best = Some(self.steps.len() - 1);
        }
    }

    pub(super) fn write_best(&self) -> Result<(), SessionError> {
        if let (Some(run), Some(best)) = (&self.run, self.best()) {
            run.write_json(run_dir::BEST, &best)?;
        }
        Ok(())
    }

    pub(super) fn state(&self) -> StepState {
        StepState {
            elapsed: self.elapsed(),
            rng: self.rng.clone(),
            strategy_state: self.strategy.state(),
        }
    }

    pub(super) fn journal(&self, event: &Event) -> Result<(), SessionError> {
        if let Some(run) = &self.run {
            journal::append(&run.journal(), event)?;
        }
        Ok(())
    }

    pub(super) fn report(&mut self, stage: &str) {
        let stage = if self.in_flight.len() > 1 {
            format!("{stage}; {} in flight", self.in_flight.len())
        } else {
            stage.to_string()
        };
        let p = Progress {
            evaluations: self.steps.len(),
            max_evaluations: self.spec.max_evaluations,
            duplicates: self.duplicates,
            best_score: self.best().map(|b| b.score),
            stage,
        };
        if let Some(f) = self.on_progress.as_mut() {
            f(&p);
        }
    }
}
