//! The search's lineage: which evaluated architecture each one was made
//! from, by which operator, and what that changed; the path that led to the
//! best architecture; and statistics per operator.
//!
//! A step's parent is the canonical hash its strategy recorded
//! ([`Step::parent`]). A parent that was not evaluated in the session (a
//! knowledge-base record the seed came from), and every step of a journal
//! written before parents were kept, make the step a root.

use crate::record::Step;
use std::collections::HashMap;

/// The operator of an origin: its first word, before any detail
/// (`mutation of 1a2b… (score 80.1)` → `mutation`, `evolution (parsed)` →
/// `evolution`, `seed: …` → `seed`).
pub fn operator(origin: &str) -> &str {
    let cut = [" (", ":", " of ", "("]
        .iter()
        .filter_map(|sep| origin.find(sep))
        .min()
        .unwrap_or(origin.len());
    let op = origin.get(..cut).unwrap_or(origin).trim();
    if op.is_empty() {
        "unknown"
    } else {
        op
    }
}

/// The operator of a step: the one its strategy named, else the first word
/// of its origin (journals written before operators were recorded).
pub fn step_operator(s: &Step) -> &str {
    if s.proposal.operator.is_empty() {
        operator(&s.proposal.origin)
    } else {
        &s.proposal.operator
    }
}

/// A reader's name for an operator (SEKI's two stages by their paper names).
pub fn operator_label(op: &str) -> &str {
    match op {
        "evolution" => "self-evolution",
        "inspiration" => "knowledge inspiration",
        other => other,
    }
}

/// The lineage of a session's evaluations (indices into its steps).
#[derive(Debug, Clone, PartialEq)]
pub struct Lineage {
    /// Each step's parent step, if it was evaluated before it in the session.
    pub parent: Vec<Option<usize>>,
    /// Each step's recorded parent hash when that parent is not one of the
    /// session's evaluations.
    pub outside_parent: Vec<Option<String>>,
    /// Each step's children, in evaluation order.
    pub children: Vec<Vec<usize>>,
    /// Each step's depth (roots: 0).
    pub depth: Vec<usize>,
    /// Steps in tree order: each root in evaluation order, followed by its
    /// descendants depth-first.
    pub order: Vec<usize>,
    /// Score change against the parent, where both are scored.
    pub delta: Vec<Option<f64>>,
    /// The path from a root to the best step (empty when nothing scored).
    pub best_path: Vec<usize>,
}

impl Lineage {
    /// Build the lineage of `steps` (in evaluation order).
    pub fn of(steps: &[Step]) -> Lineage {
        let n = steps.len();
        let mut first: HashMap<&str, usize> = HashMap::new();
        let mut parent = vec![None; n];
        let mut outside_parent = vec![None; n];
        for (i, s) in steps.iter().enumerate() {
            if let Some(p) = &s.proposal.parent {
                match first.get(p.as_str()) {
                    Some(&j) if j < i => parent[i] = Some(j),
                    _ => outside_parent[i] = Some(p.clone()),
                }
            }
            first.entry(s.proposal.hash.as_str()).or_insert(i);
        }
        let mut children = vec![Vec::new(); n];
        let mut depth = vec![0; n];
        for i in 0..n {
            if let Some(p) = parent[i] {
                children[p].push(i);
                depth[i] = depth[p] + 1;
            }
        }
        let mut order = Vec::with_capacity(n);
        for root in (0..n).filter(|&i| parent[i].is_none()) {
            let mut stack = vec![root];
            while let Some(i) = stack.pop() {
                order.push(i);
                stack.extend(children[i].iter().rev());
            }
        }
        let delta = (0..n)
            .map(|i| {
                let p = parent[i]?;
                Some(steps[i].result.score? - steps[p].result.score?)
            })
            .collect();
        let mut best_path = Vec::new();
        if let Some(best) = crate::record::best_step(steps) {
            let mut at = steps.iter().position(|s| s.n == best.n);
            while let Some(i) = at {
                best_path.push(i);
                at = parent[i];
            }
            best_path.reverse();
        }
        Lineage {
            parent,
            outside_parent,
            children,
            depth,
            order,
            delta,
            best_path,
        }
    }

