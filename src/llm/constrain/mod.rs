//! Grammar-constrained decoding: per-step masks over a tokenizer's
//! vocabulary so that only tokens keeping the output a valid prefix can be
//! sampled. Two implementations of the masks: llguidance's ([`guidance`],
//! the default: faster on every grammar measured) and seki's own, a JSON
//! schema compiled to an automaton over bytes ([`grammar`], [`automaton`])
//! or a regular expression compiled to a DFA ([`regex`]), behind one
//! [`Matcher`], walked over a trie of the vocabulary ([`mask`]). Replies are
//! checked against seki's compiled grammar either way ([`check`]).

pub mod active;
pub mod automaton;
pub mod grammar;
pub mod guidance;
pub mod mask;
pub mod matcher;
pub mod regex;

pub use active::Active;
pub use automaton::{Automaton, State};
pub use grammar::{Grammar, SchemaError};
pub use guidance::{Guide, Guided};
pub use mask::{Masker, VocabTrie};
pub use matcher::{ConstraintError, MatchState, Matcher};
pub use regex::{PatternError, RegexDfa};

/// Check a reply against a constraint: JSON satisfying the schema, or text
/// the pattern matches whole. Returns the reply's JSON value (for a pattern:
/// the text as a JSON string).
pub fn check(c: &crate::llm::Constraint, text: &str) -> Result<serde_json::Value, String> {
    match c {
        crate::llm::Constraint::JsonSchema(s) => validate(s, text),
        crate::llm::Constraint::Regex(p) => {
            let d = RegexDfa::new(p).map_err(|e| e.to_string())?;
            if d.matches(text) {
                Ok(serde_json::Value::String(text.to_string()))
            } else {
                Err(format!("the reply does not match the pattern {p:?}"))
            }
        }
    }
}

/// Check a reply against a schema: it must parse as JSON and satisfy the
/// schema's supported subset (see [`grammar`]).
pub fn validate(schema: &serde_json::Value, text: &str) -> Result<serde_json::Value, String> {
    let g = Grammar::compile(schema).map_err(|e| e.to_string())?;
    let v: serde_json::Value =
        serde_json::from_str(text.trim()).map_err(|e| format!("the reply is not JSON: {e}"))?;
    g.validate(&v).map_err(|e| e.to_string())?;
    Ok(v)
}
