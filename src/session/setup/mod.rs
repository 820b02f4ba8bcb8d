//! Building what a session runs from a config: its evaluator, the language
//! models of the agent, any strategy (the LLM-guided one included), the
//! knowledge base, and whole sessions ready to run: new, resumed or
//! replayed ([`start`]), with the provenance of their inputs
//! ([`provenance`]). The command line only parses flags, calls these and
//! prints.

pub mod provenance;
pub mod start;

pub use provenance::{Check, Difference, Provenance, ProvenanceError};
pub use start::{
    default_run_dir, fresh, knowledge_base_to_write, replay, resume, Replay, ReplayCheck,
    ReplayError, Resumed, SetupError,
};

use super::SessionError;
use crate::agent::{self, Models};
use crate::config::{Config, KbConfig};
use crate::eval::{self, Evaluator};
use crate::knowledge::{EvaluatorInfo, KbError, KnowledgeBase, OpenOptions};
use crate::llm::{self, ChatModel, Recorded, ReplayModel};
use crate::strategy::{self, Strategy, StrategyKind};
use std::sync::Arc;

/// Where the agent's LLM replies come from.
#[derive(Debug, Clone)]
pub enum LlmSource {
    /// The config's profiles (`agent.llm_evolution`, `agent.llm_inspiration`),
    /// or one profile for both stages when `profile` names it.
    Profiles {
        /// A profile overriding both stages' (`--llm`).
        profile: Option<String>,
    },
    /// Recorded replies, in order, skipping the first `skip` (those a resumed
    /// session already used). `strict`: a call that differs from the
    /// recorded one is an error (replays), else the reply is used anyway.
    Recorded {
        /// The replies.
        replies: Vec<Recorded>,
        /// Fail on a call that does not match its recording.
        strict: bool,
        /// Replies already used.
        skip: usize,
    },
}

impl LlmSource {
    /// The configured profiles.
    pub fn profiles() -> Self {
        LlmSource::Profiles { profile: None }
    }
}

/// The evaluator the config names, with its settings.
pub fn evaluator(cfg: &Config) -> Result<Box<dyn Evaluator>, SessionError> {
    Ok(eval::build(cfg.search.evaluator, &cfg.evaluator)?)
}

/// The knowledge base at `kb.dir` to read (no lock taken), or `None` when
/// the folder does not exist.
pub fn knowledge_base_to_read(kb: &KbConfig) -> Result<Option<KnowledgeBase>, KbError> {
    if !kb.dir.is_dir() {
        return Ok(None);
    }
    KnowledgeBase::open(
        &kb.dir,
        OpenOptions {
            skip_bad_lines: kb.skip_bad_lines,
            ..Default::default()
        },
    )
    .map(Some)
}

fn profile(cfg: &Config, name: &str) -> Result<Arc<dyn ChatModel>, SessionError> {
    let name = Some(name).filter(|n| !n.is_empty());
    Ok(Arc::from(llm::from_profile(&cfg.llm, name)?))
}

/// The language models of the agent's two stages (one model when both
/// stages name the same profile).
pub fn models(cfg: &Config, source: &LlmSource) -> Result<Models, SessionError> {
    match source {
        LlmSource::Recorded {
            replies,
            strict,
            skip,
        } => {
            let rest: Vec<Recorded> = replies.iter().skip(*skip).cloned().collect();
            Ok(Models::same(Arc::new(ReplayModel::new(
                "replay", rest, *strict,
            ))))
        }
        LlmSource::Profiles { profile: over } => {
            let evo_name = over
                .clone()
                .unwrap_or_else(|| cfg.agent.llm_evolution.clone());
            let ins_name = over
                .clone()
                .unwrap_or_else(|| cfg.agent.llm_inspiration.clone());
            let evolution = profile(cfg, &evo_name)?;
            let inspiration = if ins_name == evo_name {
                evolution.clone()
            } else {
                profile(cfg, &ins_name)?
            };
            Ok(Models {
                evolution,
                inspiration,
            })
        }
    }
}

