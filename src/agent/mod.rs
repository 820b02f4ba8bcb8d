//! The SEKI agent: an LLM proposes architectures through two alternating
//! stages, self-evolution (refine the current architecture from its score and
//! history) and knowledge inspiration (distil the patterns shared by top
//! architectures, then design from them).
//!
//! The agent is a [`Strategy`](crate::strategy::Strategy), so it runs under
//! the same sessions, budgets, journal and resume as the baselines.

pub mod events;
pub mod extract;
mod insights;
pub mod recording;
mod seki;
pub mod settings;

pub use events::{AgentEvent, ParseOutcome};
pub use extract::{extract, ExtractError};
pub use recording::{initial_state, load_recording, recording_from_journal, used_before_resume};
pub use seki::{AgentError, Models, PoolEntry, SekiAgent, Task};
pub use settings::AgentConfig;

use crate::config::Config;
use crate::knowledge::{EvaluatorInfo, KnowledgeBase};

/// What the LLM is told about the task, from the config and the evaluator.
pub fn task_for(config: &Config, evaluator: &EvaluatorInfo) -> Task {
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
        objective: config.agent.objective.clone(),
        constraints: config.agent.constraints.clone(),
        score_label,
    }
}

/// Build the agent for a session: its starting pool and insights come from
/// the knowledge base (if any).
pub fn build(
    config: &Config,
    session: &str,
    evaluator: &EvaluatorInfo,
    kb: Option<&KnowledgeBase>,
    models: Models,
) -> Result<SekiAgent, AgentError> {
    let task = task_for(config, evaluator);
    let space = config.search.space;
    let pool = kb
        .map(|kb| SekiAgent::pool_from_kb(kb, space, &evaluator.kind, &task.score_label))
        .unwrap_or_default();
    let insights = kb
        .map(|kb| kb.insights_for(Some(space)).into_iter().cloned().collect())
        .unwrap_or_default();
    Ok(
        SekiAgent::new(space, config.agent.clone(), task, session, pool, models)?
            .with_insights(insights),
    )
}
