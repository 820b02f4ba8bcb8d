//! Named LLM profiles (`[llm]` and `[llm.profiles.NAME]` in `config.toml`)
//! and the factory that turns one into a backend.
//!
//! ```toml
//! [llm]
//! default_profile = "local"
//! [llm.profiles.local]
//! kind = "gguf"
//! model = "models/SmolLM2-135M-Instruct.Q4_1.gguf"
//! [llm.profiles.openai]
//! kind = "openai"
//! base_url = "https://api.openai.com/v1"
//! model = "gpt-4o-mini"
//! api_key_env = "OPENAI_API_KEY"
//! ```
//!
//! The profile `local` exists even when the file does not define it.

use super::{ChatModel, LlmError};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The default model file, relative to the config file's folder.
pub const DEFAULT_MODEL: &str = "models/SmolLM2-135M-Instruct.Q4_1.gguf";

/// The command that fetches the default model.
pub const FETCH_COMMAND: &str = "scripts/setup.sh";

/// `[llm]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LlmConfig {
    /// The profile used when none is named.
    pub default_profile: String,
    /// Named profiles.
    pub profiles: BTreeMap<String, Profile>,
}

impl Default for LlmConfig {
    fn default() -> Self {
        let mut profiles = BTreeMap::new();
        profiles.insert("local".to_string(), Profile::Gguf(GgufProfile::default()));
        LlmConfig {
            default_profile: "local".to_string(),
            profiles,
        }
    }
}

impl LlmConfig {
    /// Add the built-in `local` profile when missing and resolve relative
    /// model paths against `base` (the config file's folder).
    pub fn finish(&mut self, base: &Path) {
        self.profiles
            .entry("local".to_string())
            .or_insert_with(|| Profile::Gguf(GgufProfile::default()));
        for p in self.profiles.values_mut() {
            if let Profile::Gguf(g) = p {
                if g.model.is_relative() {
                    g.model = base.join(&g.model);
                }
                if let Some(c) = &mut g.cache_dir {
                    if c.is_relative() {
                        *c = base.join(&*c);
                    }
                }
            }
        }
    }

    /// The profile called `name` (`None`: the default profile).
    pub fn profile(&self, name: Option<&str>) -> Result<(&str, &Profile), LlmError> {
        let name = name.unwrap_or(&self.default_profile);
        self.profiles
            .get_key_value(name)
            .map(|(k, v)| (k.as_str(), v))
            .ok_or_else(|| {
                LlmError::Setup(format!(
                    "unknown LLM profile '{name}'; profiles in the config: {}",
                    self.profiles.keys().cloned().collect::<Vec<_>>().join(", ")
                ))
            })
    }

    /// Problems with the settings, as (key, message) pairs.
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        if !self.profiles.contains_key(&self.default_profile) {
            out.push((
                "llm.default_profile".to_string(),
                format!(
                    "no profile named '{}'; define [llm.profiles.{}]",
                    self.default_profile, self.default_profile
                ),
            ));
        }
        for (name, p) in &self.profiles {
            let key = |k: &str| format!("llm.profiles.{name}.{k}");
            match p {
                Profile::Gguf(g) => {
                    if !(g.repeat_penalty.is_finite() && g.repeat_penalty > 0.0) {
                        out.push((key("repeat_penalty"), "must be a positive number".into()));
                    }
                    if g.context_tokens < 64 {
                        out.push((key("context_tokens"), "must be at least 64".into()));
                    }
                }
                Profile::Openai(o) => {
                    if let Err(e) = super::openai::check_base_url(&o.base_url) {
                        out.push((key("base_url"), e));
                    }
                    if !(o.timeout_seconds.is_finite() && o.timeout_seconds > 0.0) {
                        out.push((key("timeout_seconds"), "must be a positive number".into()));
                    }
                    if !(o.backoff_initial_seconds.is_finite() && o.backoff_initial_seconds >= 0.0)
                    {
                        out.push((
                            key("backoff_initial_seconds"),
                            "must be 0 or a positive number".into(),
                        ));
                    }
                    if !(o.backoff_max_seconds.is_finite()
                        && o.backoff_max_seconds >= o.backoff_initial_seconds)
                    {
                        out.push((
                            key("backoff_max_seconds"),
                            "must be at least backoff_initial_seconds".into(),
                        ));
                    }
                    for (k, v) in [
                        ("price_prompt_per_million", o.price_prompt_per_million),
                        (
                            "price_completion_per_million",
                            o.price_completion_per_million,
                        ),
                    ] {
                        if let Some(v) = v {
                            if !(v.is_finite() && v >= 0.0) {
                                out.push((key(k), "must be 0 or a positive number".into()));
                            }
                        }
                    }
                }
            }
        }
        out
    }
}

