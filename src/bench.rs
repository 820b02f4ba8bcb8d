//! The NAS-Bench-201 benchmark: many seeded sessions of each strategy against
//! the table, reported as the mean ± std of the test accuracy of the
//! architecture each session would return at each checkpoint.
//!
//! With `in_flight` above 1, each session keeps that many evaluations in
//! flight on a virtual clock ([`Simulated`](crate::executor::Simulated)):
//! the strategy proposes before the results of the others are known, as
//! with several workers, and results come back out of order.

use crate::eval::Nb201Table;
use crate::session::{best_step, Session, SessionError, Spec, Step};
use crate::strategy::Strategy;
use serde::Serialize;

/// Mean and spread at one checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Checkpoint {
    /// Evaluations done.
    pub evaluations: usize,
    /// Mean 200-epoch test accuracy (%) of the returned architectures.
    pub mean: f64,
    /// Sample standard deviation over seeds.
    pub std: f64,
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
}

/// The checkpoints reported for a budget: 25, 50, then every 100, and the budget itself.
pub fn checkpoints(budget: usize) -> Vec<usize> {
    let mut v: Vec<usize> = [25, 50].into_iter().filter(|&c| c < budget).collect();
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
) -> Result<StrategyResult, SessionError> {
    let mut baseline = |s: &Spec| Ok(crate::strategy::build(s.strategy, s.space, s.rea)?);
    run_with(
        table,
        spec,
        seeds,
        first_seed,
        in_flight,
        &mut baseline,
        &mut |_, _| {},
    )
}

/// Run `seeds` sessions of the SEKI agent with `models` against the table.
/// Each seed's agent starts from an empty, private pool (no knowledge base),
/// so seeds are independent; prompts only ever see validation scores.
#[allow(clippy::too_many_arguments)]
pub fn run_seki(
    table: &Nb201Table,
    spec: &Spec,
    cfg: &crate::config::Config,
    models: crate::agent::Models,
    first_seed: u64,
    seeds: usize,
    in_flight: usize,
    done: &mut dyn FnMut(u64, Option<f64>),
) -> Result<StrategyResult, SessionError> {
    let info = crate::eval::Evaluator::info(table);
    let mut cfg = cfg.clone();
    cfg.search.space = spec.space;
    let mut make = |s: &Spec| -> Result<Box<dyn crate::strategy::Strategy>, SessionError> {
        let agent = crate::agent::build(
            &cfg,
            &format!("bench-s{}", s.seed),
            &info,
            None,
            models.clone(),
        )?;
        Ok(Box::new(agent))
    };
    run_with(table, spec, seeds, first_seed, in_flight, &mut make, done)
}

/// Like [`run_strategy`], with each session's strategy from `make` (e.g. the
/// LLM-guided agent with a fresh, private knowledge pool) and `done(seed,
/// test accuracy of the returned architecture)` told after each session.
pub fn run_with(
    table: &Nb201Table,
    spec: &Spec,
    seeds: usize,
    first_seed: u64,
    in_flight: usize,
    make: &mut StrategyFactory<'_>,
    done: &mut dyn FnMut(u64, Option<f64>),
) -> Result<StrategyResult, SessionError> {
    let budget = spec.max_evaluations;
    let marks = checkpoints(budget);
    let mut per_mark: Vec<Vec<f64>> = vec![Vec::new(); marks.len()];
    for k in 0..seeds {
        let mut s = spec.clone();
        s.seed = first_seed + k as u64;
        let mut eval = table.clone();
        let seed = s.seed;
        let strategy = make(&s)?;
        let steps = if in_flight <= 1 {
            Session::in_memory(s, strategy, &mut eval).run_to_steps()?
        } else {
            let exec = crate::executor::Simulated::new(&mut eval, in_flight, seed);
            Session::in_memory_with(s, strategy, Box::new(exec)).run_to_steps()?
        };
        done(seed, returned_test_accuracy(&steps, budget));
        for (i, &m) in marks.iter().enumerate() {
            if let Some(t) = returned_test_accuracy(&steps, m) {
                per_mark[i].push(t);
            }
        }
    }
    Ok(StrategyResult {
        strategy: if in_flight > 1 {
            format!("{} ×{in_flight}", spec.strategy.name())
        } else {
            spec.strategy.name().into()
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
                }
            })
            .collect(),
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
            out.push_str(&format!(
                "  {:>16}",
                format!("{:.2} ± {:.2}", c.mean, c.std)
            ));
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
        assert_eq!(checkpoints(100), vec![25, 50, 100]);
        assert_eq!(checkpoints(250), vec![25, 50, 100, 200, 250]);
        assert_eq!(checkpoints(30), vec![25, 30]);
        assert_eq!(checkpoints(10), vec![10]);
    }

    #[test]
    fn mean_and_sample_std() {
        let (m, s) = mean_std(&[1.0, 2.0, 3.0]);
        assert!((m - 2.0).abs() < 1e-12);
        assert!((s - 1.0).abs() < 1e-12);
    }
}
