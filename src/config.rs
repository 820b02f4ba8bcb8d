//! `config.toml`: every setting, with defaults, validated on load.
//!
//! Unknown keys and bad values are errors that name the file, the line and
//! the key. Relative paths are resolved against the config file's folder.

use crate::space::Space;
use crate::strategy::{ReaSettings, StrategyKind};

// Each layer owns its settings; this file reads the file and hands each
// layer its part. Re-exported here so `seki::config::*` names every section.
pub use crate::agent::AgentConfig;
pub use crate::eval::{EvaluatorConfig, EvaluatorKind, Nb201Config};
pub use crate::executor::{ExecutorConfig, ExecutorKind, SlurmConfig};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// A configuration problem.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read or written.
    #[error("cannot read config {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML or has unknown keys or wrongly typed values.
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message (with line and column).
        message: String,
    },
    /// A value is out of range or settings contradict each other.
    #[error("{path}{line}: {key}: {message}")]
    Invalid {
        /// The file (or `command line`).
        path: String,
        /// `:N` when the key's line is known.
        line: String,
        /// The offending key, `section.key`.
        key: String,
        /// What is wrong.
        message: String,
    },
}

/// Which evaluated architectures a session adds to the knowledge base.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KbRecords {
    /// Every successful evaluation.
    All,
    /// Each evaluation that improves on the session's best so far.
    Improvements,
    /// Nothing.
    None,
}

/// `[kb]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KbConfig {
    /// Knowledge-base folder.
    pub dir: PathBuf,
    /// Load the good lines of a knowledge base with malformed lines.
    pub skip_bad_lines: bool,
}

impl Default for KbConfig {
    fn default() -> Self {
        KbConfig {
            dir: PathBuf::from("knowledge"),
            skip_bad_lines: false,
        }
    }
}

/// `[search]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SearchConfig {
    /// Search space.
    pub space: Space,
    /// Strategy.
    pub strategy: StrategyKind,
    /// Evaluator.
    pub evaluator: EvaluatorKind,
    /// Seed of the session's random stream.
    pub seed: u64,
    /// Budget: number of evaluations (duplicates are not evaluated and do not count).
    pub max_evaluations: usize,
    /// Budget: wall-clock seconds over the whole session, resumes included (0: none).
    pub max_seconds: f64,
    /// Budget: LLM tokens (prompt + completion) over the session (0: none).
    pub max_tokens: u64,
    /// Budget: LLM cost in US dollars over the session (0: none).
    pub max_cost_usd: f64,
    /// Folder under which each session gets its run directory.
    pub runs_dir: PathBuf,
    /// Which results enter the knowledge base.
    pub kb_records: KbRecords,
    /// Stop when this many proposals in a row were all already evaluated.
    pub max_consecutive_duplicates: usize,
    /// Contenders: at the end of the session the best this many are
    /// evaluated again with other seeds, and the session returns the best by
    /// the mean (0: off). Only for evaluators whose repeats differ (training;
    /// the table with noise). The evaluation budget counts these evaluations.
    pub contenders: usize,
    /// Further evaluations of each contender (seeds `seed + 1`, `seed + 2`, ...).
    pub contender_repeats: usize,
    /// Also re-evaluate at once when a new best is within noise of the old
    /// one (both of them, `contender_repeats` times in all).
    pub reevaluate_close_bests: bool,
    /// Two scores are distinguishable when they differ by more than this many
    /// standard errors of their difference.
    pub distinguish_z: f64,
    /// `[search.screen]`: zero-cost proxies that choose what is trained.
    pub screen: crate::strategy::ScreenSettings,
    /// `[search.constraints]`: hard budgets on parameters, FLOPs and CPU
    /// latency; a proposal over any is refused before it is evaluated.
    pub constraints: crate::eval::Constraints,
    /// Two or three objectives for a Pareto search (`["accuracy:max",
    /// "params:min"]`); empty: accuracy alone.
    pub objectives: Vec<crate::eval::Objective>,
    /// `[[search.rungs]]`: fidelity rungs, cheapest first (empty: one rung,
    /// the evaluator's own settings). Each entry changes some settings of
    /// the rung before it.
    pub rungs: Vec<crate::eval::RungConfig>,
    /// The fraction of a rung's results promoted to the next rung
    /// (asynchronous successive halving).
    pub promote: f64,
}

