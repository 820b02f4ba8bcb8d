//! How a session ended, as `summary.json` and `best.json` hold it: written by
//! the session, read back through the same types by reports.

use super::agent::StageUsage;
use super::journal::Step;
use super::operators::OperatorStats;
use crate::stats::Uncertainty;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The best architecture so far, as `best.json` holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Best {
    /// The architecture in its space's text form.
    pub arch: String,
    /// Its search score (validation accuracy, %): the mean over its
    /// evaluations when it was evaluated more than once.
    pub score: f64,
    /// The standard error of `score` (points), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score_se: Option<f64>,
    /// Its evaluations' spread, when it was evaluated more than once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uncertainty: Option<Uncertainty>,
    /// Its canonical hash.
    pub hash: String,
    /// The evaluation that found it.
    pub evaluation: usize,
    /// Its test accuracy (%), for reporting; strategies never see it.
    pub test_accuracy: Option<f64>,
    /// Its other metrics.
    #[serde(default)]
    pub metrics: BTreeMap<String, f64>,
    /// The fidelity rung its score is from, in a session with rungs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rung: Option<u32>,
}

impl Best {
    /// The best of one evaluation (`None` when it did not score).
    pub fn of(step: &Step) -> Option<Best> {
        Some(Best {
            arch: step.proposal.arch.clone(),
            score: step.result.score?,
            score_se: step.result.score_se,
            uncertainty: None,
            hash: step.proposal.hash.clone(),
            evaluation: step.n,
            test_accuracy: step.result.test_accuracy,
            metrics: step.result.metrics.clone(),
            rung: None,
        })
    }
}

/// The non-dominated evaluations of `steps` under `objectives` (by search
/// score and the costs their metrics hold), best score first, with the
/// hypervolume they dominate up to `reference` (a fraction of its box:
/// every coordinate's lower bound is 0).
pub fn front_of(steps: &[Step], objectives: &[crate::eval::Objective], reference: &[f64]) -> Front {
    let mut pts = Vec::new();
    let mut at = Vec::new();
    for s in steps {
        let (Some(score), Some(cost)) = (
            s.result.score,
            crate::eval::Cost::from_metrics(&s.result.metrics),
        ) else {
            continue;
        };
        if let Some(p) = crate::eval::cost::point(objectives, score, Some(&cost)) {
            pts.push(p);
            at.push((s, score, cost));
        }
    }
    let box_volume: f64 = reference.iter().product();
    let idx = crate::pareto::front(&pts);
    let front_pts: Vec<Vec<f64>> = idx.iter().map(|&i| pts[i].clone()).collect();
    let hv = crate::pareto::hypervolume(&front_pts, reference);
    let mut points: Vec<FrontPoint> = idx
        .iter()
        .map(|&i| {
            let (s, score, cost) = &at[i];
            FrontPoint {
                evaluation: s.n,
                arch: s.proposal.arch.clone(),
                score: *score,
                score_se: s.result.score_se,
                test_accuracy: s.result.test_accuracy,
                cost: *cost,
            }
        })
        .collect();
    points.sort_by(|a, b| b.score.total_cmp(&a.score));
    Front {
        objectives: objectives.iter().map(|o| o.spec().to_string()).collect(),
        points,
        reference: reference.to_vec(),
        hypervolume: if box_volume > 0.0 {
            hv / box_volume
        } else {
            0.0
        },
    }
}

/// The mean score of `step`'s architecture at fidelity `rung` over its
/// scored evaluations there (at rung 1 its search evaluation and rung-1
/// repeats; above, its `reevaluations` at that rung), with the mean's
/// standard error. `None` when nothing scored there.
pub fn score_at_rung(
    step: &Step,
    reevaluations: &[super::journal::Reevaluation],
    rung: u32,
) -> Option<(f64, Option<f64>)> {
    let mut scores = Vec::new();
    let mut ses = Vec::new();
    if rung <= 1 && step.result.status == crate::eval::EvalStatus::Ok {
        if let Some(s) = step.result.score {
            scores.push(s);
            ses.push(step.result.score_se);
        }
    }
    for r in reevaluations.iter().filter(|r| {
        r.of == step.n
            && r.rung.max(1) == rung.max(1)
            && r.result.status == crate::eval::EvalStatus::Ok
    }) {
        if let Some(s) = r.result.score {
            scores.push(s);
            ses.push(r.result.score_se);
        }
    }
    let first = *ses.first()?;
    let mean = crate::stats::mean_sd(&scores).0;
    let se = Uncertainty::of_repeats(&scores, &ses)
        .map(|(_, u)| u.se)
        .or(first);
    Some((mean, se))
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

/// A re-evaluated contender, as `summary.json` lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Contender {
    /// The evaluation that first scored it.
    pub evaluation: usize,
    /// The architecture in its space's text form.
    pub arch: String,
    /// Its canonical hash.
    pub hash: String,
    /// The score of that first evaluation.
    pub first_score: f64,
    /// The mean score over all its evaluations.
    pub mean: f64,
    /// Standard error, repeats and spread of the mean, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uncertainty: Option<Uncertainty>,
    /// The mean test accuracy over its evaluations (reported only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_accuracy: Option<f64>,
    /// The fidelity rung of its evaluations, in a session with rungs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rung: Option<u32>,
}

