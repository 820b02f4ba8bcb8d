//! A tokenizer built from a GGUF file's `tokenizer.ggml.*` metadata.
//!
//! Two families:
//!
//! - byte-level BPE (`tokenizer.ggml.model = "gpt2"`): built with the
//!   `tokenizers` crate from the GGUF's vocabulary and ranked merges, with
//!   the pre-tokenizer that `tokenizer.ggml.pre` names ([`pre_tokenizer`]):
//!   `smollm`, `starcoder`, `refact` (every digit its own piece, then GPT-2's
//!   split), `gpt2`/`default` (GPT-2's split), `llama-bpe`/`llama3` (numbers
//!   in runs of up to 3 digits) and `qwen2`/`deepseek-llm` style (single
//!   digits), each followed by the byte-level alphabet without a prefix space.
//! - SentencePiece-style BPE (`tokenizer.ggml.model = "llama"`, e.g. Gemma):
//!   spaces become `▁`, adjacent pieces merge by the highest
//!   `tokenizer.ggml.scores`, and characters outside the vocabulary fall back
//!   to `<0xNN>` byte tokens. (GGUF files of this family carry scores, not
//!   merges, so this merge loop is seki's own.)
//!
//! Control and user-defined tokens (`token_type` 3 and 4) written in the text
//! (e.g. `<|im_start|>` in a rendered chat template) are matched whole when
//! `special` is set. Decoding maps each token back to its bytes.

use std::collections::HashMap;
use tokenizers::models::bpe::BPE;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::{PreTokenizerWrapper, SplitDelimiterBehavior};

/// A tokenizer failure.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("tokenizer: {0}")]
pub struct TokenizerError(pub String);

/// GGUF token types.
const TYPE_CONTROL: i32 = 3;
const TYPE_USER_DEFINED: i32 = 4;
const TYPE_BYTE: i32 = 6;

/// GPT-2-style split with numbers in runs of `{1,N}` digits, as Llama 3
/// (N = 3) and Qwen 2 (N = 1) publish it in their tokenizer files.
fn llama3_pattern(max_digits: usize) -> String {
    let numbers = if max_digits == 1 {
        r"\p{N}".to_string()
    } else {
        format!(r"\p{{N}}{{1,{max_digits}}}")
    };
    format!(
        r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{{L}}\p{{N}}]?\p{{L}}+|{numbers}| ?[^\s\p{{L}}\p{{N}}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
    )
}

/// The pre-tokenizer that `tokenizer.ggml.pre` names, `None` when unknown.
pub fn pre_tokenizer(name: &str) -> Option<Result<PreTokenizerWrapper, TokenizerError>> {
    let byte_level =
        |use_regex: bool| PreTokenizerWrapper::from(ByteLevel::new(false, true, use_regex));
    let split = |max_digits: usize| -> Result<PreTokenizerWrapper, TokenizerError> {
        let split = Split::new(
            SplitPattern::Regex(llama3_pattern(max_digits)),
            SplitDelimiterBehavior::Isolated,
            false,
        )
        .map_err(|e| TokenizerError(format!("pre-tokenizer '{name}': {e}")))?;
        Ok(PreTokenizerWrapper::from(Sequence::new(vec![
            PreTokenizerWrapper::from(split),
            byte_level(false),
        ])))
    };
    Some(match name {
        "smollm" | "starcoder" | "refact" | "codeshell" | "minerva" | "exaone" | "command-r" => {
            Ok(PreTokenizerWrapper::from(Sequence::new(vec![
                PreTokenizerWrapper::from(Digits::new(true)),
                byte_level(true),
            ])))
        }
        "gpt2" | "gpt-2" | "default" | "phi-2" | "jina-v2-en" | "olmo" | "mpt" | "falcon" => {
            Ok(byte_level(true))
        }
        "llama-bpe" | "llama3" | "smaug-bpe" | "dbrx" | "tekken" => split(3),
        "qwen2" | "qwen35" | "deepseek-llm" | "deepseek-coder" | "stablelm2" => split(1),
        _ => return None,
    })
}

#[derive(Debug)]
enum Model {
    ByteBpe(Box<tokenizers::Tokenizer>),
    SentencePiece {
        scores: Vec<f32>,
        add_space_prefix: bool,
        byte_ids: Box<[Option<u32>; 256]>,
    },
}

