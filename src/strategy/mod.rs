//! Search strategies behind one interface: each proposes the next
//! architecture and learns from the scores of what was evaluated.
//!
//! A strategy never sees test figures: [`Strategy::observe`] takes only the
//! search score. Its whole state is serialisable, so a session can journal it
//! after every step and resume exactly.

pub mod live_screen;
pub mod proxy_csv;
pub mod random;
pub mod rea;
pub mod screen;

pub use live_screen::LiveScreen;
pub use proxy_csv::{CpuMeter, ProxyCsv, ProxyScreen};
pub use random::RandomSearch;
pub use rea::RegularizedEvolution;
pub use screen::{pick_best, Screen, ScreenError, ScreenSettings};

use crate::eval::Budget;
pub use crate::record::StrategyStats;
use crate::record::{AgentEvent, StrategyState};
use crate::rng::Rng;
use crate::space::{Arch, Space};
use serde::{Deserialize, Serialize};

/// A strategy failure.
#[derive(Debug, thiserror::Error)]
pub enum StrategyError {
    /// The `seki` strategy was asked for without language models.
    #[error("the seki strategy needs an LLM: build it with seki::agent::SekiAgent::new")]
    NeedsLlm,
    /// The LLM failed in a way retries did not mend.
    #[error("LLM call failed in stage {stage}: {source}")]
    Llm {
        /// The agent stage.
        stage: String,
        /// The backend's error.
        #[source]
        source: crate::llm::LlmError,
    },
    /// A prompt template failed to render.
    #[error(transparent)]
    Prompt(#[from] crate::prompt::PromptError),
    /// A screen could not score the candidates.
    #[error(transparent)]
    Screen(#[from] ScreenError),
    /// A journalled state could not be restored.
    #[error("cannot restore {strategy} state from the journal: {message}")]
    Restore {
        /// Strategy name.
        strategy: &'static str,
        /// What is wrong.
        message: String,
    },
}

impl StrategyError {
    /// Whether the strategy's LLM is rate limiting it: the session stops
    /// cleanly with the reason instead of failing.
    pub fn is_rate_limited(&self) -> bool {
        matches!(self, StrategyError::Llm { source, .. } if source.is_rate_limited())
    }
}

/// An architecture proposed by a strategy, with how it came about.
#[derive(Debug, Clone)]
pub struct Proposal {
    /// The architecture.
    pub arch: Arch,
    /// How it was made, in words, for the journal.
    pub origin: String,
    /// The operator that made it (`random`, `mutation`, `self-evolution`,
    /// `knowledge-inspiration`, `crossover`, ...): summaries and reports
    /// count proposals, duplicates and score changes per operator.
    pub operator: String,
    /// The canonical hash of the architecture it was made from (its primary
    /// parent), when it has one; the report draws the lineage from it.
    pub parent: Option<String>,
}

impl Proposal {
    /// A proposal with no parent (random, seeded); its operator is its
    /// origin until [`by`](Self::by) names one.
    pub fn new(arch: Arch, origin: impl Into<String>) -> Self {
        let origin = origin.into();
        Proposal {
            arch,
            operator: origin.clone(),
            origin,
            parent: None,
        }
    }

    /// A proposal made from `parent`.
    pub fn from_parent(arch: Arch, origin: impl Into<String>, parent: &Arch) -> Self {
        Proposal {
            parent: Some(parent.hash()),
            ..Proposal::new(arch, origin)
        }
    }

    /// Name the operator that made it.
    pub fn by(mut self, operator: &str) -> Self {
        self.operator = operator.to_string();
        self
    }
}

/// Random draws (or mutations) tried for one within the session's budgets
/// before the last is proposed anyway (the session then refuses it).
pub const BUDGET_TRIES: usize = 200;

/// What a strategy may consult while proposing.
pub struct Context<'a> {
    /// The session's random stream (journalled; use no other randomness).
    pub rng: &'a mut Rng,
    seen: &'a dyn Fn(&str) -> bool,
    budget: Option<&'a Budget>,
    costs: Option<&'a Budget>,
}

impl<'a> Context<'a> {
    /// A context over a random stream and a test for evaluated hashes.
    pub fn new(rng: &'a mut Rng, seen: &'a dyn Fn(&str) -> bool) -> Self {
        Context {
            rng,
            seen,
            budget: None,
            costs: None,
        }
    }