    /// Whether step `i` lies on the path to the best step.
    pub fn on_best_path(&self, i: usize) -> bool {
        self.best_path.contains(&i)
    }

    /// Whether any step has a parent in the session.
    pub fn has_edges(&self) -> bool {
        self.parent.iter().any(Option::is_some)
    }
}

/// What one operator achieved in a session.
#[derive(Debug, Clone, PartialEq)]
pub struct OperatorStats {
    /// The operator (see [`operator`]).
    pub operator: String,
    /// Evaluations it proposed.
    pub evaluations: usize,
    /// Of those, scored.
    pub scored: usize,
    /// Of those, failed (any status but ok).
    pub failed: usize,
    /// Proposals of it skipped as duplicates.
    pub duplicates: usize,
    /// Mean score of its scored evaluations.
    pub mean_score: Option<f64>,
    /// Best score among them.
    pub best_score: Option<f64>,
    /// Evaluations with a scored parent in the session.
    pub with_parent: usize,
    /// Of those, better than their parent.
    pub improved: usize,
    /// Mean score change against the parent.
    pub mean_delta: Option<f64>,
    /// Evaluations that set a new best score of the session.
    pub new_best: usize,
}

fn mean(xs: &[f64]) -> Option<f64> {
    (!xs.is_empty()).then(|| xs.iter().sum::<f64>() / xs.len() as f64)
}