/// A tokenizer over a GGUF vocabulary.
#[derive(Debug)]
pub struct Tokenizer {
    model: Model,
    tokens: Vec<String>,
    types: Vec<i32>,
    ids: HashMap<String, u32>,
    /// Special tokens matched whole in text, longest first.
    specials: Vec<(String, u32)>,
    bytes: Vec<Vec<u8>>,
    bos: Option<u32>,
    eos: Option<u32>,
    add_bos: bool,
    unk: Option<u32>,
}

/// GPT-2's map from bytes to printable characters.
pub fn byte_to_char() -> [char; 256] {
    let mut table = ['\0'; 256];
    let mut n = 0u32;
    for b in 0..256u32 {
        let printable =
            (33..=126).contains(&b) || (161..=172).contains(&b) || (174..=255).contains(&b);
        let c = if printable {
            b
        } else {
            n += 1;
            255 + n
        };
        table[b as usize] = char::from_u32(c).unwrap_or('\0');
    }
    table
}

/// What a tokenizer is built from (the GGUF metadata, read out).
#[derive(Debug, Clone, Default)]
pub struct Vocab {
    /// `tokenizer.ggml.model`: "gpt2" or "llama".
    pub model: String,
    /// `tokenizer.ggml.pre`.
    pub pre: Option<String>,
    /// `tokenizer.ggml.tokens`.
    pub tokens: Vec<String>,
    /// `tokenizer.ggml.token_type` (1 when absent).
    pub types: Vec<i32>,
    /// `tokenizer.ggml.merges` ("a b").
    pub merges: Vec<String>,
    /// `tokenizer.ggml.scores`.
    pub scores: Vec<f32>,
    /// `tokenizer.ggml.bos_token_id`.
    pub bos: Option<u32>,
    /// `tokenizer.ggml.eos_token_id`.
    pub eos: Option<u32>,
    /// `tokenizer.ggml.unknown_token_id`.
    pub unk: Option<u32>,
    /// `tokenizer.ggml.add_bos_token`.
    pub add_bos: bool,
    /// `tokenizer.ggml.add_space_prefix`.
    pub add_space_prefix: bool,
}