/// The strategy the config names. The agent gets its models from `llm` and
/// its starting architectures and insights from the knowledge base at
/// `kb.dir` (read only; none when the folder does not exist). `session`
/// prefixes the ids of the records and insights it makes.
pub fn strategy(
    cfg: &Config,
    session: &str,
    evaluator: &EvaluatorInfo,
    llm: &LlmSource,
) -> Result<Box<dyn Strategy>, SessionError> {
    let screen = screen(cfg)?;
    if cfg.search.strategy == StrategyKind::Rea {
        if let Some(screen) = screen {
            let mut rea = cfg.strategy.rea;
            rea.warmup = cfg.search.screen.warmup;
            return Ok(Box::new(
                strategy::RegularizedEvolution::new(cfg.search.space, rea)
                    .with_screen(screen)
                    .with_objectives(cfg.search.objectives.clone()),
            ));
        }
    }
    if cfg.search.strategy != StrategyKind::Seki {
        return Ok(strategy::build_with(
            cfg.search.strategy,
            cfg.search.space,
            cfg.strategy.rea,
            &cfg.search.objectives,
        )?);
    }
    let kb = knowledge_base_to_read(&cfg.kb)?;
    let agent = agent::build(
        &cfg.agent,
        cfg.search.space,
        session,
        evaluator,
        kb.as_ref(),
        models(cfg, llm)?,
    )?
    .with_objectives(cfg.search.objectives.clone())
    .with_fidelity(cfg.rungs().note());
    Ok(match screen {
        Some(screen) => Box::new(
            agent
                .with_screen(screen)
                .with_screen_warmup(cfg.search.screen.warmup),
        ),
        None => Box::new(agent),
    })
}

/// The hard budgets `[search.constraints]` sets, with the cost model of
/// the configured evaluator (which a Pareto search's `search.objectives`
/// need too); `None` without either. A budget no
/// architecture of the space meets is refused here, before anything runs:
/// `invalid` makes the error for the key (`search.constraints.max_params`)
/// with the smallest figure the space can reach.
pub fn budget(
    cfg: &Config,
    invalid: &dyn Fn(&str, String) -> crate::config::ConfigError,
) -> Result<Option<eval::Budget>, SessionError> {
    let constraints = cfg.search.constraints;
    let objectives = &cfg.search.objectives;
    if constraints.is_empty() && objectives.is_empty() {
        return Ok(None);
    }
    let model = eval::CostModel::for_evaluator(
        cfg.search.evaluator,
        &cfg.evaluator,
        constraints.needs_latency() || objectives.contains(&eval::Objective::Latency),
    )?;
    let budget = eval::Budget { constraints, model };
    budget
        .reachable(cfg.search.space)
        .map_err(|(key, msg)| invalid(&format!("search.constraints.{key}"), msg))?;
    Ok(Some(budget))
}

/// The zero-cost screen `[search.screen]` asks for: a `seki proxy zc` scores
/// file joined to the NAS-Bench-201 table, or proxies computed as the
/// session goes on the network the evaluator trains (for the table: the
/// benchmark's network on a batch of the Candle evaluator's dataset).
pub fn screen(cfg: &Config) -> Result<Option<Box<dyn strategy::Screen>>, SessionError> {
    use crate::eval::zero_cost::{ProbeInput, Proxy, ZcConfig};
    let s = &cfg.search.screen;
    if !s.enabled() {
        return Ok(None);
    }
    if let Some(file) = &s.file {
        let table =
            eval::Nb201Table::load(&cfg.evaluator.nb201.table).map_err(eval::EvalError::from)?;
        let csv = strategy::ProxyCsv::load(file, &table).map_err(strategy::StrategyError::from)?;
        let screen = csv
            .screen(&s.proxies)
            .map_err(strategy::StrategyError::from)?;
        return Ok(Some(Box::new(screen)));
    }
    let proxies = s
        .proxies
        .iter()
        .map(|p| p.parse::<Proxy>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| strategy::StrategyError::from(strategy::ScreenError::Worker(e)))?;
    let mut zc = ZcConfig::new(cfg.evaluator.candle.clone());
    zc.candle.timeout_seconds = s.timeout_seconds;
    zc.batch = s.batch;
    zc.input = if s.noise_input {
        ProbeInput::Noise
    } else {
        ProbeInput::Dataset
    };
    if cfg.search.evaluator == eval::EvaluatorKind::Nb201 {
        zc = zc.nb201_benchmark();
    }
    let program = std::env::current_exe().map_err(|e| {
        strategy::StrategyError::from(strategy::ScreenError::Worker(format!(
            "cannot locate the seki executable: {e}"
        )))
    })?;
    let screen =
        strategy::LiveScreen::new(program, zc, proxies).map_err(strategy::StrategyError::from)?;
    Ok(Some(Box::new(screen)))
}
