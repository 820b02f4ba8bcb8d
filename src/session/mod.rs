//! Sessions: a strategy searching a space through an evaluator under a
//! budget, journalled so that a killed session resumes and ends exactly as an
//! uninterrupted one would.

pub mod journal;
pub mod run_dir;

pub use journal::{Event, JournalError, Step, StepState};
pub use run_dir::RunDir;

use crate::config::{Config, ConfigError, KbRecords};
use crate::eval::{EvalError, EvalStatus, Evaluator};
use crate::knowledge::store::StoreError;
use crate::knowledge::{now_rfc3339, ArchRecord, KbError, KnowledgeBase, Provenance};
use crate::rng::Rng;
use crate::space::{ArchError, Space};
use crate::strategy::{
    self, Context, Observation, ReaSettings, Strategy, StrategyError, StrategyKind,
};
use serde::Serialize;
use std::collections::HashMap;
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
    /// The strategy failed.
    #[error(transparent)]
    Strategy(#[from] StrategyError),
    /// The knowledge base failed.
    #[error(transparent)]
    Kb(#[from] KbError),
    /// The agent could not be set up.
    #[error(transparent)]
    Agent(#[from] crate::agent::AgentError),
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

/// The best architecture so far, as `best.json` holds it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Best {
    /// The architecture in its space's text form.
    pub arch: String,
    /// Its search score (validation accuracy, %).
    pub score: f64,
    /// Its canonical hash.
    pub hash: String,
    /// The evaluation that found it.
    pub evaluation: usize,
    /// Its test accuracy (%), for reporting; strategies never see it.
    pub test_accuracy: Option<f64>,
    /// Its other metrics.
    pub metrics: std::collections::BTreeMap<String, f64>,
}

impl Best {
    fn of(step: &Step) -> Option<Best> {
        Some(Best {
            arch: step.arch.clone(),
            score: step.result.score?,
            hash: step.hash.clone(),
            evaluation: step.n,
            test_accuracy: step.result.test_accuracy,
            metrics: step.result.metrics.clone(),
        })
    }
}

/// The best evaluation among `steps`: the highest search score, the earliest
/// on ties (as a session keeps its best).
pub fn best_step(steps: &[Step]) -> Option<&Step> {
    steps
        .iter()
        .filter_map(|s| s.result.score.map(|v| (v, s)))
        .max_by(|(a, sa), (b, sb)| a.total_cmp(b).then(sb.n.cmp(&sa.n)))
        .map(|(_, s)| s)
}

/// How a session ended.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// Session id.
    pub session: String,
    /// Space.
    pub space: String,
    /// Strategy.
    pub strategy: String,
    /// Seed.
    pub seed: u64,
    /// Evaluations done.
    pub evaluations: usize,
    /// Proposals that repeated an evaluated architecture (for the agent, also
    /// those it re-asked the LLM for).
    pub duplicates: usize,
    /// Evaluations whose status was not `ok`.
    pub failed: usize,
    /// The best architecture.
    pub best: Option<Best>,
    /// Why the session stopped.
    pub stop_reason: String,
    /// Seconds, over all runs of the session.
    pub elapsed_seconds: f64,
    /// The strategy's own counters (for the LLM-guided strategy: replies
    /// parsed first time, after repair, fallbacks, tokens and cost per stage).
    #[serde(flatten)]
    pub strategy_stats: serde_json::Map<String, serde_json::Value>,
}

/// A callback told of progress after each step.
pub type ProgressFn<'e> = Box<dyn FnMut(&Progress) + 'e>;

/// A running session.
pub struct Session<'e> {
    spec: Spec,
    id: String,
    strategy: Box<dyn Strategy>,
    evaluator: &'e mut dyn Evaluator,
    rng: Rng,
    seen: HashMap<String, (usize, Option<f64>)>,
    steps: Vec<Step>,
    best: Option<usize>,
    duplicates: usize,
    consecutive_duplicates: usize,
    elapsed_before: f64,
    started: Instant,
    run: Option<RunDir>,
    kb: Option<KnowledgeBase>,
    on_progress: Option<ProgressFn<'e>>,
}

