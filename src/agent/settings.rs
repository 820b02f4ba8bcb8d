//! `[agent]`: the SEKI strategy's settings.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// What a child within noise of the current architecture (a tie) does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnTie {
    /// It replaces the current architecture if its score is higher at all
    /// (as without ties); only the words told to the LLM say "within noise".
    #[default]
    Higher,
    /// The current architecture stays: only a clear improvement replaces it.
    Keep,
    /// It replaces the current architecture, higher or lower (a neutral move).
    Child,
}

/// Whether prompts show the insights whose claim the evaluated architectures
/// leave undecided (a difference within the scores' noise).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UndecidedInsights {
    /// Shown, marked "undecided" with their difference ± its standard error.
    Show,
    /// Left out of prompts until the data decide them (they stay in the
    /// knowledge base and the reports). The default: as accurate as showing
    /// them over ten paired seeds, in about three quarters of the time
    /// (docs/noise.md).
    #[default]
    Hide,
}

/// `[agent]`: the SEKI strategy (self-evolution and knowledge inspiration).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AgentConfig {
    /// k: inspiration samples come from the top-k architectures.
    pub top_k: usize,
    /// ξ: architectures sampled from the top-k for one inspiration.
    pub sample: usize,
    /// A warm start from a knowledge base of another dataset or protocol:
    /// its best records evaluated first, as a population is seeded (1: only
    /// the first line's seed).
    pub warm_seeds: usize,
    /// λ: self-evolution iterations per round.
    pub evolution_iterations: usize,
    /// γ: knowledge-inspiration iterations per round.
    pub inspiration_iterations: usize,
    /// LLM-ranked mutations per round: the LLM picks one of
    /// `ranked_candidates` single-edge mutations of the current architecture
    /// (one prefill and a one-letter reply).
    pub ranked_iterations: usize,
    /// Mutations listed for a ranked-mutation choice (2 to 26).
    pub ranked_candidates: usize,
    /// Crossovers per round: a child of two architectures sampled from the
    /// top-k, each node (DARTS) or edge (NB201) from one of them; no LLM.
    pub crossover_iterations: usize,
    /// LLM-pruned evolutions per round: a tournament-selected parent of the
    /// session's recent results is mutated, avoiding every op the active
    /// "hurts" claims name at their place (the LLM names them in a `prune`
    /// call; they are scored on the data like every insight, and a
    /// contradicted one stops pruning). One LLM call per `prune_refresh` of
    /// them, none in between.
    pub pruned_iterations: usize,
    /// Pruned evolutions between two `prune` calls.
    pub prune_refresh: usize,
    /// Refinements of the current line shown in self-evolution prompts.
    pub history: usize,
    /// Lines of refinement (islands): each has its own current architecture
    /// and history, all share the pool of evaluated architectures and the
    /// insights; proposals go to them in turn. More than 1 keeps several
    /// evaluations in flight from refining the same architecture.
    pub islands: usize,
    /// Insights shown in prompts (most recent active ones).
    pub insights_in_prompt: usize,
    /// Whether prompts show insights the data leave undecided.
    pub undecided_insights: UndecidedInsights,
    /// Constrain architecture replies to the hard budgets where the space's
    /// costs allow it (NAS-Bench-201's parameters and FLOPs), so that no
    /// reply is over them; false: replies are checked after decoding and
    /// the LLM is told which were refused.
    pub decode_within_budget: bool,
    /// Architectures asked for in one LLM reply (1 to 8), one per line:
    /// the first not evaluated before is proposed at once, the other novel
    /// ones next, in order; duplicates never reach the evaluator.
    pub candidates: usize,
    /// Repair prompts after an unparsable reply before falling back to a mutation.
    pub max_repairs: usize,
    /// Times to re-ask when the LLM proposes an evaluated architecture.
    pub max_duplicate_retries: usize,
    /// LLM profile for self-evolution ("" = llm.default_profile).
    pub llm_evolution: String,
    /// LLM profile for knowledge inspiration ("" = llm.default_profile).
    pub llm_inspiration: String,
    /// Sampling temperature for self-evolution.
    pub temperature_evolution: f64,
    /// Sampling temperature for knowledge inspiration.
    pub temperature_inspiration: f64,
    /// Most tokens for a strategy or pattern reply.
    pub max_tokens_text: usize,
    /// Most tokens for an architecture reply.
    pub max_tokens_arch: usize,
    /// Folder of prompt templates overriding the built-in ones ("" = built-in).
    pub prompts_dir: PathBuf,
    /// Differences within this many standard errors (of the difference) are
    /// ties in the agent's decisions: a child within noise of its parent is
    /// reported to the LLM as "within noise", not "improved" (0: off, any
    /// higher score is an improvement).
    pub tie_z: f64,
    /// What a tie does to the current architecture: `higher` (replaced when
    /// the child's score is higher at all), `keep` or `child`.
    pub on_tie: OnTie,
    /// The objective stated to the LLM.
    pub objective: String,
    /// Constraints stated to the LLM ("" = none).
    pub constraints: String,
}

impl Default for AgentConfig {
    fn default() -> Self {
        AgentConfig {
            top_k: 10,
            warm_seeds: 1,
            sample: 3,
            evolution_iterations: 3,
            inspiration_iterations: 1,
            ranked_iterations: 0,
            ranked_candidates: 6,
            crossover_iterations: 0,
            pruned_iterations: 0,
            prune_refresh: 10,
            history: 5,
            islands: 1,
            insights_in_prompt: 5,
            undecided_insights: UndecidedInsights::Hide,
            decode_within_budget: true,
            candidates: 1,
            max_repairs: 2,
            max_duplicate_retries: 2,
            llm_evolution: String::new(),
            llm_inspiration: String::new(),
            temperature_evolution: 0.7,
            temperature_inspiration: 0.9,
            max_tokens_text: 160,
            max_tokens_arch: 400,
            prompts_dir: PathBuf::new(),
            tie_z: 1.0,
            on_tie: OnTie::Higher,
            objective: "maximise validation accuracy".into(),
            constraints: String::new(),
        }
    }
}