    /// The same, with the session's hard budgets (`[search.constraints]`)
    /// and cost model (which a Pareto search has without budgets too).
    pub fn with_budget(mut self, budget: Option<&'a Budget>) -> Self {
        self.costs = budget;
        self.budget = budget.filter(|b| !b.constraints.is_empty());
        self
    }

    /// Whether an architecture (by canonical hash) was evaluated already.
    pub fn is_seen(&self, arch: &Arch) -> bool {
        (self.seen)(&arch.hash())
    }

    /// Whether an architecture is within the session's budgets (always,
    /// without budgets).
    pub fn fits(&self, arch: &Arch) -> bool {
        self.budget.is_none_or(|b| b.fits(arch))
    }

    /// Whether an architecture is worth proposing: not evaluated yet and
    /// within the budgets.
    pub fn admits(&self, arch: &Arch) -> bool {
        !self.is_seen(arch) && self.fits(arch)
    }

    /// The session's budgets, if it has any.
    pub fn budget(&self) -> Option<&'a Budget> {
        self.budget
    }

    /// The session's cost model with its budgets (perhaps none): what a
    /// Pareto search places its architectures by. `None` in a search of
    /// accuracy alone without budgets.
    pub fn costs(&self) -> Option<&'a Budget> {
        self.costs
    }

    /// A random architecture of `space` within the budgets: one draw
    /// without budgets (the stream advances exactly as it always did), up
    /// to [`BUDGET_TRIES`] with them.
    pub fn random_within(&mut self, space: Space) -> Arch {
        let mut a = space.random(self.rng);
        if self.budget.is_some() {
            for _ in 1..BUDGET_TRIES {
                if self.fits(&a) {
                    break;
                }
                a = space.random(self.rng);
            }
        }
        a
    }

    /// A mutation of `parent` within the budgets: one mutation without
    /// budgets, up to [`BUDGET_TRIES`] with them.
    pub fn mutate_within(&mut self, parent: &Arch) -> Arch {
        let mut a = parent.mutate(self.rng);
        if self.budget.is_some() {
            for _ in 1..BUDGET_TRIES {
                if self.fits(&a) {
                    break;
                }
                a = parent.mutate(self.rng);
            }
        }
        a
    }
}

/// The outcome of a proposal, as a strategy may see it (never test figures).
#[derive(Debug, Clone)]
pub struct Observation<'a> {
    /// The architecture.
    pub arch: &'a Arch,
    /// Its search score (validation accuracy, %); `None` when it failed.
    pub score: Option<f64>,
    /// The evaluation number; `None` for a duplicate answered from an earlier evaluation.
    pub evaluation: Option<usize>,
    /// Its parameter count, when the evaluator knows it.
    pub params: Option<f64>,
    /// Why it was refused without an evaluation (over a budget), if it was.
    pub refused: Option<&'a str>,
    /// Its cost, when the session measures costs (budgets, objectives).
    pub cost: Option<crate::eval::Cost>,
}