/// What a strategy has used and done, for the session's budgets and summary.
/// The fields a strategy does not have stay empty and out of `summary.json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StrategyStats {
    /// LLM tokens used (prompt and completion), against `search.max_tokens`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub tokens: u64,
    /// LLM cost in US dollars, against `search.max_cost_usd`.
    #[serde(default, skip_serializing_if = "is_zero_f")]
    pub cost_usd: f64,
    /// Replies that repeated an evaluated architecture, for which the LLM
    /// was asked again (not evaluated, not journalled as duplicates).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub llm_duplicates: u64,
    /// The LLM's replies, for the LLM-guided strategy.
    #[serde(default, flatten, skip_serializing_if = "Option::is_none")]
    pub replies: Option<ReplyCounts>,
    /// Insights distilled and contradicted, for the LLM-guided strategy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub insights: Option<u64>,
    /// Insights contradicted by later results.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub insights_contradicted: Option<u64>,
    /// LLM use per stage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<BTreeMap<String, StageUsage>>,
    /// The untrained-network screen, when the strategy has one.
    #[serde(default, flatten, skip_serializing_if = "Option::is_none")]
    pub screen: Option<ScreenStats>,
}

/// How the LLM's replies were read.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReplyCounts {
    /// Replies read first time.
    pub parsed_first_try: u64,
    /// Replies read after repair prompts.
    pub parsed_after_repair: u64,
    /// Proposals for which a mutation replaced an unusable reply.
    pub fell_back: u64,
    /// Insights refused (without evidence, or contradicting the records).
    #[serde(default)]
    pub insights_rejected: u64,
}

/// What a zero-cost screen did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ScreenStats {
    /// What it ranks by (e.g. `synflow`, `vote(naswot,synflow)`).
    pub screen: String,
    /// Proposals it chose among several candidates (LLM-guided strategy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub screened: Option<u64>,
    /// Mutations it chose among several children (regularized evolution).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub screened_mutations: Option<u64>,
    /// CPU seconds spent on proxy scores.
    pub proxy_cpu_seconds: f64,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

fn is_zero_f(v: &f64) -> bool {
    *v == 0.0
}

/// How a session ended, as `summary.json` holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
    /// Proposals not evaluated because they repeated an evaluated
    /// architecture: the journal's `duplicate` lines. (Replies in which the
    /// LLM repeated one and was asked again are `llm_duplicates`.)
    pub duplicates: usize,
    /// Evaluations whose status was not `ok`.
    pub failed: usize,
    /// Where evaluations ran (`local, 1 worker`, `slurm, ...`).
    pub executor: String,
    /// Repeated evaluations of evaluated architectures (other seeds); the
    /// evaluation budget counts them too.
    pub reevaluations: usize,
    /// The best architecture: by the mean over its evaluations when
    /// contenders were re-evaluated.
    pub best: Option<Best>,
    /// The re-evaluated contenders, best mean first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub contenders: Vec<Contender>,
    /// Whether the top two contenders' means differ by more than the noise
    /// allows (`search.distinguish_z` standard errors); absent with fewer
    /// than two.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_two_distinguishable: Option<bool>,
    /// What the re-evaluation found, in words (e.g. that the top two are not
    /// distinguishable).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contenders_note: Option<String>,
    /// Why the session stopped.
    pub stop_reason: String,
    /// Seconds, over all runs of the session.
    pub elapsed_seconds: f64,
    /// Per operator: proposals, duplicates, failures, score change against
    /// the parent, new bests.
    pub operators: BTreeMap<String, OperatorStats>,
    /// The hard budgets the session ran under, when it had any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<BudgetSummary>,
    /// A Pareto search's returned front, with its hypervolume.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub front: Option<Front>,
    /// The fidelity rungs and what reached each, in a session with more
    /// than one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rungs: Option<RungsSummary>,
    /// The best against the session's seed (its first evaluation: for the
    /// agent, the knowledge base's best cell), at the same rung.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub against_seed: Option<SeedComparison>,
    /// The strategy's own counters (for the LLM-guided strategy: replies
    /// parsed first time, after repair, fallbacks, tokens and cost per stage).
    #[serde(flatten)]
    pub strategy_stats: StrategyStats,
}

