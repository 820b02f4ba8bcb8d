//! The settings of the in-process backend (`kind = "gguf"` profiles): the
//! model file, where to fetch it, re-quantization, the engines and sampling.
//!
//! The backend owns them; `llm::profile` only names profiles and holds one
//! of these per `gguf` profile.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The default model file, relative to the config file's folder.
pub const DEFAULT_MODEL: &str = "models/SmolLM2-135M-Instruct.Q4_1.gguf";

/// The command that fetches the default model.
pub const FETCH_COMMAND: &str = "scripts/setup.sh";

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

impl GgufProfile {
    /// Resolve the relative model and cache paths against `base` (the
    /// config file's folder).
    pub fn resolve_paths(&mut self, base: &Path) {
        if self.model.is_relative() {
            self.model = base.join(&self.model);
        }
        if let Some(c) = &mut self.cache_dir {
            if c.is_relative() {
                *c = base.join(&*c);
            }
        }
    }

    /// Problems with the settings, as (key within the profile, message)
    /// pairs.
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if !(self.repeat_penalty.is_finite() && self.repeat_penalty > 0.0) {
            out.push(("repeat_penalty", "must be a positive number".into()));
        }
        if self.context_tokens < 64 {
            out.push(("context_tokens", "must be at least 64".into()));
        }
        out
    }
}
