//! The SEKI agent: an LLM proposes architectures through two alternating
//! stages, self-evolution (refine the current architecture from its score and
//! history) and knowledge inspiration (distil the patterns shared by top
//! architectures, then design from them).
//!
//! The agent is a [`Strategy`](crate::strategy::Strategy), so it runs under
//! the same sessions, budgets, journal and resume as the baselines.

pub mod extract;
mod insights;
pub mod recording;
mod seki;
pub mod settings;

pub use crate::record::{AgentEvent, ParseOutcome, PoolEntry, ScreenedCandidate};
pub use extract::{extract, extract_all, ExtractError};
pub use recording::{initial_state, load_recording, recording_from_journal, used_before_resume};
pub use seki::{AgentError, Models, SekiAgent, Task};
pub use settings::{AgentConfig, OnTie, UndecidedInsights};

use crate::knowledge::{EvaluatorInfo, KnowledgeBase};
use crate::space::Space;

/// The agent's rule for a child of the current architecture: a clear
/// improvement (higher by more than `tie_z` standard errors of the
/// difference, `agent.tie_z`) replaces the current one, a clear loss does
/// not, and a tie does what `on_tie` says. With `tie_z = 0` or unknown
/// errors only equal scores tie.
pub fn replaces_current(
    child: f64,
    child_se: Option<f64>,
    current: f64,
    current_se: Option<f64>,
    tie_z: f64,
    on_tie: OnTie,
) -> bool {
    use crate::stats::Comparison;
    match crate::stats::compare(child, child_se, current, current_se, tie_z) {
        Comparison::Better => true,
        Comparison::Worse => false,
        Comparison::Tie => match on_tie {
            OnTie::Higher => child > current,
            OnTie::Keep => false,
            OnTie::Child => true,
        },
    }
}

/// What the LLM is told about the task, from the agent's settings
/// (`[agent]`) and the evaluator.
pub fn task_for(settings: &AgentConfig, evaluator: &EvaluatorInfo) -> Task {
    let dataset = evaluator
        .dataset
        .clone()
        .unwrap_or_else(|| "the dataset".into());
    let score_label = match evaluator.kind.as_str() {
        "nb201-table" => "validation accuracy (12 epochs)".to_string(),
        _ => "validation accuracy".to_string(),
    };
    Task {
        dataset,
        objective: settings.objective.clone(),
        constraints: settings.constraints.clone(),
        score_label,
    }
}

/// Build the agent for a session searching `space` with the settings
/// `[agent]`: its starting pool and insights come from the knowledge base
/// (if any).
pub fn build(
    settings: &AgentConfig,
    space: Space,
    session: &str,
    evaluator: &EvaluatorInfo,
    kb: Option<&KnowledgeBase>,
    models: Models,
) -> Result<SekiAgent, AgentError> {
    let task = task_for(settings, evaluator);
    let pool = kb
        .map(|kb| SekiAgent::pool_from_kb(kb, space, evaluator, &task.score_label))
        .unwrap_or_default();
    let insights = kb
        .map(|kb| kb.insights_for(Some(space)).into_iter().cloned().collect())
        .unwrap_or_default();
    Ok(
        SekiAgent::new(space, settings.clone(), task, session, pool, models)?
            .with_insights(insights)
            .with_protocol(evaluator.clone()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tie_rule_keeps_moves_or_follows_the_higher_score() {
        // 79 against 78 with errors 1.3 each: a tie at z = 1.
        let r = |on| replaces_current(79.0, Some(1.3), 78.0, Some(1.3), 1.0, on);
        assert!(r(OnTie::Higher));
        assert!(!r(OnTie::Keep));
        assert!(r(OnTie::Child));
        let lower = |on| replaces_current(77.5, Some(1.3), 78.0, Some(1.3), 1.0, on);
        assert!(!lower(OnTie::Higher) && !lower(OnTie::Keep) && lower(OnTie::Child));
        // Clear gains and losses ignore on_tie.
        for on in [OnTie::Higher, OnTie::Keep, OnTie::Child] {
            assert!(replaces_current(82.0, Some(1.3), 78.0, Some(1.3), 1.0, on));
            assert!(!replaces_current(74.0, Some(1.3), 78.0, Some(1.3), 1.0, on));
        }
        // Off: strict.
        assert!(replaces_current(
            78.1,
            Some(1.3),
            78.0,
            Some(1.3),
            0.0,
            OnTie::Keep
        ));
    }
}
