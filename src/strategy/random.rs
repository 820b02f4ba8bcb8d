//! Uniform random search.

use super::{Context, Observation, Proposal, Strategy, StrategyError};
use crate::space::Space;

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
    fn propose(&mut self, ctx: &mut Context<'_>) -> Result<Proposal, StrategyError> {
        Ok(Proposal::new(ctx.random_within(self.space), "random"))
    }
    fn observe(&mut self, _obs: &Observation<'_>) {}
    fn state(&self) -> crate::record::StrategyState {
        crate::record::StrategyState::none()
    }
    fn restore(&mut self, _state: &crate::record::StrategyState) -> Result<(), StrategyError> {
        Ok(())
    }
}