/// One backend profile, chosen by `kind`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Profile {
    /// A GGUF model file run in-process with Candle.
    Gguf(GgufProfile),
    /// An OpenAI-compatible chat-completions server.
    Openai(OpenaiProfile),
}

/// Weight re-quantization at load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Requantize {
    /// Use the weights as stored.
    None,
    /// Re-quantize Q4_0/Q4_1/Q5_x weights to Q8_0 (faster matmuls on CPU),
    /// cached on disk beside the model (or in `cache_dir`).
    Q8_0,
}

/// Which implementation runs a local model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LocalEngine {
    /// seki's own engine (`llm::local::engine`) for llama- and qwen2-family
    /// files with weight formats its kernels handle; candle-transformers for
    /// the others.
    #[default]
    Seki,
    /// candle-transformers' quantized models for every file.
    Candle,
}

/// Which implementation computes a local model's constraint masks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConstraintEngine {
    /// llguidance (`llm::constrain::guidance`).
    #[default]
    Llguidance,
    /// seki's own automaton (`llm::constrain::mask`).
    Seki,
}

/// `kind = "gguf"`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GgufProfile {
    /// The GGUF file. When it does not exist and `hf_repo` is set, the file
    /// `hf_file` of that Hugging Face Hub repository is downloaded into the
    /// Hub cache and used instead.
    pub model: PathBuf,
    /// Hugging Face Hub repository to fetch the model from (e.g.
    /// `HuggingFaceTB/SmolLM2-135M-Instruct-GGUF`).
    pub hf_repo: Option<String>,
    /// The GGUF file in `hf_repo`.
    pub hf_file: Option<String>,
    /// Branch, tag or commit of `hf_repo` (default `main`).
    pub hf_revision: Option<String>,
    /// Re-quantize weights at load: `"q8_0"` (default) or `"none"`.
    pub requantize: Requantize,
    /// The implementation: `"seki"` (default) or `"candle"`.
    pub engine: LocalEngine,
    /// Constraint masks: `"llguidance"` (default) or `"seki"` (its own
    /// automaton; `bench/constraint-vs-llguidance.sh` compares the two).
    pub constraint_engine: ConstraintEngine,
    /// Where the re-quantized file is cached (default: beside the model).
    pub cache_dir: Option<PathBuf>,
    /// Top-k sampling (0: off).
    pub top_k: usize,
    /// Repeat penalty (1: off).
    pub repeat_penalty: f32,
    /// How many recent tokens the repeat penalty looks at.
    pub repeat_last_n: usize,
    /// Most tokens of prompt plus reply.
    pub context_tokens: usize,
    /// CPU threads for the model (0: Candle's default, `CANDLE_NUM_THREADS`
    /// or `RAYON_NUM_THREADS` when set, else all physical cores). Candle
    /// sizes its thread pools once per process, so this applies when the
    /// first model of the process is loaded. Candle's workers spin at
    /// barriers: on a machine shared with other busy processes, 1 thread can
    /// be much faster than several that wait on each other.
    pub threads: usize,
}

impl Default for GgufProfile {
    fn default() -> Self {
        GgufProfile {
            model: PathBuf::from(DEFAULT_MODEL),
            hf_repo: None,
            hf_file: None,
            hf_revision: None,
            requantize: Requantize::Q8_0,
            engine: LocalEngine::Seki,
            constraint_engine: ConstraintEngine::Llguidance,
            cache_dir: None,
            top_k: 40,
            repeat_penalty: 1.1,
            repeat_last_n: 64,
            context_tokens: 4096,
            threads: 0,
        }
    }
}

/// How a server is asked for JSON output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JsonMode {
    /// `response_format: {"type": "json_schema", ...}` (and the schema in the prompt).
    JsonSchema,
    /// `response_format: {"type": "json_object"}` and the schema in the prompt.
    JsonObject,
    /// No response format; the schema goes into the prompt only.
    Prompt,
}

/// `kind = "openai"`
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenaiProfile {
    /// Base URL, e.g. `https://api.openai.com/v1` (`/chat/completions` is appended).
    pub base_url: String,
    /// Model name.
    pub model: String,
    /// Environment variable holding the API key (none: no key is sent).
    #[serde(default)]
    pub api_key_env: Option<String>,
    /// Extra request headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Seconds one request may take.
    #[serde(default = "default_timeout")]
    pub timeout_seconds: f64,
    /// Retries after the first try (429, 5xx, connection errors, timeouts).
    #[serde(default = "default_retries")]
    pub max_retries: u32,
    /// First backoff delay in seconds (doubles each retry, with jitter).
    #[serde(default = "default_backoff")]
    pub backoff_initial_seconds: f64,
    /// Longest backoff delay in seconds (also caps `Retry-After`).
    #[serde(default = "default_backoff_max")]
    pub backoff_max_seconds: f64,
    /// How JSON output is requested when a call has a schema constraint.
    #[serde(default = "default_json_mode")]
    pub json_mode: JsonMode,
    /// US dollars per million prompt tokens.
    #[serde(default)]
    pub price_prompt_per_million: Option<f64>,
    /// US dollars per million completion tokens.
    #[serde(default)]
    pub price_completion_per_million: Option<f64>,
}

