//! Grammar-constrained decoding: a JSON schema compiled to an automaton over
//! bytes ([`grammar`], [`automaton`]), and per-step masks over a tokenizer's
//! vocabulary ([`mask`]) so that only tokens keeping the output a valid
//! prefix can be sampled.

pub mod automaton;
pub mod grammar;
pub mod mask;

pub use automaton::{Automaton, State};
pub use grammar::{Grammar, SchemaError};
pub use mask::{Masker, VocabTrie};

/// Check a reply against a schema: it must parse as JSON and satisfy the
/// schema's supported subset (see [`grammar`]).
pub fn validate(schema: &serde_json::Value, text: &str) -> Result<serde_json::Value, String> {
    let g = Grammar::compile(schema).map_err(|e| e.to_string())?;
    let v: serde_json::Value =
        serde_json::from_str(text.trim()).map_err(|e| format!("the reply is not JSON: {e}"))?;
    g.validate(&v).map_err(|e| e.to_string())?;
    Ok(v)
}
