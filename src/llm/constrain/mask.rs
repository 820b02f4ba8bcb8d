//! Per-step token masks: which tokens keep the output a valid prefix.
//!
//! The vocabulary's byte strings are stored once in a trie; a mask is a
//! depth-first walk of the trie against the automaton, cutting every branch
//! at the first byte the automaton rejects, so the cost follows the number
//! of *valid* token prefixes rather than the vocabulary size. Masks are
//! cached per automaton state (states repeat a lot: every `[op, input]`
//! pair of a cell starts from the same one).

use super::matcher::{MatchState as State, Matcher};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

#[derive(Debug, Default)]
struct TrieNode {
    children: Vec<(u8, u32)>,
    tokens: Vec<u32>,
}

/// The vocabulary as a byte trie.
#[derive(Debug)]
pub struct VocabTrie {
    nodes: Vec<TrieNode>,
    size: usize,
}

impl VocabTrie {
    /// A trie of `tokens` (id, bytes); tokens with no bytes are left out.
    pub fn new<'a>(size: usize, tokens: impl IntoIterator<Item = (u32, &'a [u8])>) -> Self {
        let mut nodes = vec![TrieNode::default()];
        for (id, bytes) in tokens {
            if bytes.is_empty() {
                continue;
            }
            let mut at = 0usize;
            for &b in bytes {
                let found = nodes[at].children.iter().find(|c| c.0 == b).map(|c| c.1);
                at = match found {
                    Some(c) => c as usize,
                    None => {
                        nodes.push(TrieNode::default());
                        let c = (nodes.len() - 1) as u32;
                        nodes[at].children.push((b, c));
                        c as usize
                    }
                };
            }
            nodes[at].tokens.push(id);
        }
        for n in &mut nodes {
            n.children.sort_unstable();
        }
        VocabTrie { nodes, size }
    }

    /// Vocabulary size (mask length).
    pub fn size(&self) -> usize {
        self.size
    }

    /// The allowed tokens after `state` (end-of-sequence not included).
    pub fn mask(&self, a: &Matcher, state: &State) -> Vec<bool> {
        let mut mask = vec![false; self.size];
        let mut stack: Vec<(u32, State)> = vec![(0, state.clone())];
        while let Some((node, st)) = stack.pop() {
            let Some(n) = self.nodes.get(node as usize) else {
                continue;
            };
            for &(b, child) in &n.children {
                let mut s = st.clone();
                if a.step_in_place(&mut s, b) {
                    if let Some(c) = self.nodes.get(child as usize) {
                        for &t in &c.tokens {
                            if let Some(m) = mask.get_mut(t as usize) {
                                *m = true;
                            }
                        }
                    }
                    stack.push((child, s));
                }
            }
        }
        mask
    }
}

/// A constraint in use: automaton, trie and mask cache.
#[derive(Debug)]
pub struct Masker {
    /// The compiled constraint.
    pub automaton: Matcher,
    trie: Arc<VocabTrie>,
    cache: Mutex<HashMap<State, Arc<Vec<bool>>>>,
}

/// Most cached masks per constraint.
const CACHE_LIMIT: usize = 2048;

impl Masker {
    /// A masker for `automaton` over `trie`.
    pub fn new(automaton: Matcher, trie: Arc<VocabTrie>) -> Self {
        Masker {
            automaton,
            trie,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The mask after `state`, computed afresh (for measurements).
    pub fn mask_uncached(&self, state: &State) -> Vec<bool> {
        self.trie.mask(&self.automaton, state)
    }

    /// The mask after `state` (cached).
    pub fn mask(&self, state: &State) -> Arc<Vec<bool>> {
        if let Ok(c) = self.cache.lock() {
            if let Some(m) = c.get(state) {
                return Arc::clone(m);
            }
        }
        let m = Arc::new(self.trie.mask(&self.automaton, state));
        if let Ok(mut c) = self.cache.lock() {
            if c.len() >= CACHE_LIMIT {
                c.clear();
            }
            c.insert(state.clone(), Arc::clone(&m));
        }
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn masks_allow_exactly_the_valid_tokens() {
        let toks: Vec<&[u8]> = vec![
            b"{", b"{\"", b"\"a\"", b"\"a\":", b":", b"1", b"12", b"}", b" ", b"x", b"2}",
        ];
        let trie = VocabTrie::new(
            toks.len(),
            toks.iter().enumerate().map(|(i, t)| (i as u32, *t)),
        );
        let a = Matcher::compile(&crate::llm::Constraint::JsonSchema(
            json!({"type": "object", "properties": {"a": {"type": "integer", "maximum": 15}}, "required": ["a"]}),
        ))
        .unwrap();
        let allowed = |s: &State| -> Vec<&[u8]> {
            trie.mask(&a, s)
                .iter()
                .enumerate()
                .filter(|(_, ok)| **ok)
                .map(|(i, _)| toks[i])
                .collect()
        };
        assert_eq!(allowed(&a.start()), vec![b"{" as &[u8], b"{\""]);
        let s = a.feed(&a.start(), b"{\"a\":").unwrap();
        assert_eq!(allowed(&s), vec![b"1" as &[u8], b"12", b"2}"]);
        let s = a.feed(&a.start(), b"{\"a\":1").unwrap();
        assert_eq!(allowed(&s), vec![b"1" as &[u8], b"}", b"2}"]);
        let m = Masker::new(a.clone(), Arc::new(trie));
        let s = a.start();
        assert!(Arc::ptr_eq(&m.mask(&s), &m.mask(&s)));
    }
}
