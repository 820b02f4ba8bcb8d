//! Named GGUF models from the Hugging Face Hub, downloaded once into the
//! Hub's usual cache (`HF_HOME`, default `~/.cache/huggingface/hub`; endpoint
//! from `HF_ENDPOINT`), with the hf-hub crate.

use super::LlmError;
use std::path::PathBuf;

/// Where a model comes from on the Hub.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubFile {
    /// Repository id, e.g. `HuggingFaceTB/SmolLM2-135M-Instruct-GGUF`.
    pub repo: String,
    /// File in the repository, e.g. `smollm2-135m-instruct-q8_0.gguf`.
    pub file: String,
    /// Branch, tag or commit (`main` when unset).
    pub revision: Option<String>,
}

/// The local path of `f`, downloading it into the Hub cache if it is not
/// there yet. Fails with an error naming the repository, the file, the
/// endpoint and what to do instead.
pub fn fetch(f: &HubFile) -> Result<PathBuf, LlmError> {
    let endpoint = std::env::var("HF_ENDPOINT").unwrap_or_else(|_| "https://huggingface.co".into());
    let fail = |what: String| {
        LlmError::Setup(format!(
            "cannot download {} from the Hugging Face Hub repository {} ({endpoint}): {what}; without network access, put the file in place by hand and point the profile's `model` at it",
            f.file, f.repo
        ))
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| fail(e.to_string()))?;
    let api = hf_hub::api::tokio::ApiBuilder::from_env()
        .with_progress(false)
        .build()
        .map_err(|e| fail(e.to_string()))?;
    let repo = match &f.revision {
        Some(rev) => {
            hf_hub::Repo::with_revision(f.repo.clone(), hf_hub::RepoType::Model, rev.clone())
        }
        None => hf_hub::Repo::model(f.repo.clone()),
    };
    rt.block_on(api.repo(repo).get(&f.file))
        .map_err(|e| fail(e.to_string()))
}
