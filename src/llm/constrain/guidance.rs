//! Token masks by llguidance (the structured-output engine of llama.cpp,
//! vLLM and SGLang): a constraint (JSON schema or regular expression) over
//! a tokenizer's vocabulary. Measured against seki's own automaton
//! ([`super::mask`]) on the same grammars, vocabularies and texts by
//! `bench/constraint-vs-llguidance.sh`: as fast on the DARTS notation's
//! pattern, several times faster on JSON schemas, and hundreds of times
//! faster inside a free JSON string, where almost every token fits.

use super::ConstraintError;
use crate::llm::Constraint;
use llguidance::api::TopLevelGrammar;
use llguidance::earley::SlicedBiasComputer;
use llguidance::toktrie::{ApproximateTokEnv, InferenceCapabilities, TokEnv, TokRxInfo, TokTrie};
use llguidance::ParserFactory;
use std::sync::Arc;

/// One vocabulary's parser factory: built once per model (its token trie
/// and the precomputed slices of the vocabulary), then a [`Guided`] per
/// reply.
pub struct Guide {
    factory: ParserFactory,
    size: usize,
    eos: u32,
}

impl std::fmt::Debug for Guide {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guide").field("size", &self.size).finish()
    }
}

fn guidance(e: impl std::fmt::Display) -> ConstraintError {
    ConstraintError::Guidance(e.to_string())
}

impl Guide {
    /// A guide over `size` tokens: `text(id)` gives a token's bytes, or
    /// `None` for a token that is not text (control tokens: no output may
    /// contain them); `eos` ends a sequence.
    pub fn new<'a>(
        size: usize,
        eos: u32,
        text: impl Fn(u32) -> Option<&'a [u8]>,
    ) -> Result<Self, ConstraintError> {
        let words: Vec<Vec<u8>> = (0..size as u32)
            .map(|i| match text(i) {
                Some(b) => b.to_vec(),
                // llguidance's marker of special tokens: no grammar text
                // matches a word that begins with it.
                None => [TokTrie::SPECIAL_TOKEN_MARKER, b'<']
                    .into_iter()
                    .chain(i.to_string().into_bytes())
                    .collect(),
            })
            .collect();
        let size32 = u32::try_from(size).map_err(guidance)?;
        if eos >= size32 {
            return Err(guidance(format!(
                "end-of-sequence token {eos} outside a vocabulary of {size}"
            )));
        }
        let trie = TokTrie::from(&TokRxInfo::new(size32, eos), &words);
        let env: TokEnv = Arc::new(ApproximateTokEnv::new(trie));
        let mut factory = ParserFactory::new(
            &env,
            InferenceCapabilities::default(),
            &SlicedBiasComputer::general_slices(),
        )
        .map_err(guidance)?;
        factory.quiet();
        Ok(Guide { factory, size, eos })
    }

    /// Start a reply under `c`. JSON is compact (no whitespace between
    /// tokens), as seki's own automaton writes it; a pattern must match the
    /// whole reply.
    pub fn start(&self, c: &Constraint) -> Result<Guided, ConstraintError> {
        let grammar = match c {
            Constraint::Regex(p) => TopLevelGrammar::from_regex(p),
            Constraint::JsonSchema(s) => {
                // seki's subset check first, so a schema is never enforced
                // only in part; then llguidance's compact JSON.
                super::Grammar::compile(s)?;
                let mut s = s.clone();
                if let Some(o) = s.as_object_mut() {
                    o.insert(
                        "x-guidance".into(),
                        serde_json::json!({"whitespace_flexible": false}),
                    );
                }
                TopLevelGrammar::from_json_schema(s)
            }
        };
        let parser = self.factory.create_parser(grammar).map_err(guidance)?;
        Ok(Guided {
            m: llguidance::Matcher::new(Ok(parser)),
            size: self.size,
            eos: self.eos,
        })
    }
}

/// A reply in progress under a constraint.
pub struct Guided {
    m: llguidance::Matcher,
    size: usize,
    eos: u32,
}

impl std::fmt::Debug for Guided {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guided")
            .field("stopped", &self.m.is_stopped())
            .finish()
    }
}