impl<'e> Session<'e> {
    /// A session of a baseline strategy (random, rea) kept in memory only.
    pub fn baseline(spec: Spec, evaluator: &'e mut dyn Evaluator) -> Result<Self, SessionError> {
        let strategy = strategy::build(spec.strategy, spec.space, spec.rea)?;
        Ok(Session::in_memory(spec, strategy, evaluator))
    }

    /// A session kept in memory only (no run directory), driven by any strategy.
    pub fn in_memory(
        spec: Spec,
        strategy: Box<dyn Strategy>,
        evaluator: &'e mut dyn Evaluator,
    ) -> Self {
        Session {
            rng: Rng::seed(spec.seed),
            spec,
            id: "in-memory".into(),
            strategy,
            evaluator,
            seen: HashMap::new(),
            steps: Vec::new(),
            best: None,
            duplicates: 0,
            consecutive_duplicates: 0,
            elapsed_before: 0.0,
            started: Instant::now(),
            run: None,
            kb: None,
            on_progress: None,
        }
    }

    /// Start a new session in a fresh run directory, snapshotting `config_toml`.
    pub fn create(
        spec: Spec,
        strategy: Box<dyn Strategy>,
        run: RunDir,
        config_toml: &str,
        evaluator: &'e mut dyn Evaluator,
    ) -> Result<Self, SessionError> {
        run.write_text(run_dir::CONFIG, config_toml)?;
        let mut s = Session::in_memory(spec, strategy, evaluator);
        s.id = run.session_id();
        journal::append(
            &run.journal(),
            &Event::Start {
                session: s.id.clone(),
                space: s.spec.space.to_string(),
                strategy: s.spec.strategy.name().into(),
                seed: s.spec.seed,
                version: env!("CARGO_PKG_VERSION").into(),
                initial_state: s.strategy.state(),
                time: now_rfc3339(),
            },
        )?;
        s.run = Some(run);
        Ok(s)
    }

    /// The config a run directory's session was started with.
    pub fn snapshot(run: &RunDir) -> Result<Config, SessionError> {
        Ok(Config::load(Some(&run.config()))?.config)
    }

    /// Continue a session from its run directory, with the config it was
    /// started with ([`Session::snapshot`]) and a fresh strategy of the same
    /// kind (its state is restored from the journal).
    pub fn resume(
        run: RunDir,
        config: &Config,
        strategy: Box<dyn Strategy>,
        evaluator: &'e mut dyn Evaluator,
    ) -> Result<Self, SessionError> {
        let spec = Spec::from_config(config);
        let events = journal::read(&run.journal())?;
        let mismatch = |message: String| SessionError::Mismatch {
            path: run.journal().display().to_string(),
            message,
        };
        if let Some(Event::Start {
            space,
            strategy,
            seed,
            ..
        }) = events.first()
        {
            if *space != spec.space.name()
                || *strategy != spec.strategy.name()
                || *seed != spec.seed
            {
                return Err(mismatch(format!(
                    "journal says space {space}, strategy {strategy}, seed {seed}; config says {}, {}, {}",
                    spec.space, spec.strategy.name(), spec.seed
                )));
            }
        }
        let mut s = Session::in_memory(spec, strategy, evaluator);
        s.id = run.session_id();
        if let Some(Event::Start { initial_state, .. }) = events.first() {
            if !initial_state.is_null() {
                s.strategy.restore(initial_state)?;
            }
        }
        let mut last_state: Option<StepState> = None;
        for ev in events {
            match ev {
                Event::Evaluation(step) => {
                    let step = *step;
                    if step.n != s.steps.len() + 1 {
                        return Err(mismatch(format!(
                            "evaluation {} follows evaluation {}",
                            step.n,
                            s.steps.len()
                        )));
                    }
                    s.spec.space.parse(&step.arch)?;
                    s.seen
                        .insert(step.hash.clone(), (step.n, step.result.score));
                    s.consecutive_duplicates = 0;
                    last_state = Some(step.state.clone());
                    s.record_step(step);
                }
                Event::Duplicate { state, .. } => {
                    s.duplicates += 1;
                    s.consecutive_duplicates += 1;
                    last_state = Some(state);
                }
                _ => {}
            }
        }
        if let Some(state) = last_state {
            s.rng = state.rng;
            s.strategy.restore(&state.strategy_state)?;
            s.elapsed_before = state.elapsed;
        }
        journal::append(
            &run.journal(),
            &Event::Resume {
                evaluations: s.steps.len(),
                time: now_rfc3339(),
            },
        )?;
        s.run = Some(run);
        s.write_best()?;
        Ok(s)
    }

