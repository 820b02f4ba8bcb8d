//! The run record: everything a session writes into its run directory and
//! what reports, replays and resumes read back, as types.
//!
//! - [`journal`]: the journal's events, one JSON line each (steps,
//!   submissions, duplicates, re-evaluations, the strategy's events);
//! - [`summary`]: `summary.json` and `best.json`;
//! - [`state`]: a strategy's journalled state, with the typed view reports
//!   read ([`StrategyState::knowledge`]);
//! - [`agent`]: what the LLM-guided agent journals (its events, the
//!   architectures it was shown, its insights);
//! - [`operators`]: what each operator contributed, computed from the steps.
//!
//! The session writes the record; `report`, the agent's replay of recorded
//! replies and the session's resume read it, never untyped JSON. In the
//! layering it sits under everything that writes or reads a run (session,
//! strategy, agent, report) and over the layers whose values it holds
//! (`eval`'s results, `knowledge`'s insights, `llm`'s messages).

/// The run directory's config snapshot.
pub const CONFIG: &str = "config.toml";
/// The run directory's journal.
pub const JOURNAL: &str = "journal.jsonl";
/// The run directory's best architecture so far.
pub const BEST: &str = "best.json";
/// The run directory's summary, written when the session ends.
pub const SUMMARY: &str = "summary.json";

pub mod agent;
pub mod journal;
pub mod operators;
pub mod state;
pub mod summary;

pub use agent::{
    AgentEvent, CallOptions, KnowledgeState, ParseOutcome, PoolEntry, ScreenedCandidate, StageUsage,
};
pub use journal::{
    Event, JournalError, OpenRequest, OpenRequests, Placement, Proposed, Reevaluation, Step,
    StepState, Submission,
};
pub use operators::{operator_stats, OperatorStats};
pub use state::{StateError, StrategyState};
pub use summary::{
    best_step, front_of, score_at_rung, Best, BudgetSummary, Contender, Front, FrontPoint,
    ReplyCounts, RungSummary, RungsSummary, ScreenStats, SeedComparison, StrategyStats, Summary,
};