/// A session's fidelity rungs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RungsSummary {
    /// The fraction of a rung's results promoted to the next.
    pub promote: f64,
    /// Each rung, from 1.
    pub rungs: Vec<RungSummary>,
    /// The highest rung any architecture reached.
    pub highest_reached: u32,
}

/// One rung of a session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RungSummary {
    /// Its number, from 1.
    pub rung: u32,
    /// Its settings, in words.
    pub settings: String,
    /// Architectures scored at it.
    pub architectures: usize,
    /// Evaluations made at it (repeats included).
    pub evaluations: usize,
    /// Mean seconds per evaluation at it.
    pub mean_seconds: f64,
}

/// The returned architecture against the seed, at the same rung.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeedComparison {
    /// The seed's evaluation number.
    pub seed_evaluation: usize,
    /// The seed.
    pub seed_arch: String,
    /// The rung both scores are from.
    pub rung: u32,
    /// The seed's mean score there.
    pub seed_score: f64,
    /// Its standard error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed_se: Option<f64>,
    /// The best's mean score there.
    pub best_score: f64,
    /// Its standard error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub best_se: Option<f64>,
    /// best − seed.
    pub difference: f64,
    /// `better`, `worse`, `within noise` (within `distinguish_z` standard
    /// errors of the difference) or `same` (the best is the seed).
    pub verdict: String,
    /// The comparison in words.
    pub text: String,
}

/// One point of a Pareto search's returned front.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FrontPoint {
    /// The evaluation that found it.
    pub evaluation: usize,
    /// The architecture in its space's text form.
    pub arch: String,
    /// Its search score (validation accuracy, %).
    pub score: f64,
    /// The standard error of the score (points), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score_se: Option<f64>,
    /// Its test accuracy (%), for reporting only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_accuracy: Option<f64>,
    /// Its cost.
    pub cost: crate::eval::Cost,
}

/// A Pareto search's front and the volume it dominates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Front {
    /// The objectives (`accuracy:max`, `params:min`, ...).
    pub objectives: Vec<String>,
    /// The non-dominated evaluations, by accuracy, best first.
    pub points: Vec<FrontPoint>,
    /// The reference point, every coordinate minimised (error %, then the
    /// costs): 1.1 times the cost of the space's costliest cell.
    pub reference: Vec<f64>,
    /// The hypervolume the front dominates up to the reference point (by
    /// search scores), as a fraction of the reference box.
    pub hypervolume: f64,
}

/// A session's hard budgets and what they did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BudgetSummary {
    /// The budgets.
    pub constraints: crate::eval::Constraints,
    /// The network the costs are of, in words.
    pub measured_on: String,
    /// Proposals refused as over budget (not evaluated).
    pub refused: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strategy_stats_keep_their_summary_keys_and_read_back() {
        let s = StrategyStats {
            tokens: 10,
            replies: Some(ReplyCounts {
                parsed_first_try: 3,
                ..Default::default()
            }),
            screen: Some(ScreenStats {
                screen: "synflow".into(),
                screened: Some(2),
                screened_mutations: None,
                proxy_cpu_seconds: 1.5,
            }),
            ..Default::default()
        };
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(v["parsed_first_try"], 3);
        assert_eq!(v["screen"], "synflow");
        assert_eq!(v["proxy_cpu_seconds"], 1.5);
        assert!(v.get("usage").is_none());
        assert_eq!(serde_json::from_value::<StrategyStats>(v).unwrap(), s);
        let plain: StrategyStats = serde_json::from_str("{}").unwrap();
        assert_eq!(plain, StrategyStats::default());
    }
}