    /// Record results in a knowledge base (the session holds its writer lock).
    /// On resume, records the journal holds but the base lacks are added.
    pub fn with_knowledge_base(mut self, kb: KnowledgeBase) -> Result<Self, SessionError> {
        self.kb = Some(kb);
        let mut best: Option<f64> = None;
        let mut pending = Vec::new();
        for step in &self.steps {
            if self.wants_record(step, best) {
                pending.push(self.kb_record(step));
            }
            if let Some(sc) = step.result.score {
                best = Some(best.map_or(sc, |b: f64| b.max(sc)));
            }
        }
        if let Some(kb) = self.kb.as_mut() {
            let missing: Vec<ArchRecord> = pending
                .into_iter()
                .filter(|r| kb.get(&r.id).is_none())
                .collect();
            kb.add(missing)?;
        }
        Ok(self)
    }

    /// Restore the strategy's state (e.g. a replay's recorded starting state).
    pub fn restore_strategy(&mut self, state: &serde_json::Value) -> Result<(), SessionError> {
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

    /// The best evaluation so far.
    pub fn best(&self) -> Option<Best> {
        self.best.and_then(|i| self.steps.get(i)).and_then(Best::of)
    }

    fn elapsed(&self) -> f64 {
        self.elapsed_before + self.started.elapsed().as_secs_f64()
    }

    fn record_step(&mut self, step: Step) {
        let better = match (
            step.result.score,
            self.best
                .and_then(|i| self.steps.get(i))
                .and_then(|b| b.result.score),
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

    fn wants_record(&self, step: &Step, best_before: Option<f64>) -> bool {
        let Some(score) = step.result.score else {
            return false;
        };
        match self.spec.kb_records {
            KbRecords::All => true,
            KbRecords::Improvements => best_before.is_none_or(|b| score > b),
            KbRecords::None => false,
        }
    }

    fn kb_record(&self, step: &Step) -> ArchRecord {
        let mut metrics = step.result.metrics.clone();
        if let Some(t) = step.result.test_accuracy {
            metrics.insert("test_accuracy".into(), t);
        }
        ArchRecord {
            id: self.record_id(step.n),
            name: None,
            space: self.spec.space,
            arch: step.arch.clone(),
            score: step.result.score,
            metrics,
            evaluator: self.evaluator.info(),
            provenance: Provenance {
                source: "session".into(),
                session: Some(self.id.clone()),
                strategy: Some(self.spec.strategy.name().into()),
                ..Default::default()
            },
            created: now_rfc3339(),
        }
    }

    fn write_best(&self) -> Result<(), SessionError> {
        if let (Some(run), Some(best)) = (&self.run, self.best()) {
            run.write_json(run_dir::BEST, &best)?;
        }
        Ok(())
    }

    fn state(&self) -> StepState {
        StepState {
            elapsed: self.elapsed(),
            rng: self.rng.clone(),
            strategy_state: self.strategy.state(),
        }
    }

    fn journal(&self, event: &Event) -> Result<(), SessionError> {
        if let Some(run) = &self.run {
            journal::append(&run.journal(), event)?;
        }
        Ok(())
    }

    fn report(&mut self, stage: &str) {
        let p = Progress {
            evaluations: self.steps.len(),
            max_evaluations: self.spec.max_evaluations,
            duplicates: self.duplicates,
            best_score: self.best().map(|b| b.score),
            stage: stage.to_string(),
        };
        if let Some(f) = self.on_progress.as_mut() {
            f(&p);
        }
    }

    /// Why the session should stop now, if it should.
    fn stop_reason(&self) -> Option<String> {
        if self.steps.len() >= self.spec.max_evaluations {
            return Some(format!("budget: {} evaluations", self.spec.max_evaluations));
        }
        if self.spec.max_seconds > 0.0 && self.elapsed() >= self.spec.max_seconds {
            return Some(format!("budget: {} seconds", self.spec.max_seconds));
        }
        let stats = self.strategy.stats();
        if self.spec.max_tokens > 0 {
            let used = stats.get("tokens").and_then(|v| v.as_u64()).unwrap_or(0);
            if used >= self.spec.max_tokens {
                return Some(format!(
                    "budget: {} LLM tokens ({used} used)",
                    self.spec.max_tokens
                ));
            }
        }
        if self.spec.max_cost_usd > 0.0 {
            let used = stats
                .get("cost_usd")
                .and_then(|v| v.as_f64())
                .unwrap_or(0.0);
            if used >= self.spec.max_cost_usd {
                return Some(format!(
                    "budget: ${} of LLM cost (${used:.4} used)",
                    self.spec.max_cost_usd
                ));
            }
        }
        if self.consecutive_duplicates >= self.spec.max_consecutive_duplicates {
            return Some(format!(
                "no new architectures: the last {} proposals were all evaluated before",
                self.consecutive_duplicates
            ));
        }
        None
    }

    /// One step: propose, and evaluate unless already evaluated.
    pub fn step(&mut self) -> Result<(), SessionError> {
        let seen = &self.seen;
        let is_seen = |h: &str| seen.contains_key(h);
        let proposal = self
            .strategy
            .propose(&mut Context::new(&mut self.rng, &is_seen));
        for detail in self.strategy.drain_events() {
            self.journal(&Event::Strategy { detail })?;
        }
        let proposal = proposal?;
        self.store_insights()?;
        let hash = proposal.arch.hash();
        if let Some(&(of, score)) = self.seen.get(&hash) {
            self.duplicates += 1;
            self.consecutive_duplicates += 1;
            let params = self
                .steps
                .get(of.wrapping_sub(1))
                .and_then(|s| s.result.metrics.get("params").copied());
            self.strategy.observe(&Observation {
                arch: &proposal.arch,
                score,
                evaluation: None,
                params,
            });
            tracing::debug!(%hash, of, "duplicate proposal skipped");
            self.journal(&Event::Duplicate {
                arch: proposal.arch.to_text(),
                hash,
                origin: proposal.origin,
                of,
                state: self.state(),
            })?;
            return Ok(());
        }
        self.consecutive_duplicates = 0;
        let t = Instant::now();
        let result = self.evaluator.evaluate(&proposal.arch)?;
        let eval_seconds = t.elapsed().as_secs_f64();
        let score = match result.status {
            EvalStatus::Ok => result.score,
            _ => None,
        };
        let n = self.steps.len() + 1;
        self.strategy.observe(&Observation {
            arch: &proposal.arch,
            score,
            evaluation: Some(n),
            params: result.metrics.get("params").copied(),
        });
        self.seen.insert(hash.clone(), (n, score));
        let best_before = self.best().map(|b| b.score);
        let step = Step {
            n,
            arch: proposal.arch.to_text(),
            hash,
            origin: proposal.origin,
            result,
            eval_seconds,
            state: self.state(),
        };
        self.journal(&Event::Evaluation(Box::new(step.clone())))?;
        match score {
            Some(s) => tracing::debug!(n, score = s, arch = %step.arch, "evaluated"),
            None => {
                tracing::warn!(n, status = step.result.status.name(), arch = %step.arch, "evaluation failed")
            }
        }
        let record = if self.kb.is_some() && self.wants_record(&step, best_before) {
            Some(self.kb_record(&step))
        } else {
            None
        };
        self.record_step(step);
        if self.best.is_some_and(|i| i + 1 == n) {
            self.write_best()?;
            if let Some(b) = self.best() {
                tracing::info!(n, score = b.score, arch = %b.arch, "new best");
            }
        }
        if let (Some(kb), Some(r)) = (self.kb.as_mut(), record) {
            kb.add(vec![r])?;
        }
        Ok(())
    }

    /// The KB record id of this session's evaluation `n`.
    pub fn record_id(&self, n: usize) -> String {
        format!("{}-{n:04}", self.id)
    }

    /// Move the strategy's new insights into the knowledge base, first adding
    /// the session records they cite as evidence.
    fn store_insights(&mut self) -> Result<(), SessionError> {
        let insights = self.strategy.drain_insights();
        if insights.is_empty() {
            return Ok(());
        }
        let Some(kb) = self.kb.as_ref() else {
            return Ok(());
        };
        let mut missing = Vec::new();
        for ins in &insights {
            for id in &ins.evidence {
                if kb.get(id).is_some() || missing.iter().any(|r: &ArchRecord| r.id == *id) {
                    continue;
                }
                if let Some(step) = self.steps.iter().find(|s| self.record_id(s.n) == *id) {
                    missing.push(self.kb_record(step));
                }
            }
        }
        let fresh: Vec<_> = insights
            .into_iter()
            .filter(|i| kb.insights().iter().all(|x| x.id != i.id))
            .collect();
        if let Some(kb) = self.kb.as_mut() {
            kb.add(missing)?;
            kb.add_insights(fresh)?;
        }
        Ok(())
    }

    /// Run until the budget ends; writes `summary.json` and returns the summary.
    pub fn run(mut self) -> Result<Summary, SessionError> {
        self.report("start");
        let reason = loop {
            if let Some(r) = self.stop_reason() {
                break r;
            }
            match self.step() {
                Ok(()) => {}
                // Not a failure: the journal is whole and `--resume`
                // continues once the server lets us in again.
                Err(SessionError::Strategy(e)) if e.is_rate_limited() => {
                    break format!("LLM rate limit: {e}");
                }
                Err(e) => return Err(e),
            }
            let stage = self.strategy.stage();
            self.report(&stage);
        };
        self.journal(&Event::End {
            reason: reason.clone(),
            time: now_rfc3339(),
        })?;
        let summary = Summary {
            session: self.id.clone(),
            space: self.spec.space.to_string(),
            strategy: self.spec.strategy.name().into(),
            seed: self.spec.seed,
            evaluations: self.steps.len(),
            duplicates: self.duplicates
                + self
                    .strategy
                    .stats()
                    .get("llm_duplicates")
                    .and_then(|v| v.as_u64())
                    .unwrap_or(0) as usize,
            failed: self
                .steps
                .iter()
                .filter(|s| s.result.status != EvalStatus::Ok)
                .count(),
            best: self.best(),
            stop_reason: reason,
            elapsed_seconds: self.elapsed(),
            strategy_stats: self.strategy.stats(),
        };
        if let Some(run) = &self.run {
            run.write_json(run_dir::SUMMARY, &summary)?;
        }
        Ok(summary)
    }

    /// Run until the budget ends and return every evaluation (for benchmarks).
    pub fn run_to_steps(mut self) -> Result<Vec<Step>, SessionError> {
        while self.stop_reason().is_none() {
            self.step()?;
        }
        Ok(self.steps)
    }
}