impl Default for SearchConfig {
    fn default() -> Self {
        SearchConfig {
            space: Space::Nb201,
            strategy: StrategyKind::Rea,
            evaluator: EvaluatorKind::Nb201,
            seed: 0,
            max_evaluations: 100,
            max_seconds: 0.0,
            max_tokens: 0,
            max_cost_usd: 0.0,
            runs_dir: PathBuf::from("runs"),
            kb_records: KbRecords::Improvements,
            max_consecutive_duplicates: 1000,
            contenders: 0,
            contender_repeats: 2,
            reevaluate_close_bests: false,
            distinguish_z: 1.96,
            screen: Default::default(),
            constraints: Default::default(),
            objectives: Vec::new(),
            rungs: Vec::new(),
            promote: 1.0 / 3.0,
        }
    }
}

/// `[strategy]`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StrategyConfig {
    /// `[strategy.rea]`
    pub rea: ReaSettings,
}

/// `[bench]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BenchConfig {
    /// Independent seeded sessions per strategy.
    pub seeds: usize,
    /// Evaluations per session.
    pub budget: usize,
}

impl Default for BenchConfig {
    fn default() -> Self {
        BenchConfig {
            seeds: 20,
            budget: 100,
        }
    }
}

/// The whole configuration.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// `[kb]`
    pub kb: KbConfig,
    /// `[search]`
    pub search: SearchConfig,
    /// `[strategy]`
    pub strategy: StrategyConfig,
    /// `[evaluator]`
    pub evaluator: EvaluatorConfig,
    /// `[executor]`
    pub executor: ExecutorConfig,
    /// `[bench]`
    pub bench: BenchConfig,
    /// `[agent]`
    pub agent: AgentConfig,
    /// `[llm]`: LLM backend profiles.
    pub llm: crate::llm::profile::LlmConfig,
}

/// A loaded configuration and where it came from.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The settings, relative paths already resolved.
    pub config: Config,
    /// The file, if one was read.
    pub path: Option<PathBuf>,
    text: String,
}

impl Loaded {
    /// An error about `key` (`section.key`), with the line where the file sets it.
    pub fn invalid(&self, key: &str, message: impl Into<String>) -> ConfigError {
        let line = line_of(&self.text, key)
            .map(|l| format!(":{l}"))
            .unwrap_or_default();
        ConfigError::Invalid {
            path: self.path.as_ref().map_or_else(
                || "built-in defaults".to_string(),
                |p| p.display().to_string(),
            ),
            line,
            key: key.to_string(),
            message: message.into(),
        }
    }

    /// Check values and their combinations.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let c = &self.config;
        if c.search.max_evaluations == 0 {
            return Err(self.invalid("search.max_evaluations", "must be at least 1"));
        }
        if !(c.search.max_seconds >= 0.0 && c.search.max_seconds.is_finite()) {
            return Err(self.invalid(
                "search.max_seconds",
                "must be 0 (no limit) or a positive number of seconds",
            ));
        }
        if !(c.search.max_cost_usd >= 0.0 && c.search.max_cost_usd.is_finite()) {
            return Err(self.invalid(
                "search.max_cost_usd",
                "must be 0 (no limit) or a positive amount",
            ));
        }
        if c.search.max_consecutive_duplicates == 0 {
            return Err(self.invalid(
                "search.max_consecutive_duplicates",
                "must be at least 1 (the session stops after this many duplicate proposals in a row)",
            ));
        }
        if let Err((key, msg)) = c.search.constraints.check() {
            return Err(self.invalid(&format!("search.constraints.{key}"), msg));
        }
        if let Err(msg) = crate::eval::cost::check_objectives(&c.search.objectives) {
            return Err(self.invalid("search.objectives", msg));
        }
        if let Err((key, msg)) = c.try_rungs() {
            return Err(self.invalid(&format!("search.{key}"), msg));
        }

