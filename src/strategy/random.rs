//! Uniform random search.

use super::{Proposal, Strategy, StrategyError};
use crate::rng::Rng;
use crate::space::{Arch, Space};

/// Samples every architecture uniformly at random; keeps no state.
#[derive(Debug, Clone)]
pub struct RandomSearch {
    space: Space,
}

impl RandomSearch {
    /// Random search over a space.
    pub fn new(space: Space) -> Self {
        RandomSearch { space }
    }
}

impl Strategy for RandomSearch {
    fn name(&self) -> &'static str {
        "random"
    }
    fn propose(&mut self, rng: &mut Rng) -> Result<Proposal, StrategyError> {
        Ok(Proposal {
            arch: self.space.random(rng),
            origin: "random".into(),
        })
    }
    fn observe(&mut self, _arch: &Arch, _score: Option<f64>) {}
    fn state(&self) -> serde_json::Value {
        serde_json::Value::Null
    }
    fn restore(&mut self, _state: &serde_json::Value) -> Result<(), StrategyError> {
        Ok(())
    }
}
