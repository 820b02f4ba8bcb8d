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
//!
//! Each backend owns its settings type ([`GgufProfile`] in `llm::local`,
//! [`OpenaiProfile`] in `llm::openai`); this module names profiles, holds
//! one backend's settings per profile and builds the backend. It depends on
//! the backends, never the other way round.

use super::{ChatModel, LlmError};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

pub use super::local::settings::{
    ConstraintEngine, GgufProfile, LocalEngine, Requantize, DEFAULT_MODEL, FETCH_COMMAND,
};
pub use super::openai::settings::{JsonMode, OpenaiProfile};

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
                g.resolve_paths(base);
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
            let problems = match p {
                Profile::Gguf(g) => g.problems(),
                Profile::Openai(o) => o.problems(),
                Profile::Blind(_) => Vec::new(),
            };
            out.extend(
                problems
                    .into_iter()
                    .map(|(k, m)| (format!("llm.profiles.{name}.{k}"), m)),
            );
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
    /// The score-blind stand-in: random replies the constraint allows, no
    /// model (the baseline that measures what the LLM adds).
    Blind(super::blind::BlindProfile),
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
        Profile::Blind(b) => Ok(Box::new(super::blind::BlindModel::new(b.seed))),
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
}