        if c.search.screen.batch == 0 {
            return Err(self.invalid("search.screen.batch", "must be at least 1 image"));
        }
        if let Err((key, msg)) = c.search.screen.check() {
            return Err(self.invalid(&format!("search.screen.{key}"), msg));
        }
        if c.search.screen.enabled() && c.search.strategy == StrategyKind::Random {
            return Err(self.invalid(
                "search.screen.proxies",
                "random search trains what it draws; a screen needs strategy rea or seki",
            ));
        }
        if c.search.screen.file.is_some() && c.search.evaluator != EvaluatorKind::Nb201 {
            return Err(self.invalid(
                "search.screen.file",
                "a proxy scores file is joined to the NAS-Bench-201 table; with the candle evaluator the proxies are computed as the session goes (leave file out)",
            ));
        }
        if c.strategy.rea.population == 0 {
            return Err(self.invalid("strategy.rea.population", "must be at least 1"));
        }
        if c.strategy.rea.sample == 0 || c.strategy.rea.sample > c.strategy.rea.population {
            return Err(self.invalid(
                "strategy.rea.sample",
                format!(
                    "must be between 1 and the population size ({})",
                    c.strategy.rea.population
                ),
            ));
        }
        if c.strategy.rea.screen_mutations == 0 {
            return Err(self.invalid(
                "strategy.rea.screen_mutations",
                "must be at least 1 (1: off)",
            ));
        }
        if c.search.evaluator == EvaluatorKind::Nb201 && c.search.space != Space::Nb201 {
            return Err(self.invalid(
                "search.evaluator",
                format!(
                    "the nb201 evaluator scores the nb201 space only, but search.space is {}",
                    c.search.space
                ),
            ));
        }
        if !(c.search.distinguish_z >= 0.0 && c.search.distinguish_z.is_finite()) {
            return Err(self.invalid(
                "search.distinguish_z",
                "must be 0 or a positive number of standard errors",
            ));
        }
        if c.search.contenders > 0 && c.search.contender_repeats == 0 {
            return Err(self.invalid(
                "search.contender_repeats",
                "must be at least 1 when search.contenders is above 0",
            ));
        }
        if c.search.contenders * c.search.contender_repeats >= c.search.max_evaluations {
            return Err(self.invalid(
                "search.contenders",
                format!(
                    "{} contenders x {} repeats would use the whole budget of {} evaluations; the search needs some",
                    c.search.contenders, c.search.contender_repeats, c.search.max_evaluations
                ),
            ));
        }
        let nb = &c.evaluator.nb201;
        if !(nb.noise_sd >= 0.0 && nb.noise_sd.is_finite()) {
            return Err(self.invalid(
                "evaluator.nb201.noise_sd",
                "must be 0 (no noise) or a positive number of points",
            ));
        }
        let a = &c.agent;
        if !(a.tie_z >= 0.0 && a.tie_z.is_finite()) {
            return Err(self.invalid(
                "agent.tie_z",
                "must be 0 (off) or a positive number of standard errors",
            ));
        }
        if a.top_k == 0 {
            return Err(self.invalid("agent.top_k", "must be at least 1"));
        }
        if a.sample == 0 || a.sample > a.top_k {
            return Err(self.invalid(
                "agent.sample",
                format!("must be between 1 and agent.top_k ({})", a.top_k),
            ));
        }
        if a.warm_seeds == 0 {
            return Err(self.invalid(
                "agent.warm_seeds",
                "must be 1 or more (the first line's seed is one)",
            ));
        }
        if !(1..=8).contains(&a.candidates) {
            return Err(self.invalid(
                "agent.candidates",
                format!(
                    "must be between 1 and 8 architectures per reply (got {})",
                    a.candidates
                ),
            ));
        }
        if c.search.screen.enabled() && c.search.strategy == StrategyKind::Seki && a.candidates < 2
        {
            tracing::warn!(
                "search.screen: with agent.candidates = 1 each reply has one architecture, so the screen only chooses the warm-up's seeds and the non-LLM operators' children; set agent.candidates to 2 or more for it to choose among the LLM's"
            );
        }
        if !(2..=26).contains(&a.ranked_candidates) {
            return Err(self.invalid(
                "agent.ranked_candidates",
                format!(
                    "must be between 2 and 26 mutations (one letter each; got {})",
                    a.ranked_candidates
                ),
            ));
        }
        if a.prune_refresh == 0 {
            return Err(self.invalid(
                "agent.prune_refresh",
                "must be at least 1 pruned evolution per prune call",
            ));
        }
        if a.evolution_iterations + a.inspiration_iterations == 0 {
            return Err(self.invalid(
                "agent.evolution_iterations",
                "agent.evolution_iterations and agent.inspiration_iterations cannot both be 0",
            ));
        }
        for (key, t) in [
            ("agent.temperature_evolution", a.temperature_evolution),
            ("agent.temperature_inspiration", a.temperature_inspiration),
        ] {
            if !(0.0..=5.0).contains(&t) {
                return Err(self.invalid(key, format!("must be between 0 and 5, found {t}")));
            }
        }
        if a.max_tokens_text == 0 || a.max_tokens_arch == 0 {
            return Err(self.invalid(
                "agent.max_tokens_arch",
                "agent.max_tokens_text and agent.max_tokens_arch must be at least 1",
            ));
        }
        if let Err((key, message)) = c.executor.check() {
            return Err(self.invalid(&format!("executor.{key}"), message));
        }
        if a.islands == 0 {
            return Err(self.invalid("agent.islands", "must be at least 1"));
        }
        if let Err((key, message)) = c.evaluator.candle.check() {
            return Err(self.invalid(&format!("evaluator.candle.{key}"), message));
        }
        if let Some((key, message)) = c.llm.problems().into_iter().next() {
            return Err(self.invalid(&key, message));
        }
        if c.bench.seeds == 0 || c.bench.budget == 0 {
            return Err(self.invalid(
                "bench.seeds",
                "bench.seeds and bench.budget must be at least 1",
            ));
        }
        Ok(())
    }

    /// The effective settings as TOML (for a run directory's snapshot).
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(&self.config).unwrap_or_default()
    }
}

