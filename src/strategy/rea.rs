//! Regularized evolution (aging evolution; Real et al., AAAI 2019).
//!
//! Until the population is full, architectures are sampled at random. Then
//! each step draws `sample` members at random, mutates the best of them once,
//! and the child joins the population while the oldest member leaves.

use super::{Context, Observation, Proposal, ReaSettings, Strategy, StrategyError};
use crate::space::{Arch, Space};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// Aging evolution over a search space.
#[derive(Debug, Clone)]
pub struct RegularizedEvolution {
    space: Space,
    settings: ReaSettings,
    /// Members, oldest first: (architecture, search score).
    population: VecDeque<(Arch, f64)>,
}

#[derive(Serialize, Deserialize)]
struct SavedState {
    population: Vec<(String, f64)>,
}

impl RegularizedEvolution {
    /// Aging evolution with the given population and sample sizes (each at least 1).
    pub fn new(space: Space, settings: ReaSettings) -> Self {
        let settings = ReaSettings {
            population: settings.population.max(1),
            sample: settings.sample.max(1),
        };
        RegularizedEvolution {
            space,
            settings,
            population: VecDeque::new(),
        }
    }

    /// The current population, oldest first.
    pub fn population(&self) -> impl Iterator<Item = &(Arch, f64)> {
        self.population.iter()
    }
}

impl Strategy for RegularizedEvolution {
    fn name(&self) -> &'static str {
        "rea"
    }

    fn propose(&mut self, ctx: &mut Context<'_>) -> Result<Proposal, StrategyError> {
        let rng = &mut *ctx.rng;
        if self.population.len() < self.settings.population {
            return Ok(
                Proposal::new(self.space.random(rng), "random (filling the population)")
                    .by("random"),
            );
        }
        let picks = rng.sample_indices(self.population.len(), self.settings.sample);
        let parent = picks
            .iter()
            .filter_map(|&i| self.population.get(i))
            .max_by(|a, b| a.1.total_cmp(&b.1));
        match parent {
            Some((p, score)) => Ok(Proposal::from_parent(
                p.mutate(rng),
                format!("mutation of {} (score {score:.2})", p.hash()),
                p,
            )
            .by("mutation")),
            None => Ok(Proposal::new(self.space.random(rng), "random")),
        }
    }

    fn observe(&mut self, obs: &Observation<'_>) {
        if let Some(s) = obs.score.filter(|s| s.is_finite()) {
            self.population.push_back((obs.arch.clone(), s));
            while self.population.len() > self.settings.population {
                self.population.pop_front();
            }
        }
    }

    fn state(&self) -> serde_json::Value {
        let saved = SavedState {
            population: self
                .population
                .iter()
                .map(|(a, s)| (a.to_text(), *s))
                .collect(),
        };
        serde_json::to_value(saved).unwrap_or(serde_json::Value::Null)
    }

    fn restore(&mut self, state: &serde_json::Value) -> Result<(), StrategyError> {
        let err = |message: String| StrategyError::Restore {
            strategy: "rea",
            message,
        };
        let saved: SavedState =
            serde_json::from_value(state.clone()).map_err(|e| err(e.to_string()))?;
        let mut pop = VecDeque::with_capacity(saved.population.len());
        for (text, s) in saved.population {
            pop.push_back((self.space.parse(&text).map_err(|e| err(e.to_string()))?, s));
        }
        self.population = pop;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    fn obs(a: &Arch, s: Option<f64>) -> Observation<'_> {
        Observation {
            arch: a,
            score: s,
            evaluation: None,
            params: None,
        }
    }

    fn propose(r: &mut RegularizedEvolution, rng: &mut Rng) -> Proposal {
        let never = |_: &str| false;
        r.propose(&mut Context::new(rng, &never)).unwrap()
    }

    #[test]
    fn fills_then_mutates_and_ages_out() {
        let mut rea = RegularizedEvolution::new(
            Space::Nb201,
            ReaSettings {
                population: 3,
                sample: 2,
            },
        );
        let mut rng = Rng::seed(1);
        for i in 0..3 {
            let p = propose(&mut rea, &mut rng);
            assert!(p.origin.starts_with("random"));
            rea.observe(&obs(&p.arch, Some(i as f64)));
        }
        let p = propose(&mut rea, &mut rng);
        assert!(p.origin.starts_with("mutation"), "{}", p.origin);
        rea.observe(&obs(&p.arch, Some(10.0)));
        assert_eq!(rea.population().count(), 3);
        assert_eq!(rea.population().last().unwrap().1, 10.0);
        // Failed evaluations do not join.
        rea.observe(&obs(&p.arch, None));
        assert_eq!(rea.population().count(), 3);
    }

    #[test]
    fn state_roundtrips() {
        let mut rea = RegularizedEvolution::new(Space::Nb201, ReaSettings::default());
        let mut rng = Rng::seed(2);
        for i in 0..25 {
            let p = propose(&mut rea, &mut rng);
            rea.observe(&obs(&p.arch, Some(i as f64)));
        }
        let s = rea.state();
        let mut other = RegularizedEvolution::new(Space::Nb201, ReaSettings::default());
        other.restore(&s).unwrap();
        let mut r1 = rng.clone();
        let mut r2 = rng;
        assert_eq!(
            propose(&mut rea, &mut r1).arch,
            propose(&mut other, &mut r2).arch
        );
        assert!(other
            .restore(&serde_json::json!({"population": [["junk", 1.0]]}))
            .is_err());
    }
}
