//! Search strategies behind one interface: each proposes the next
//! architecture and learns from the scores of what was evaluated.
//!
//! A strategy never sees test figures: [`Strategy::observe`] takes only the
//! search score. Its whole state is serialisable, so a session can journal it
//! after every step and resume exactly.

pub mod random;
pub mod rea;

pub use random::RandomSearch;
pub use rea::RegularizedEvolution;

use crate::rng::Rng;
use crate::space::{Arch, Space};
use serde::{Deserialize, Serialize};

/// A strategy failure.
#[derive(Debug, thiserror::Error)]
pub enum StrategyError {
    /// A journalled state could not be restored.
    #[error("cannot restore {strategy} state from the journal: {message}")]
    Restore {
        /// Strategy name.
        strategy: &'static str,
        /// What is wrong.
        message: String,
    },
}

/// An architecture proposed by a strategy, with how it came about.
#[derive(Debug, Clone)]
pub struct Proposal {
    /// The architecture.
    pub arch: Arch,
    /// How it was made (`random`, `mutation`, ...), for the journal.
    pub origin: String,
}

/// A search strategy.
pub trait Strategy {
    /// The strategy's name (`random`, `rea`, ...).
    fn name(&self) -> &'static str;
    /// Propose the next architecture to evaluate.
    fn propose(&mut self, rng: &mut Rng) -> Result<Proposal, StrategyError>;
    /// Learn the search score of an evaluated architecture (`None`: it failed).
    fn observe(&mut self, arch: &Arch, score: Option<f64>);
    /// The strategy's whole state.
    fn state(&self) -> serde_json::Value;
    /// Restore a state saved by [`state`](Self::state).
    fn restore(&mut self, state: &serde_json::Value) -> Result<(), StrategyError>;
}

/// Which strategy to run, with its settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StrategyKind {
    /// Uniform random search.
    Random,
    /// Regularized (aging) evolution.
    Rea,
}

impl std::str::FromStr for StrategyKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "random" => Ok(StrategyKind::Random),
            "rea" => Ok(StrategyKind::Rea),
            other => Err(format!(
                "unknown strategy '{other}'; valid strategies: random, rea"
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
}

impl Default for ReaSettings {
    fn default() -> Self {
        ReaSettings {
            population: 20,
            sample: 5,
        }
    }
}

/// Build a strategy.
pub fn build(kind: StrategyKind, space: Space, rea: ReaSettings) -> Box<dyn Strategy> {
    match kind {
        StrategyKind::Random => Box::new(RandomSearch::new(space)),
        StrategyKind::Rea => Box::new(RegularizedEvolution::new(space, rea)),
    }
}