/// Find the 1-based line where `section.key` is set in TOML text.
fn line_of(text: &str, dotted: &str) -> Option<usize> {
    let (section, key) = dotted.rsplit_once('.')?;
    let mut current = String::new();
    // `[[a.b]]` tables are named `a.b[1]`, `a.b[2]`, ... in their order.
    let mut arrays: std::collections::HashMap<String, usize> = Default::default();
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if let Some(s) = t.strip_prefix("[[").and_then(|s| s.strip_suffix("]]")) {
            let n = arrays.entry(s.trim().to_string()).or_insert(0);
            *n += 1;
            current = format!("{}[{n}]", s.trim());
        } else if let Some(s) = t.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
            current = s.trim().to_string();
        } else if current == section {
            if let Some((k, _)) = t.split_once('=') {
                if k.trim() == key {
                    return Some(i + 1);
                }
            }
        }
    }
    None
}

fn resolve(base: &Path, p: &mut PathBuf) {
    if p.is_relative() {
        *p = base.join(&*p);
    }
}

impl Config {
    /// The fidelity rungs `[[search.rungs]]` and `search.promote` set over
    /// the evaluator's settings, or the first problem with them.
    pub fn try_rungs(&self) -> Result<crate::eval::Rungs, crate::eval::rung::RungProblem> {
        crate::eval::Rungs::build(
            self.search.evaluator,
            &self.evaluator,
            &self.search.rungs,
            self.search.promote,
        )
    }

    /// The fidelity rungs of a validated config (one rung, the
    /// evaluator's own, should they not build).
    pub fn rungs(&self) -> crate::eval::Rungs {
        self.try_rungs()
            .unwrap_or_else(|_| crate::eval::Rungs::single(self.search.evaluator, &self.evaluator))
    }

