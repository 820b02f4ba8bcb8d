//! What each operator contributed: proposals, duplicates, failures, the
//! score change of its children against their parents, and new bests.

use super::journal::Step;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

/// One operator's record over a session.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OperatorStats {
    /// Proposals it made (evaluated or duplicates).
    pub proposals: usize,
    /// Proposals that repeated an evaluated architecture.
    pub duplicates: usize,
    /// Evaluations of its proposals.
    pub evaluations: usize,
    /// Evaluations that did not score (diverged, timed out, failed).
    pub failed: usize,
    /// Scored children whose parent had scored.
    pub with_parent: usize,
    /// Of those, children that beat their parent.
    pub improved_on_parent: usize,
    /// Mean score change of a child against its parent (points).
    pub mean_change_vs_parent: Option<f64>,
    /// Evaluations that were a new best of the session.
    pub new_bests: usize,
    /// Share of the session's new bests that came from this operator.
    pub share_of_new_bests: f64,
}

/// Operator statistics of `steps` (in evaluation order) and the duplicates
/// each operator proposed. Steps journalled before operators were recorded
/// count under their `origin`.
pub fn operator_stats(
    steps: &[Step],
    duplicates: &BTreeMap<String, usize>,
) -> BTreeMap<String, OperatorStats> {
    let mut out: BTreeMap<String, OperatorStats> = BTreeMap::new();
    let mut score_of: HashMap<&str, f64> = HashMap::new();
    let mut best: Option<f64> = None;
    let mut changes: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let mut total_bests = 0usize;
    for s in steps {
        let op = s.proposal.counted_as().to_string();
        let e = out.entry(op.clone()).or_default();
        e.proposals += 1;
        e.evaluations += 1;
        let score = match s.result.status {
            crate::eval::EvalStatus::Ok => s.result.score,
            _ => None,
        };
        let Some(score) = score else {
            e.failed += 1;
            continue;
        };
        if let Some(p) = s.proposal.parent.as_deref().and_then(|p| score_of.get(p)) {
            e.with_parent += 1;
            if score > *p {
                e.improved_on_parent += 1;
            }
            changes.entry(op.clone()).or_default().push(score - p);
        }
        if best.is_none_or(|b| score > b) {
            best = Some(score);
            e.new_bests += 1;
            total_bests += 1;
        }
        score_of.insert(&s.proposal.hash, score);
    }
    for (op, n) in duplicates {
        let e = out.entry(op.clone()).or_default();
        e.proposals += n;
        e.duplicates += n;
    }
    for (op, e) in out.iter_mut() {
        if let Some(c) = changes.get(op).filter(|c| !c.is_empty()) {
            e.mean_change_vs_parent = Some(c.iter().sum::<f64>() / c.len() as f64);
        }
        if total_bests > 0 {
            e.share_of_new_bests = e.new_bests as f64 / total_bests as f64;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::{EvalStatus, Evaluation};
    use crate::record::{StepState, StrategyState};
    use crate::rng::Rng;

    fn step(n: usize, hash: &str, op: &str, parent: Option<&str>, score: Option<f64>) -> Step {
        let mut result = Evaluation::failed(EvalStatus::Failed("x".into()));
        if let Some(s) = score {
            result.status = EvalStatus::Ok;
            result.score = Some(s);
        }
        Step {
            n,
            proposal: crate::record::Proposed {
                arch: String::new(),
                hash: hash.into(),
                origin: format!("{op} (detail)"),
                parent: parent.map(str::to_string),
                operator: op.into(),
            },
            result,
            eval_seconds: 0.0,
            placement: None,
            state: StepState {
                elapsed: 0.0,
                rng: Rng::seed(0),
                strategy_state: StrategyState::none(),
            },
        }
    }

    #[test]
    fn counts_changes_against_parents_and_new_bests() {
        let steps = vec![
            step(1, "a", "random", None, Some(80.0)),
            step(2, "b", "mutation", Some("a"), Some(84.0)),
            step(3, "c", "mutation", Some("b"), Some(82.0)),
            step(4, "d", "crossover", Some("b"), None),
        ];
        let dups = BTreeMap::from([("mutation".to_string(), 2)]);
        let s = operator_stats(&steps, &dups);
        let m = &s["mutation"];
        assert_eq!((m.proposals, m.duplicates, m.evaluations), (4, 2, 2));
        assert_eq!(
            (m.with_parent, m.improved_on_parent, m.new_bests),
            (2, 1, 1)
        );
        assert_eq!(m.mean_change_vs_parent, Some(1.0));
        assert_eq!(s["random"].share_of_new_bests, 0.5);
        assert_eq!(s["crossover"].failed, 1);
        assert_eq!(s["crossover"].mean_change_vs_parent, None);
    }
}