impl Tokenizer {
    /// Build a tokenizer.
    pub fn new(v: Vocab) -> Result<Self, TokenizerError> {
        if v.tokens.is_empty() {
            return Err(TokenizerError("the vocabulary is empty".into()));
        }
        let n = v.tokens.len();
        let types = if v.types.len() == n {
            v.types.clone()
        } else {
            vec![1; n]
        };
        let mut ids = HashMap::with_capacity(n);
        for (i, t) in v.tokens.iter().enumerate() {
            ids.entry(t.clone()).or_insert(i as u32);
        }
        let mut specials: Vec<(String, u32)> = v
            .tokens
            .iter()
            .enumerate()
            .filter(|(i, t)| matches!(types[*i], TYPE_CONTROL | TYPE_USER_DEFINED) && !t.is_empty())
            .map(|(i, t)| (t.clone(), i as u32))
            .collect();
        specials.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then(a.1.cmp(&b.1)));
        let b2c = byte_to_char();
        let (model, bytes) = match v.model.as_str() {
            "gpt2" => {
                let pre_name = v.pre.clone().unwrap_or_else(|| "default".into());
                let pre = pre_tokenizer(&pre_name).unwrap_or_else(|| {
                    tracing::warn!(
                        "tokenizer: unknown pre-tokenizer '{pre_name}'; using GPT-2's split"
                    );
                    Ok(PreTokenizerWrapper::from(ByteLevel::new(false, true, true)))
                })?;
                let mut merges = Vec::with_capacity(v.merges.len());
                for m in &v.merges {
                    let Some((a, b)) = m.split_once(' ') else {
                        return Err(TokenizerError(format!("malformed merge {m:?}")));
                    };
                    if ids.contains_key(a)
                        && ids.contains_key(b)
                        && ids.contains_key(&format!("{a}{b}"))
                    {
                        merges.push((a.to_string(), b.to_string()));
                    }
                }
                let vocab: tokenizers::models::bpe::Vocab =
                    ids.iter().map(|(t, &i)| (t.clone(), i)).collect();
                let bpe = BPE::builder()
                    .vocab_and_merges(vocab, merges)
                    .build()
                    .map_err(|e| TokenizerError(format!("byte-level BPE: {e}")))?;
                let mut hf = tokenizers::Tokenizer::new(bpe);
                hf.with_pre_tokenizer(Some(pre));
                let mut c2b = HashMap::with_capacity(256);
                for (b, c) in b2c.iter().enumerate() {
                    c2b.insert(*c, b as u8);
                }
                let bytes = v
                    .tokens
                    .iter()
                    .enumerate()
                    .map(|(i, t)| {
                        if matches!(types[i], TYPE_CONTROL | TYPE_USER_DEFINED) {
                            t.as_bytes().to_vec()
                        } else {
                            let mut out = Vec::with_capacity(t.len());
                            for c in t.chars() {
                                match c2b.get(&c) {
                                    Some(b) => out.push(*b),
                                    None => {
                                        let mut buf = [0u8; 4];
                                        out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                                    }
                                }
                            }
                            out
                        }
                    })
                    .collect();
                (Model::ByteBpe(Box::new(hf)), bytes)
            }
            "llama" => {
                let scores = if v.scores.len() == n {
                    v.scores.clone()
                } else {
                    vec![0.0; n]
                };
                let mut byte_ids = [None; 256];
                for (b, slot) in byte_ids.iter_mut().enumerate() {
                    *slot = ids.get(&format!("<0x{b:02X}>")).copied();
                }
                let bytes = v
                    .tokens
                    .iter()
                    .enumerate()
                    .map(|(i, t)| {
                        if types[i] == TYPE_BYTE {
                            if let Some(h) = t.strip_prefix("<0x").and_then(|h| h.strip_suffix('>'))
                            {
                                if let Ok(b) = u8::from_str_radix(h, 16) {
                                    return vec![b];
                                }
                            }
                        }
                        t.replace('\u{2581}', " ").into_bytes()
                    })
                    .collect();
                (
                    Model::SentencePiece {
                        scores,
                        add_space_prefix: v.add_space_prefix,
                        byte_ids: Box::new(byte_ids),
                    },
                    bytes,
                )
            }
            other => {
                return Err(TokenizerError(format!(
                    "unsupported tokenizer model '{other}' (supported: gpt2, llama)"
                )))
            }
        };
        Ok(Tokenizer {
            model,
            tokens: v.tokens,
            types,
            ids,
            specials,
            bytes,
            bos: v.bos,
            eos: v.eos,
            add_bos: v.add_bos,
            unk: v.unk,
        })
    }

    /// Vocabulary size.
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    /// Whether the vocabulary is empty (never, once built).
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// The token's text as stored in the vocabulary.
    pub fn token(&self, id: u32) -> Option<&str> {
        self.tokens.get(id as usize).map(String::as_str)
    }

    /// The id of a token's vocabulary text.
    pub fn id(&self, token: &str) -> Option<u32> {
        self.ids.get(token).copied()
    }

    /// The bytes a token decodes to.
    pub fn token_bytes(&self, id: u32) -> &[u8] {
        self.bytes.get(id as usize).map_or(&[], Vec::as_slice)
    }

    /// Whether the token is a control token (never produced by text).
    pub fn is_control(&self, id: u32) -> bool {
        self.types.get(id as usize) == Some(&TYPE_CONTROL)
    }

    /// Beginning-of-sequence token.
    pub fn bos(&self) -> Option<u32> {
        self.bos
    }

    /// End-of-sequence token.
    pub fn eos(&self) -> Option<u32> {
        self.eos
    }

    /// Whether a BOS token starts every prompt.
    pub fn add_bos(&self) -> bool {
        self.add_bos
    }

    /// Encode text; with `special`, control and user-defined tokens written
    /// in the text are matched whole.
    pub fn encode(&self, text: &str, special: bool) -> Result<Vec<u32>, TokenizerError> {
        let mut out = Vec::new();
        let mut rest = text;
        while !rest.is_empty() {
            let found = if special {
                self.next_special(rest)
            } else {
                None
            };
            match found {
                Some((pos, tok, id)) => {
                    self.encode_plain(&rest[..pos], &mut out)?;
                    out.push(id);
                    rest = &rest[pos + tok.len()..];
                }
                None => {
                    self.encode_plain(rest, &mut out)?;
                    break;
                }
            }
        }
        Ok(out)
    }

    fn next_special<'a>(&'a self, text: &str) -> Option<(usize, &'a str, u32)> {
        if self.specials.is_empty() {
            return None;
        }
        for (pos, _) in text.char_indices() {
            let rest = &text[pos..];
            for (s, id) in &self.specials {
                if rest.starts_with(s.as_str()) {
                    return Some((pos, s.as_str(), *id));
                }
            }
        }
        None
    }

    fn encode_plain(&self, text: &str, out: &mut Vec<u32>) -> Result<(), TokenizerError> {
        if text.is_empty() {
            return Ok(());
        }
        match &self.model {
            Model::ByteBpe(hf) => {
                let enc = hf
                    .encode_fast(text, false)
                    .map_err(|e| TokenizerError(format!("cannot encode {text:?}: {e}")))?;
                out.extend_from_slice(enc.get_ids());
                Ok(())
            }
            Model::SentencePiece {
                scores,
                add_space_prefix,
                byte_ids,
            } => {
                let mut t = String::with_capacity(text.len() + 3);
                if *add_space_prefix && out.is_empty() {
                    t.push('\u{2581}');
                }
                t.push_str(&text.replace(' ', "\u{2581}"));
                self.sp_bpe(&t, scores, byte_ids, out)
            }
        }
    }

    fn sp_bpe(
        &self,
        text: &str,
        scores: &[f32],
        byte_ids: &[Option<u32>; 256],
        out: &mut Vec<u32>,
    ) -> Result<(), TokenizerError> {
        let mut syms: Vec<String> = text.chars().map(String::from).collect();
        let pair_score = |a: &str, b: &str| -> Option<f32> {
            let s = format!("{a}{b}");
            self.ids
                .get(&s)
                .and_then(|&id| scores.get(id as usize).copied())
        };
        let mut best: Vec<Option<f32>> = (0..syms.len().saturating_sub(1))
            .map(|i| pair_score(&syms[i], &syms[i + 1]))
            .collect();
        loop {
            let mut pick: Option<(usize, f32)> = None;
            for (i, s) in best.iter().enumerate() {
                if let Some(s) = s {
                    if pick.is_none_or(|(_, b)| *s > b) {
                        pick = Some((i, *s));
                    }
                }
            }
            let Some((i, _)) = pick else { break };
            let right = syms.remove(i + 1);
            syms[i].push_str(&right);
            best.remove(i);
            if i < best.len() {
                best[i] = pair_score(&syms[i], &syms[i + 1]);
            }
            if i > 0 {
                best[i - 1] = pair_score(&syms[i - 1], &syms[i]);
            }
        }
        for s in syms {
            match self.ids.get(&s) {
                Some(&id) => out.push(id),
                None => {
                    for b in s.bytes() {
                        match byte_ids[b as usize].or(self.unk) {
                            Some(id) => out.push(id),
                            None => {
                                return Err(TokenizerError(format!(
                                    "no token for byte 0x{b:02X} and no unknown token"
                                )))
                            }
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Decode tokens to text (invalid UTF-8 is replaced); with
    /// `skip_special`, control tokens are left out.
    pub fn decode(&self, ids: &[u32], skip_special: bool) -> String {
        String::from_utf8_lossy(&self.decode_bytes(ids, skip_special)).into_owned()
    }

    /// Decode tokens to bytes.
    pub fn decode_bytes(&self, ids: &[u32], skip_special: bool) -> Vec<u8> {
        let mut out = Vec::new();
        for &id in ids {
            if skip_special && self.is_control(id) {
                continue;
            }
            out.extend_from_slice(self.token_bytes(id));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The pieces the named pre-tokenizer cuts `text` into.
    fn pieces(name: &str, text: &str) -> Vec<String> {
        use tokenizers::{OffsetReferential, OffsetType, PreTokenizedString, PreTokenizer};
        let pre = pre_tokenizer(name).unwrap().unwrap();
        let mut pts = PreTokenizedString::from(text);
        pre.pre_tokenize(&mut pts).unwrap();
        pts.get_splits(OffsetReferential::Original, OffsetType::Byte)
            .into_iter()
            .map(|(_, (a, b), _)| text[a..b].to_string())
            .collect()
    }

    #[test]
    fn gpt2_split_follows_the_regex() {
        assert_eq!(
            pieces("gpt2", "Hello world, it's  42!\n\n  x"),
            vec!["Hello", " world", ",", " it", "'s", " ", " 42", "!", "\n\n ", " x"]
        );
        assert_eq!(pieces("gpt2", "a  "), vec!["a", "  "]);
        assert_eq!(
            pieces("smollm", "ab 123c"),
            vec!["ab", " ", "1", "2", "3", "c"]
        );
    }

    #[test]
    fn llama3_and_qwen2_splits_follow_the_regex() {
        assert_eq!(
            pieces("llama-bpe", "Hello, WORLD'S 12345 (x)\n\n y"),
            vec!["Hello", ",", " WORLD", "'S", " ", "123", "45", " (", "x", ")\n\n", " y"]
        );
        assert_eq!(
            pieces("qwen2", "x 2024"),
            vec!["x", " ", "2", "0", "2", "4"]
        );
        assert!(pre_tokenizer("no-such-pre").is_none());
    }

    /// A byte-level vocabulary: every byte, plus merges for "he", "hel",
    /// "hell", "hello", " w", specials.
    fn tiny_bpe() -> Tokenizer {
        let b2c = byte_to_char();
        let mut tokens: Vec<String> = vec!["<|endoftext|>".into(), "<|im_start|>".into()];
        let mut types = vec![3, 3];
        for c in b2c {
            tokens.push(c.to_string());
            types.push(1);
        }
        let sp = b2c[b' ' as usize];
        let merges = vec![
            "h e".to_string(),
            "he l".into(),
            "hel l".into(),
            "hell o".into(),
            format!("{sp} w"),
        ];
        for m in &merges {
            tokens.push(m.replace(' ', ""));
            types.push(1);
        }
        Tokenizer::new(Vocab {
            model: "gpt2".into(),
            pre: Some("smollm".into()),
            tokens,
            types,
            merges,
            eos: Some(0),
            ..Default::default()
        })
        .unwrap()
    }

    #[test]
    fn byte_bpe_round_trips_and_merges() {
        let t = tiny_bpe();
        let ids = t.encode("hello", false).unwrap();
        assert_eq!(ids.len(), 1);
        assert_eq!(t.token(ids[0]), Some("hello"));
        for s in [
            "hello world",
            "  \t\n  spaces\r\n",
            "0123456789",
            "日本語のテキスト",
            "emoji 🦀🎉 mixed",
            "",
        ] {
            let ids = t.encode(s, false).unwrap();
            assert_eq!(t.decode(&ids, false), s);
        }
        let ids = t.encode("<|im_start|>hello", true).unwrap();
        assert_eq!(ids[0], 1);
        let ids = t.encode("<|im_start|>", false).unwrap();
        assert!(ids.len() > 1);
        assert_eq!(
            t.decode(&t.encode("<|im_start|>x", true).unwrap(), true),
            "x"
        );
    }

    #[test]
    fn sentencepiece_merges_by_score_with_byte_fallback() {
        let mut tokens = vec!["<unk>".to_string(), "<s>".into(), "</s>".into()];
        let mut types = vec![2, 3, 3];
        let mut scores = vec![0.0, 0.0, 0.0];
        for b in 0..256 {
            tokens.push(format!("<0x{b:02X}>"));
            types.push(6);
            scores.push(0.0);
        }
        for (t, s) in [
            ("\u{2581}", -1.0),
            ("h", -2.0),
            ("i", -2.0),
            ("hi", -0.5),
            ("\u{2581}hi", -0.1),
        ] {
            tokens.push(t.into());
            types.push(1);
            scores.push(s);
        }
        let t = Tokenizer::new(Vocab {
            model: "llama".into(),
            tokens,
            types,
            scores,
            unk: Some(0),
            ..Default::default()
        })
        .unwrap();
        let ids = t.encode("hi hi", false).unwrap();
        assert_eq!(
            ids.iter().map(|&i| t.token(i).unwrap()).collect::<Vec<_>>(),
            vec!["hi", "\u{2581}hi"]
        );
        for s in ["hi hi", "é 🦀", "  x\n"] {
            assert_eq!(t.decode(&t.encode(s, false).unwrap(), false), s);
        }
    }
}