fn default_timeout() -> f64 {
    120.0
}
fn default_retries() -> u32 {
    4
}
fn default_backoff() -> f64 {
    1.0
}
fn default_backoff_max() -> f64 {
    60.0
}
fn default_json_mode() -> JsonMode {
    JsonMode::JsonSchema
}

impl std::fmt::Debug for OpenaiProfile {
    // Header values may carry credentials: only their names are shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenaiProfile")
            .field("base_url", &self.base_url)
            .field("model", &self.model)
            .field("api_key_env", &self.api_key_env)
            .field(
                "headers",
                &self
                    .headers
                    .keys()
                    .map(|k| format!("{k}: <redacted>"))
                    .collect::<Vec<_>>(),
            )
            .field("timeout_seconds", &self.timeout_seconds)
            .field("max_retries", &self.max_retries)
            .field("json_mode", &self.json_mode)
            .finish_non_exhaustive()
    }
}

/// Build the backend of profile `name` (`None`: the default profile).
///
/// A `gguf` profile loads the model file now (and re-quantizes it, cached);
/// an `openai` profile reads its API key variable now. Errors say what to
/// fix: an unknown profile lists the known ones, a missing model file names
/// the command that fetches it, a missing key variable names the variable.
pub fn from_profile(
    config: &LlmConfig,
    name: Option<&str>,
) -> Result<Box<dyn ChatModel>, LlmError> {
    let (name, profile) = config.profile(name)?;
    match profile {
        Profile::Gguf(g) => match (&g.hf_repo, &g.hf_file) {
            (Some(repo), Some(file)) if !g.model.is_file() => {
                let path = super::hub::fetch(&super::hub::HubFile {
                    repo: repo.clone(),
                    file: file.clone(),
                    revision: g.hf_revision.clone(),
                })?;
                let fetched = GgufProfile { model: path, ..g.clone() };
                Ok(Box::new(super::local::LocalModel::load(name, &fetched)?))
            }
            (Some(_), None) | (None, Some(_)) => Err(LlmError::Setup(format!(
                "LLM profile '{name}': hf_repo and hf_file go together (the repository and the GGUF file in it)"
            ))),
            _ => Ok(Box::new(super::local::LocalModel::load(name, g)?)),
        },
        Profile::Openai(o) => Ok(Box::new(super::openai::OpenaiModel::new(name, o)?)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_exists_by_default_and_paths_resolve() {
        let mut c: LlmConfig = toml::from_str(
            "[profiles.remote]\nkind = \"openai\"\nbase_url = \"http://127.0.0.1:9/v1\"\nmodel = \"m\"\n",
        )
        .unwrap();
        c.finish(Path::new("/base"));
        let (_, p) = c.profile(Some("local")).unwrap();
        match p {
            Profile::Gguf(g) => assert_eq!(g.model, Path::new("/base").join(DEFAULT_MODEL)),
            other => panic!("{other:?}"),
        }
        assert!(c.problems().is_empty());
        let e = c.profile(Some("nope")).unwrap_err().to_string();
        assert!(
            e.contains("unknown LLM profile 'nope'") && e.contains("remote"),
            "{e}"
        );
    }

    #[test]
    fn unknown_keys_and_kinds_are_rejected() {
        assert!(toml::from_str::<LlmConfig>(
            "[profiles.x]\nkind = \"gguf\"\nmodel = \"a.gguf\"\nmodle = 1\n"
        )
        .is_err());
        assert!(toml::from_str::<LlmConfig>("[profiles.x]\nkind = \"vllm\"\n").is_err());
    }

    #[test]
    fn debug_redacts_header_values() {
        let mut headers = BTreeMap::new();
        headers.insert("Authorization".to_string(), "Bearer sk-secret".to_string());
        let p = OpenaiProfile {
            base_url: "http://127.0.0.1:1/v1".into(),
            model: "m".into(),
            api_key_env: Some("K".into()),
            headers,
            timeout_seconds: 1.0,
            max_retries: 0,
            backoff_initial_seconds: 0.0,
            backoff_max_seconds: 0.0,
            json_mode: JsonMode::Prompt,
            price_prompt_per_million: None,
            price_completion_per_million: None,
        };
        let d = format!("{p:?}");
        assert!(
            !d.contains("sk-secret") && d.contains("Authorization"),
            "{d}"
        );
    }
}