/// A search strategy.
pub trait Strategy {
    /// The strategy's name (`random`, `rea`, ...).
    fn name(&self) -> &'static str;
    /// Propose the next architecture to evaluate.
    fn propose(&mut self, ctx: &mut Context<'_>) -> Result<Proposal, StrategyError>;
    /// Learn the outcome of a proposal.
    fn observe(&mut self, obs: &Observation<'_>);
    /// The strategy's whole state.
    fn state(&self) -> StrategyState;
    /// Restore a state saved by [`state`](Self::state).
    fn restore(&mut self, state: &StrategyState) -> Result<(), StrategyError>;
    /// What happened inside the last proposal (e.g. LLM exchanges), for the journal.
    fn drain_events(&mut self) -> Vec<AgentEvent> {
        Vec::new()
    }
    /// Insights distilled since the last call, for the knowledge base.
    fn drain_insights(&mut self) -> Vec<crate::knowledge::Insight> {
        Vec::new()
    }
    /// Every insight the strategy holds now, as its state has them (a
    /// resumed session brings the knowledge base up to date with its own:
    /// changes drained just before a kill never reached it).
    fn insights(&self) -> Vec<crate::knowledge::Insight> {
        Vec::new()
    }
    /// Counters for the session's budgets and summary.
    fn stats(&self) -> StrategyStats {
        StrategyStats::default()
    }
    /// What the strategy is doing now, for progress displays.
    fn stage(&self) -> String {
        self.name().to_string()
    }
}

/// Which strategy to run, with its settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StrategyKind {
    /// Uniform random search.
    Random,
    /// Regularized (aging) evolution.
    Rea,
    /// SEKI: LLM-guided self-evolution and knowledge inspiration.
    Seki,
}

impl std::str::FromStr for StrategyKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "random" => Ok(StrategyKind::Random),
            "rea" => Ok(StrategyKind::Rea),
            "seki" => Ok(StrategyKind::Seki),
            other => Err(format!(
                "unknown strategy '{other}'; valid strategies: seki, rea, random"
            )),
        }
    }
}

impl StrategyKind {
    /// The strategy's name.
    pub fn name(&self) -> &'static str {
        match self {
            StrategyKind::Random => "random",
            StrategyKind::Rea => "rea",
            StrategyKind::Seki => "seki",
        }
    }
}

/// Settings of regularized evolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReaSettings {
    /// Population size.
    pub population: usize,
    /// Tournament sample size.
    pub sample: usize,
    /// Zero-cost warm-up: with a screen, this many random architectures are
    /// scored by it at the start and the best `population` of them are
    /// trained first (0: off). Not a key of `[strategy.rea]`: a session
    /// takes it from `search.screen.warmup`, `seki bench` from `--warmup`.
    #[serde(skip)]
    pub warmup: usize,
    /// With a screen, mutated children made of each tournament winner; the
    /// one the screen ranks best is trained (1: off).
    #[serde(default = "one")]
    pub screen_mutations: usize,
}

fn one() -> usize {
    1
}

impl Default for ReaSettings {
    fn default() -> Self {
        ReaSettings {
            population: 20,
            sample: 5,
            warmup: 0,
            screen_mutations: 1,
        }
    }
}

/// Build a baseline strategy. The LLM-guided `seki` strategy needs language
/// models and is built by [`crate::agent::SekiAgent::new`] instead; asking
/// for it here gives random search's place to an error.
pub fn build(
    kind: StrategyKind,
    space: Space,
    rea: ReaSettings,
) -> Result<Box<dyn Strategy>, StrategyError> {
    build_with(kind, space, rea, &[])
}

/// [`build`] for a Pareto search of `objectives` (two or three; fewer:
/// the score alone): regularized evolution ranks its tournaments by
/// non-dominated rank and crowding; random search draws as ever.
pub fn build_with(
    kind: StrategyKind,
    space: Space,
    rea: ReaSettings,
    objectives: &[crate::eval::Objective],
) -> Result<Box<dyn Strategy>, StrategyError> {
    match kind {
        StrategyKind::Random => Ok(Box::new(RandomSearch::new(space))),
        StrategyKind::Rea => Ok(Box::new(
            RegularizedEvolution::new(space, rea).with_objectives(objectives.to_vec()),
        )),
        StrategyKind::Seki => Err(StrategyError::NeedsLlm),
    }
}
