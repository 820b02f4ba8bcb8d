//! A search strategy of your own, run through seki's session machinery.
//!
//! This one is a greedy hill-climber: it keeps the best architecture seen and
//! proposes single-step mutations of it. Run it against the NAS-Bench-201
//! table:
//!
//! ```sh
//! cargo run --release --example custom_strategy -- ../shared/benchmarks/nb201/nb201-cifar10.csv
//! ```

use seki::config::Config;
use seki::eval::Nb201Table;
use seki::record::StrategyState;
use seki::session::{Session, Spec};
use seki::space::{Arch, Space};
use seki::strategy::{Context, Observation, Proposal, Strategy, StrategyError};

struct HillClimb {
    space: Space,
    best: Option<(Arch, f64)>,
}

impl Strategy for HillClimb {
    fn name(&self) -> &'static str {
        "hill-climb"
    }
    fn propose(&mut self, ctx: &mut Context<'_>) -> Result<Proposal, StrategyError> {
        Ok(match &self.best {
            Some((a, _)) => Proposal::from_parent(a.mutate(ctx.rng), "mutation of the best", a),
            None => Proposal::new(self.space.random(ctx.rng), "random"),
        })
    }
    fn observe(&mut self, obs: &Observation<'_>) {
        if let Some(s) = obs.score {
            if self.best.as_ref().is_none_or(|(_, b)| s > *b) {
                self.best = Some((obs.arch.clone(), s));
            }
        }
    }
    fn state(&self) -> StrategyState {
        let best = self.best.as_ref().map(|(a, s)| (a.to_text(), *s));
        StrategyState::encode(&best).unwrap_or_default()
    }
    fn restore(&mut self, state: &StrategyState) -> Result<(), StrategyError> {
        let err = |message: String| StrategyError::Restore {
            strategy: "hill-climb",
            message,
        };
        let best: Option<(String, f64)> = state.decode().map_err(|e| err(e.to_string()))?;
        self.best = match best {
            Some((text, s)) => Some((self.space.parse(&text).map_err(|e| err(e.to_string()))?, s)),
            None => None,
        };
        Ok(())
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "../shared/benchmarks/nb201/nb201-cifar10.csv".into());
    let mut table = Nb201Table::load(std::path::Path::new(&path))?;
    let loaded = Config::parse("", None, std::path::Path::new("."))?;
    let spec = Spec {
        max_evaluations: 100,
        ..Spec::from_config(&loaded.config)
    };
    let strategy = Box::new(HillClimb {
        space: Space::Nb201,
        best: None,
    });
    let summary = Session::in_memory(spec, strategy, &mut table).run()?;
    if let Some(best) = summary.best {
        println!(
            "best after {} evaluations ({} duplicates skipped): {}\nvalidation {:.2}, test {:.2}",
            summary.evaluations,
            summary.duplicates,
            best.arch,
            best.score,
            best.test_accuracy.unwrap_or(f64::NAN)
        );
    }
    Ok(())
}