/// Statistics per operator, in order of first use; `duplicate_origins` are
/// the origins of the proposals skipped as duplicates.
pub fn operator_stats(
    steps: &[Step],
    lineage: &Lineage,
    duplicate_origins: &[&str],
) -> Vec<OperatorStats> {
    let mut names: Vec<&str> = Vec::new();
    for op in steps
        .iter()
        .map(step_operator)
        .chain(duplicate_origins.iter().map(|o| operator(o)))
    {
        if !names.contains(&op) {
            names.push(op);
        }
    }
    let mut best = f64::NEG_INFINITY;
    let new_best: Vec<bool> = steps
        .iter()
        .map(|s| match s.result.score {
            Some(v) if v > best => {
                best = v;
                true
            }
            _ => false,
        })
        .collect();
    names
        .into_iter()
        .map(|name| {
            let idx: Vec<usize> = (0..steps.len())
                .filter(|&i| step_operator(&steps[i]) == name)
                .collect();
            let scores: Vec<f64> = idx.iter().filter_map(|&i| steps[i].result.score).collect();
            let deltas: Vec<f64> = idx.iter().filter_map(|&i| lineage.delta[i]).collect();
            OperatorStats {
                operator: name.to_string(),
                evaluations: idx.len(),
                scored: scores.len(),
                failed: idx
                    .iter()
                    .filter(|&&i| steps[i].result.status != crate::eval::EvalStatus::Ok)
                    .count(),
                duplicates: duplicate_origins
                    .iter()
                    .filter(|o| operator(o) == name)
                    .count(),
                mean_score: mean(&scores),
                best_score: scores.iter().cloned().reduce(f64::max),
                with_parent: deltas.len(),
                improved: deltas.iter().filter(|&&d| d > 0.0).count(),
                mean_delta: mean(&deltas),
                new_best: idx.iter().filter(|&&i| new_best[i]).count(),
            }
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::eval::{EvalStatus, Evaluation};
    use crate::record::{StepState, StrategyState};
    use crate::rng::Rng;

    pub(crate) fn step(
        n: usize,
        hash: &str,
        origin: &str,
        parent: Option<&str>,
        score: Option<f64>,
    ) -> Step {
        let mut result = Evaluation::failed(EvalStatus::Failed("boom".into()));
        if score.is_some() {
            result.status = EvalStatus::Ok;
            result.score = score;
        }
        Step {
            n,
            proposal: crate::record::Proposed {
                arch: format!("arch-{hash}"),
                hash: hash.into(),
                origin: origin.into(),
                parent: parent.map(str::to_string),
                operator: String::new(),
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
    fn operators_are_the_first_word_of_the_origin() {
        assert_eq!(operator("random (filling the population)"), "random");
        assert_eq!(operator("mutation of 1a2b3c (score 80.10)"), "mutation");
        assert_eq!(operator("seed: r1-0011 from the knowledge base"), "seed");
        assert_eq!(operator("evolution (fallback: mutation; x)"), "evolution");
        assert_eq!(operator("inspiration"), "inspiration");
        assert_eq!(operator(""), "unknown");
        assert_eq!(operator_label("evolution"), "self-evolution");
    }

    fn session() -> Vec<Step> {
        vec![
            step(
                1,
                "a",
                "seed: k-1 from the knowledge base",
                Some("kb0"),
                Some(80.0),
            ),
            step(2, "b", "evolution (parsed)", Some("a"), Some(78.0)),
            step(3, "c", "evolution (parsed)", Some("a"), Some(82.0)),
            step(4, "d", "inspiration (parsed)", None, Some(81.0)),
            step(5, "e", "evolution (parsed)", Some("c"), Some(85.0)),
            step(6, "f", "evolution (parsed)", Some("c"), None),
            step(7, "g", "mutation of zz", Some("zz"), Some(70.0)),
        ]
    }

    #[test]
    fn parents_children_tree_order_and_best_path() {
        let s = session();
        let l = Lineage::of(&s);
        assert_eq!(
            l.parent,
            vec![None, Some(0), Some(0), None, Some(2), Some(2), None]
        );
        assert_eq!(l.outside_parent[0].as_deref(), Some("kb0"));
        assert_eq!(l.outside_parent[6].as_deref(), Some("zz"));
        assert_eq!(l.children[0], vec![1, 2]);
        assert_eq!(l.depth, vec![0, 1, 1, 0, 2, 2, 0]);
        assert_eq!(l.order, vec![0, 1, 2, 4, 5, 3, 6]);
        assert_eq!(l.best_path, vec![0, 2, 4]);
        assert!(l.on_best_path(2) && !l.on_best_path(1));
        assert_eq!(l.delta[1], Some(-2.0));
        assert_eq!(l.delta[4], Some(3.0));
        assert_eq!(l.delta[5], None, "a failed child has no change");
        assert!(l.has_edges());
    }

    #[test]
    fn old_journals_without_parents_are_all_roots() {
        let s: Vec<Step> = session()
            .into_iter()
            .map(|mut x| {
                x.proposal.parent = None;
                x
            })
            .collect();
        let l = Lineage::of(&s);
        assert!(!l.has_edges());
        assert_eq!(l.order, (0..7).collect::<Vec<_>>());
        assert_eq!(l.best_path, vec![4]);
    }

    #[test]
    fn a_parent_must_come_before_its_child() {
        // A hash seen only later is not a parent (a corrupt or odd journal).
        let s = vec![
            step(1, "a", "random", Some("b"), Some(1.0)),
            step(2, "b", "random", Some("b"), Some(2.0)),
        ];
        let l = Lineage::of(&s);
        assert_eq!(l.parent, vec![None, None]);
    }

    #[test]
    fn operator_statistics() {
        let s = session();
        let l = Lineage::of(&s);
        let st = operator_stats(&s, &l, &["evolution (parsed)", "random"]);
        let names: Vec<&str> = st.iter().map(|x| x.operator.as_str()).collect();
        assert_eq!(
            names,
            vec!["seed", "evolution", "inspiration", "mutation", "random"]
        );
        let evo = &st[1];
        assert_eq!(
            (evo.evaluations, evo.scored, evo.failed, evo.duplicates),
            (4, 3, 1, 1)
        );
        assert_eq!((evo.with_parent, evo.improved), (3, 2));
        assert_eq!(evo.best_score, Some(85.0));
        assert!((evo.mean_delta.unwrap() - (-2.0 + 2.0 + 3.0) / 3.0).abs() < 1e-12);
        assert_eq!(evo.new_best, 2, "82 then 85");
        assert_eq!(st[0].new_best, 1);
        assert_eq!(st[4].evaluations, 0);
        assert_eq!(st[4].mean_score, None);
    }
}