impl Guided {
    /// The text tokens allowed next (`true` at their ids; end-of-sequence
    /// not included: see [`Guided::is_complete`]).
    pub fn mask(&mut self) -> Result<Vec<bool>, ConstraintError> {
        let v = self.m.compute_mask().map_err(guidance)?;
        let mut out = vec![false; self.size];
        for (w, word) in v.as_slice().iter().enumerate() {
            let mut bits = *word;
            while bits != 0 {
                let id = w * 32 + bits.trailing_zeros() as usize;
                if let Some(x) = out.get_mut(id) {
                    *x = true;
                }
                bits &= bits - 1;
            }
        }
        if let Some(x) = out.get_mut(self.eos as usize) {
            *x = false;
        }
        Ok(out)
    }

    /// Whether the output so far is a whole reply (the sequence may end).
    pub fn is_complete(&mut self) -> bool {
        self.m.is_stopped() || self.m.is_accepting().unwrap_or(false)
    }

    /// Whether the reply is complete and nothing can follow.
    pub fn is_finished(&self) -> bool {
        self.m.is_stopped()
    }

    /// Take `token` as the next one.
    pub fn advance(&mut self, token: u32) -> Result<(), ConstraintError> {
        self.m.consume_token(token).map_err(guidance)
    }

    /// Forget the last-mask cache, so the next mask is computed in full
    /// (for measurements).
    pub fn invalidate_cache(&mut self) {
        self.m.invalidate_bias_cache();
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn allowed(g: &mut Guided, toks: &[&[u8]]) -> Vec<Vec<u8>> {
        g.mask()
            .unwrap()
            .iter()
            .enumerate()
            .filter(|(_, ok)| **ok)
            .map(|(i, _)| toks[i].to_vec())
            .collect()
    }

    #[test]
    fn masks_allow_exactly_the_valid_tokens() {
        let toks: Vec<&[u8]> = vec![
            b"{", b"{\"", b"\"a\"", b"\"a\":", b":", b"1", b"12", b"}", b" ", b"x", b"2}", b"<eos>",
        ];
        let eos = toks.len() as u32 - 1;
        let guide = Guide::new(toks.len(), eos, |i| (i != eos).then(|| toks[i as usize])).unwrap();
        let c = Constraint::JsonSchema(json!({
            "type": "object",
            "properties": {"a": {"type": "integer", "maximum": 15}},
            "required": ["a"]
        }));
        let mut g = guide.start(&c).unwrap();
        assert_eq!(allowed(&mut g, &toks), [b"{".to_vec(), b"{\"".to_vec()]);
        assert!(!g.is_complete());
        g.advance(0).unwrap(); // {
        g.advance(2).unwrap(); // "a"
        g.advance(4).unwrap(); // :
        assert_eq!(
            allowed(&mut g, &toks),
            [b"1".to_vec(), b"12".to_vec(), b"2}".to_vec()]
        );
        g.advance(5).unwrap(); // 1
        assert_eq!(
            allowed(&mut g, &toks),
            [b"1".to_vec(), b"}".to_vec(), b"2}".to_vec()]
        );
        g.advance(7).unwrap(); // }
        assert!(g.is_complete());
        assert!(g.is_finished());
    }

    #[test]
    fn a_pattern_is_matched_whole_and_control_tokens_never_fit() {
        let toks: Vec<&[u8]> = vec![b"a", b"b", b"ab", b"c", b"<ctl>", b"<eos>"];
        let eos = 5;
        let guide = Guide::new(toks.len(), eos, |i| (i < 4).then(|| toks[i as usize])).unwrap();
        let mut g = guide.start(&Constraint::Regex("a+b".into())).unwrap();
        assert_eq!(allowed(&mut g, &toks), [b"a".to_vec(), b"ab".to_vec()]);
        g.advance(0).unwrap();
        assert!(!g.is_complete());
        g.advance(1).unwrap();
        assert!(g.is_complete());
        assert!(g.is_finished());
    }

    #[test]
    fn a_schema_outside_the_subset_is_refused() {
        let guide = Guide::new(2, 1, |i| (i == 0).then_some(&b"x"[..])).unwrap();
        let c = Constraint::JsonSchema(json!({"type": "string", "pattern": "a+"}));
        assert!(matches!(guide.start(&c), Err(ConstraintError::Schema(_))));
    }
}