    /// Parse TOML text; `path` names the file in errors, and relative paths
    /// are resolved against `base`.
    pub fn parse(text: &str, path: Option<&Path>, base: &Path) -> Result<Loaded, ConfigError> {
        let mut config: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path
                .map(Path::to_path_buf)
                .unwrap_or_else(|| PathBuf::from("(config)")),
            message: e.to_string().trim_end().to_string(),
        })?;
        resolve(base, &mut config.kb.dir);
        resolve(base, &mut config.search.runs_dir);
        resolve(base, &mut config.evaluator.nb201.table);
        if !config.agent.prompts_dir.as_os_str().is_empty() {
            resolve(base, &mut config.agent.prompts_dir);
        }
        resolve(base, &mut config.evaluator.candle.data_dir);
        if let Some(f) = config.search.screen.file.as_mut() {
            resolve(base, f);
        }
        for p in [
            &mut config.executor.slurm.program,
            &mut config.executor.slurm.bin_dir,
        ] {
            if !p.as_os_str().is_empty() {
                resolve(base, p);
            }
        }
        config.llm.finish(base);
        let loaded = Loaded {
            config,
            path: path.map(Path::to_path_buf),
            text: text.to_string(),
        };
        loaded.validate()?;
        Ok(loaded)
    }

    /// Load `path`, or `./config.toml` when it exists, or the built-in defaults.
    pub fn load(path: Option<&Path>) -> Result<Loaded, ConfigError> {
        let candidate = match path {
            Some(p) => Some(p.to_path_buf()),
            None => Some(PathBuf::from("config.toml")).filter(|p| p.is_file()),
        };
        match candidate {
            Some(p) => {
                let text = std::fs::read_to_string(&p).map_err(|source| ConfigError::Io {
                    path: p.clone(),
                    source,
                })?;
                let base = p
                    .parent()
                    .filter(|b| !b.as_os_str().is_empty())
                    .unwrap_or(Path::new("."));
                let base = std::path::absolute(base).unwrap_or_else(|_| base.to_path_buf());
                Self::parse(&text, Some(&p), &base)
            }
            None => {
                let base = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
                Self::parse("", None, &base)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate_and_resolve_paths() {
        let l = Config::parse("", None, Path::new("/base")).unwrap();
        assert_eq!(l.config.kb.dir, PathBuf::from("/base/knowledge"));
        assert_eq!(
            l.config.strategy.rea,
            ReaSettings {
                population: 20,
                sample: 5,
                ..ReaSettings::default()
            }
        );
    }

    #[test]
    fn unknown_key_names_key_and_line() {
        let e = Config::parse(
            "[search]\nseed = 1\nbudgett = 5\n",
            Some(Path::new("c.toml")),
            Path::new("/"),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("c.toml") && e.contains("line 3") && e.contains("budgett"),
            "{e}"
        );
    }

    #[test]
    fn bad_values_name_key_and_line() {
        let e = Config::parse(
            "[search]\nspace = \"resnet\"\n",
            Some(Path::new("c.toml")),
            Path::new("/"),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("line 2") && e.contains("resnet"), "{e}");
        let e = Config::parse(
            "\n[strategy.rea]\npopulation = 4\nsample = 9\n",
            Some(Path::new("c.toml")),
            Path::new("/"),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("c.toml:4: strategy.rea.sample"), "{e}");
        let e = Config::parse(
            "[search]\nspace = \"darts\"\n",
            Some(Path::new("c.toml")),
            Path::new("/"),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("search.evaluator") && e.contains("nb201 space only"),
            "{e}"
        );
    }

    #[test]
    fn candidates_and_screens_that_cannot_work_are_refused_with_the_key() {
        let bad = |text: &str| {
            Config::parse(text, Some(Path::new("c.toml")), Path::new("/"))
                .unwrap_err()
                .to_string()
        };
        let e = bad("[agent]\ncandidates = 20\n");
        assert!(
            e.contains("c.toml:2: agent.candidates") && e.contains("20"),
            "{e}"
        );
        let e = bad("[agent]\nwarm_seeds = 0\n");
        assert!(e.contains("c.toml:2: agent.warm_seeds"), "{e}");
        let e = bad("[search.screen]\nproxies = [\"synflow\", \"nope\"]\n");
        assert!(
            e.contains("search.screen.proxies") && e.contains("nope"),
            "{e}"
        );
        let e = bad("[search]\nstrategy = \"random\"\n[search.screen]\nproxies = [\"synflow\"]\n");
        assert!(
            e.contains("search.screen.proxies") && e.contains("random"),
            "{e}"
        );
        let e = bad("[search.screen]\nproxies = [\"synflow\"]\nfile = \"/no/such.csv\"\n");
        assert!(
            e.contains("search.screen.file") && e.contains("/no/such.csv"),
            "{e}"
        );
    }

    #[test]
    fn settings_that_would_be_clamped_are_refused_with_key_and_line() {
        for (text, key) in [
            (
                "[search]\nmax_consecutive_duplicates = 0\n",
                "c.toml:2: search.max_consecutive_duplicates",
            ),
            (
                "[search.screen]\nbatch = 0\n",
                "c.toml:2: search.screen.batch",
            ),
            (
                "[strategy.rea]\npopulation = 4\nsample = 2\nscreen_mutations = 0\n",
                "c.toml:4: strategy.rea.screen_mutations",
            ),
            (
                "[strategy.rea]\npopulation = 0\nsample = 1\n",
                "c.toml:2: strategy.rea.population",
            ),
            (
                "[strategy.rea]\npopulation = 4\nsample = 0\n",
                "c.toml:3: strategy.rea.sample",
            ),
            (
                "[agent]\nranked_candidates = 1\n",
                "c.toml:2: agent.ranked_candidates",
            ),
            (
                "[agent]\nranked_candidates = 27\n",
                "c.toml:2: agent.ranked_candidates",
            ),
            (
                "[agent]\nprune_refresh = 0\n",
                "c.toml:2: agent.prune_refresh",
            ),
            ("[agent]\ntop_k = 0\n", "c.toml:2: agent.top_k"),
            ("[agent]\nislands = 0\n", "c.toml:2: agent.islands"),
            ("[agent]\ncandidates = 0\n", "c.toml:2: agent.candidates"),
            ("[executor]\nworkers = 0\n", "c.toml:2: executor.workers"),
            (
                "[executor.slurm]\ncpus_per_task = 0\n",
                "c.toml:2: executor.slurm.cpus_per_task",
            ),
            (
                "[evaluator.candle]\nbatch_size = 0\n",
                "c.toml:2: evaluator.candle.batch_size",
            ),
        ] {
            let e = Config::parse(text, Some(Path::new("c.toml")), Path::new("/"))
                .unwrap_err()
                .to_string();
            assert!(e.contains(key), "{text:?}: {e}");
        }
        // The smallest accepted values load.
        Config::parse(
            "[search]\nmax_consecutive_duplicates = 1\n[search.screen]\nbatch = 1\n[strategy.rea]\npopulation = 4\nsample = 2\nscreen_mutations = 1\n[agent]\nranked_candidates = 2\nprune_refresh = 1\n",
            None,
            Path::new("/"),
        )
        .unwrap();
    }

    #[test]
    fn candle_settings_are_read_and_bad_values_name_key_and_line() {
        use crate::eval::candle::DeviceKind;
        let l = Config::parse(
            "[evaluator.candle]\nepochs = 2\ndevice = \"auto\"\ndata_dir = \"d\"\n",
            None,
            Path::new("/b"),
        )
        .unwrap();
        assert_eq!(l.config.evaluator.candle.epochs, 2);
        assert_eq!(l.config.evaluator.candle.device, DeviceKind::Auto);
        assert_eq!(l.config.evaluator.candle.data_dir, Path::new("/b/d"));
        for (text, key) in [
            (
                "[evaluator.candle]\n\nchannels = 7\n",
                "c.toml:3: evaluator.candle.channels",
            ),
            (
                "[evaluator.candle]\nlr = 0.0\n",
                "c.toml:2: evaluator.candle.lr",
            ),
            (
                "[evaluator.candle]\nnesterov = true\nmomentum = 0.0\n",
                "evaluator.candle.nesterov",
            ),
            (
                "[evaluator.candle]\ntimeout_seconds = -1.0\n",
                "evaluator.candle.timeout_seconds",
            ),
        ] {
            let e = Config::parse(text, Some(Path::new("c.toml")), Path::new("/"))
                .unwrap_err()
                .to_string();
            assert!(e.contains(key), "{e}");
        }
        let e = Config::parse(
            "[evaluator.candle]\noptimizer = \"lbfgs\"\n",
            Some(Path::new("c.toml")),
            Path::new("/"),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("lbfgs") && e.contains("line 2"), "{e}");
    }

    #[test]
    fn snapshot_reparses_to_the_same_config() {
        let l = Config::parse("[search]\nseed = 7\n", None, Path::new("/b")).unwrap();
        let again = Config::parse(&l.to_toml(), None, Path::new("/elsewhere")).unwrap();
        assert_eq!(again.config, l.config);
    }
}
