//! A pushdown automaton over bytes that accepts exactly the compact JSON
//! texts a [`Grammar`] describes, and every prefix of them.
//!
//! The state is a stack of small frames; it is cloned, hashed and compared,
//! so masks can be cached per state.

use super::grammar::{Grammar, Node, NodeId};

/// Where an object is.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum ObjPhase {
    /// After `{`: a key or `}`.
    Open,
    /// After `,`: a key.
    ExpectKey,
    /// Inside a key's quotes, these bytes so far.
    Key(Vec<u8>),
    /// After property `prop`'s key: `:`.
    Colon(u16),
    /// After a property's value: `,` or `}`.
    AfterValue,
}

/// Where an array is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum ArrPhase {
    Open,
    ExpectItem,
    AfterValue,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Frame {
    /// A value of this node, not started.
    Value(NodeId),
    /// One of a node's literals, these bytes so far.
    Lit(NodeId, Vec<u8>),
    /// An integer, these bytes so far.
    Int(NodeId, Vec<u8>),
    /// Inside a string: characters so far, escape state.
    Str(NodeId, u32, Esc),
    /// An object: index of the first property not yet passed, phase.
    Obj(NodeId, u16, ObjPhase),
    /// An array: items started so far, phase.
    Arr(NodeId, u16, ArrPhase),
}

/// Where a string is in an escape: `state` 0 (none), 1 (after `\`),
/// 2..=5 (hex digits of `\u` still due, the digits so far in `code`);
/// `low` when a high surrogate was written and its low half must follow
/// (JSON parsers reject a lone surrogate). And where it is in a UTF-8
/// character: `cont` continuation bytes still due, the next one in
/// `lo..=hi` (which keeps out overlong forms, surrogates and codes past
/// U+10FFFF).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
struct Esc {
    state: u8,
    code: u16,
    low: bool,
    cont: u8,
    lo: u8,
    hi: u8,
}

impl Esc {
    /// Take byte `b` of a string's text (outside escapes) as UTF-8: false
    /// when no valid text has it here. Returns whether `b` begins a
    /// character through `starts`.
    fn utf8(&mut self, b: u8, starts: &mut bool) -> bool {
        if self.cont > 0 {
            if !(self.lo..=self.hi).contains(&b) {
                return false;
            }
            self.cont -= 1;
            (self.lo, self.hi) = (0x80, 0xBF);
            *starts = false;
            return true;
        }
        *starts = true;
        let (cont, lo, hi) = match b {
            0x00..=0x7F => return true,
            0xC2..=0xDF => (1, 0x80, 0xBF),
            0xE0 => (2, 0xA0, 0xBF),
            0xED => (2, 0x80, 0x9F),
            0xE1..=0xEF => (2, 0x80, 0xBF),
            0xF0 => (3, 0x90, 0xBF),
            0xF1..=0xF3 => (3, 0x80, 0xBF),
            0xF4 => (3, 0x80, 0x8F),
            _ => return false,
        };
        (self.cont, self.lo, self.hi) = (cont, lo, hi);
        true
    }
}

const HIGH: std::ops::RangeInclusive<u32> = 0xD800..=0xDBFF;
const LOW: std::ops::RangeInclusive<u32> = 0xDC00..=0xDFFF;

/// The codes a `\u` escape can still reach after the hex digits `code`
/// (with `due` digits still to come).
fn reachable(code: u16, due: u8) -> std::ops::RangeInclusive<u32> {
    let shift = 4 * u32::from(due);
    let lo = u32::from(code) << shift;
    lo..=lo + ((1u32 << shift) - 1)
}

/// An automaton state.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct State(Vec<Frame>);

/// The automaton of a grammar.
#[derive(Debug, Clone)]
pub struct Automaton {
    g: Grammar,
}

fn int_parts(text: &[u8]) -> (bool, &[u8]) {
    match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, text),
    }
}

/// Whether `text` is a complete integer within the bounds.
fn int_complete(text: &[u8], min: Option<i64>, max: Option<i64>) -> bool {
    let (neg, d) = int_parts(text);
    if d.is_empty() || (d.len() > 1 && d[0] == b'0') || (neg && d == b"0") || d.len() > 18 {
        return false;
    }
    let Some(v) = std::str::from_utf8(d)
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
    else {
        return false;
    };
    let v = if neg { -v } else { v };
    min.is_none_or(|m| v >= m) && max.is_none_or(|m| v <= m)
}

/// Whether some completion of `text` is an integer within the bounds.
fn int_feasible(text: &[u8], min: Option<i64>, max: Option<i64>) -> bool {
    let (neg, d) = int_parts(text);
    if !d.iter().all(u8::is_ascii_digit) || d.len() > 18 {
        return false;
    }
    let lo = min.map_or(i128::MIN, i128::from);
    let hi = max.map_or(i128::MAX, i128::from);
    if d.is_empty() {
        // "-" alone: any negative number.
        return neg && lo <= -1;
    }
    if d.len() > 1 && d[0] == b'0' {
        return false;
    }
    let Some(v) = std::str::from_utf8(d)
        .ok()
        .and_then(|s| s.parse::<i128>().ok())
    else {
        return false;
    };
    if neg && v == 0 {
        return false;
    }
    let max_extra = if v == 0 { 0 } else { 18 - d.len() };
    let mut scale: i128 = 1;
    for _ in 0..=max_extra {
        let (a, b) = (v * scale, v * scale + scale - 1);
        let (a, b) = if neg { (-b, -a) } else { (a, b) };
        // Exactly v (scale 1) or v followed by more digits.
        if a <= hi && b >= lo {
            return true;
        }
        scale *= 10;
    }
    false
}

impl Automaton {
    /// The automaton of `g`.
    pub fn new(g: Grammar) -> Self {
        Automaton { g }
    }

    /// The state before any output.
    pub fn start(&self) -> State {
        State(vec![Frame::Value(0)])
    }

    fn node(&self, id: NodeId) -> Option<&Node> {
        self.g.nodes.get(id as usize)
    }

    /// Feed bytes; `None` when they leave the language.
    pub fn feed(&self, state: &State, bytes: &[u8]) -> Option<State> {
        let mut s = state.clone();
        for &b in bytes {
            if !self.step(&mut s.0, b) {
                return None;
            }
        }
        Some(s)
    }

    /// Feed one byte in place; false when it leaves the language (the
    /// state is then unspecified).
    pub fn step_in_place(&self, state: &mut State, b: u8) -> bool {
        self.step(&mut state.0, b)
    }

    /// Whether the output so far is a complete value.
    pub fn is_complete(&self, state: &State) -> bool {
        match state.0.as_slice() {
            [] => true,
            [Frame::Lit(n, t)] => match self.node(*n) {
                Some(Node::Literals(l)) => l.iter().any(|x| x == t),
                _ => false,
            },
            [Frame::Int(n, t)] => match self.node(*n) {
                Some(Node::Integer { min, max }) => int_complete(t, *min, *max),
                _ => false,
            },
            _ => false,
        }
    }

    /// Whether any further byte is accepted.
    pub fn can_continue(&self, state: &State) -> bool {
        if state.0.is_empty() {
            return false;
        }
        (0..=255u8).any(|b| self.feed(state, &[b]).is_some())
    }

    fn step(&self, st: &mut Vec<Frame>, b: u8) -> bool {
        loop {
            let Some(top) = st.last_mut() else {
                return false;
            };
            match top {
                Frame::Value(n) => {
                    let n = *n;
                    let Some(node) = self.node(n) else {
                        return false;
                    };
                    let frame = match node {
                        Node::Object { .. } if b == b'{' => Frame::Obj(n, 0, ObjPhase::Open),
                        Node::Array { .. } if b == b'[' => Frame::Arr(n, 0, ArrPhase::Open),
                        Node::String { .. } if b == b'"' => Frame::Str(n, 0, Esc::default()),
                        Node::Literals(l) if l.iter().any(|x| x.first() == Some(&b)) => {
                            Frame::Lit(n, vec![b])
                        }
                        Node::Integer { min, max } if int_feasible(&[b], *min, *max) => {
                            Frame::Int(n, vec![b])
                        }
                        _ => return false,
                    };
                    *top = frame;
                    return true;
                }
                Frame::Lit(n, t) => {
                    let Some(Node::Literals(l)) = self.g.nodes.get(*n as usize) else {
                        return false;
                    };
                    let len = t.len();
                    if l.iter()
                        .any(|x| x.len() > len && x[..len] == t[..] && x[len] == b)
                    {
                        t.push(b);
                        return true;
                    }
                    if l.iter().any(|x| x == t) {
                        st.pop();
                        continue;
                    }
                    return false;
                }
                Frame::Int(n, t) => {
                    let Some(Node::Integer { min, max }) = self.g.nodes.get(*n as usize) else {
                        return false;
                    };
                    let (min, max) = (*min, *max);
                    if b.is_ascii_digit() {
                        t.push(b);
                        if int_feasible(t, min, max) {
                            return true;
                        }
                        t.pop();
                    }
                    if int_complete(t, min, max) {
                        st.pop();
                        continue;
                    }
                    return false;
                }
                Frame::Str(n, len, esc) => {
                    let max_len = match self.g.nodes.get(*n as usize) {
                        Some(Node::String { max_len }) => *max_len,
                        _ => return false,
                    };
                    match esc.state {
                        // After a high surrogate only its low half's `\`
                        // may come (not counted: the pair is one character).
                        0 if esc.low => {
                            if b != b'\\' {
                                return false;
                            }
                            esc.state = 1;
                            return true;
                        }
                        0 => match b {
                            b'"' if esc.cont == 0 => {
                                st.pop();
                                return true;
                            }
                            0..=0x1f => return false,
                            _ => {
                                // Whole UTF-8 characters only; count
                                // characters, not their bytes.
                                let mut starts = false;
                                if !esc.utf8(b, &mut starts) {
                                    return false;
                                }
                                if starts {
                                    if max_len.is_some_and(|m| *len as usize >= m) {
                                        return false;
                                    }
                                    *len += 1;
                                }
                                if b == b'\\' {
                                    esc.state = 1;
                                }
                                return true;
                            }
                        },
                        1 => {
                            esc.state = match b {
                                b'u' => 5,
                                _ if esc.low => return false,
                                b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => 0,
                                _ => return false,
                            };
                            esc.code = 0;
                            return true;
                        }
                        k => {
                            let Some(d) = (b as char).to_digit(16) else {
                                return false;
                            };
                            let code = (esc.code << 4) | d as u16;
                            let due = k - 2;
                            let r = reachable(code, due);
                            // Reject as soon as no valid code can follow:
                            // a low half where none is due, anything else
                            // where one is.
                            let ok = if esc.low {
                                r.start() <= LOW.end() && LOW.start() <= r.end()
                            } else {
                                !(LOW.start() <= r.start() && r.end() <= LOW.end())
                            };
                            if !ok {
                                return false;
                            }
                            esc.code = code;
                            esc.state = if due == 0 { 0 } else { k - 1 };
                            if due == 0 {
                                esc.low = !esc.low && HIGH.contains(&u32::from(code));
                            }
                            return true;
                        }
                    }
                }
                Frame::Obj(n, next, phase) => {
                    let n = *n;
                    let Some(Node::Object { props }) = self.g.nodes.get(n as usize) else {
                        return false;
                    };
                    let next_i = *next as usize;
                    // Properties that may come next: from `next` up to and
                    // including the first required one.
                    let upto = props[next_i..]
                        .iter()
                        .position(|p| p.2)
                        .map_or(props.len(), |i| next_i + i + 1);
                    let may_close = props[next_i..].iter().all(|p| !p.2);
                    match phase {
                        ObjPhase::Open | ObjPhase::ExpectKey => {
                            if b == b'"' && upto > next_i {
                                *phase = ObjPhase::Key(Vec::new());
                                return true;
                            }
                            if b == b'}' && may_close && *phase == ObjPhase::Open {
                                st.pop();
                                return true;
                            }
                            return false;
                        }
                        ObjPhase::Key(k) => {
                            if b == b'"' {
                                if let Some(j) = (next_i..upto).find(|&j| props[j].0 == *k) {
                                    *phase = ObjPhase::Colon(j as u16);
                                    return true;
                                }
                                return false;
                            }
                            let len = k.len();
                            if (next_i..upto).any(|j| {
                                let key = &props[j].0;
                                key.len() > len && key[..len] == k[..] && key[len] == b
                            }) {
                                k.push(b);
                                return true;
                            }
                            return false;
                        }
                        ObjPhase::Colon(j) => {
                            if b != b':' {
                                return false;
                            }
                            let j = *j as usize;
                            let child = props[j].1;
                            *next = (j + 1) as u16;
                            *phase = ObjPhase::AfterValue;
                            st.push(Frame::Value(child));
                            return true;
                        }
                        ObjPhase::AfterValue => {
                            if b == b',' && upto > next_i {
                                *phase = ObjPhase::ExpectKey;
                                return true;
                            }
                            if b == b'}' && may_close {
                                st.pop();
                                return true;
                            }
                            return false;
                        }
                    }
                }
                Frame::Arr(n, count, phase) => {
                    let Some(Node::Array {
                        prefix,
                        items,
                        min,
                        max,
                    }) = self.g.nodes.get(*n as usize)
                    else {
                        return false;
                    };
                    let c = *count as usize;
                    let item = if c < *max {
                        prefix.get(c).copied().or(*items)
                    } else {
                        None
                    };
                    match phase {
                        ArrPhase::Open | ArrPhase::ExpectItem => {
                            if b == b']' && *phase == ArrPhase::Open && c >= *min {
                                st.pop();
                                return true;
                            }
                            let Some(item) = item else {
                                return false;
                            };
                            *count += 1;
                            *phase = ArrPhase::AfterValue;
                            st.push(Frame::Value(item));
                            continue;
                        }
                        ArrPhase::AfterValue => {
                            if b == b',' && item.is_some() {
                                *phase = ArrPhase::ExpectItem;
                                return true;
                            }
                            if b == b']' && c >= *min {
                                st.pop();
                                return true;
                            }
                            return false;
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn auto(s: serde_json::Value) -> Automaton {
        Automaton::new(Grammar::compile(&s).unwrap())
    }

    fn accepts(a: &Automaton, text: &str) -> bool {
        a.feed(&a.start(), text.as_bytes())
            .is_some_and(|s| a.is_complete(&s))
    }

    #[test]
    fn strings_hold_whole_utf8_characters_only() {
        // Found by bench/constraint-vs-llguidance.sh: tokens beginning with
        // a continuation byte were allowed where no character was open, so
        // a constrained reply could hold bytes that are not UTF-8.
        let a = auto(json!({"type": "string", "maxLength": 3}));
        let feeds = |bytes: &[u8]| a.feed(&a.start(), bytes).is_some_and(|s| a.is_complete(&s));
        for ok in ["\"é€😀\"", "\"\u{7f}ab\"", "\"\u{10ffff}\u{e000}\u{d7ff}\""] {
            assert!(feeds(ok.as_bytes()), "{ok:?}");
        }
        assert!(!feeds("\"é€😀x\"".as_bytes()), "four characters");
        let dead = |bytes: &[u8]| a.feed(&a.start(), bytes).is_none();
        for bad in [
            &b"\"\x80"[..],    // a continuation byte alone
            b"\"a\xbf",        // after a whole character
            b"\"\xc3\"",       // a character cut by the closing quote
            b"\"\xc3\\",       // or by an escape
            b"\"\xc0\x80",     // overlong
            b"\"\xe0\x80",     // overlong, three bytes
            b"\"\xed\xa0",     // a surrogate
            b"\"\xf4\x90",     // past U+10FFFF
            b"\"\xf5",         // never in UTF-8
            b"\"\xc3\xa9\xa9", // one continuation too many
        ] {
            assert!(dead(bad), "{bad:02x?}");
        }
        assert!(!dead(b"\"\xf0\x9f\x98") && !feeds(b"\"\xf0\x9f\x98\""));
    }

    #[test]
    fn unicode_escapes_never_make_a_lone_surrogate() {
        // Found by the fuzz harness (schema target): the automaton completed
        // "\ud800", which JSON parsers reject, so a constrained reply could
        // fail to parse.
        let a = auto(json!({"type": "string", "maxLength": 2}));
        for ok in [
            r#""\ud83d\ude00""#,
            r#""\u00e9\ud83d\ude00""#,
            r#""\uD800\uDFFF""#,
            r#""\uffff""#,
        ] {
            assert!(accepts(&a, ok), "{ok}");
            serde_json::from_str::<serde_json::Value>(ok).unwrap();
        }
        for bad in [
            r#""\ud800""#,
            r#""\udc00""#,
            r#""\ud800x""#,
            r#""\ud800\n""#,
            r#""\ud800\u0041""#,
        ] {
            assert!(!accepts(&a, bad), "{bad}");
        }
        // Rejected at the first byte that rules a valid escape out, so the
        // decoder never walks into a dead end.
        let dead = |prefix: &str| a.feed(&a.start(), prefix.as_bytes()).is_none();
        assert!(!dead(r#""\ud8"#) && !dead(r#""\ud800\ud"#) && !dead(r#""\ud800\udc"#));
        assert!(dead(r#""\udc"#) && dead(r#""\ud800\ud8"#) && dead(r#""\ud800\u0"#));
        // The pair is one character: two pairs fit in maxLength 2.
        assert!(accepts(&a, r#""\ud83d\ude00\ud83d\ude00""#));
        assert!(!accepts(&a, r#""\ud83d\ude00\ud83d\ude00x""#));
    }

    #[test]
    fn objects_arrays_enums_and_ranges() {
        let a = auto(json!({
            "type": "object",
            "properties": {
                "cell": {"type": "array", "items": {"type": "array", "prefixItems": [
                    {"enum": ["conv", "pool"]},
                    {"type": "integer", "minimum": 0, "maximum": 12}
                ]}, "minItems": 1, "maxItems": 2},
                "note": {"type": "string", "maxLength": 3},
                "ok": {"type": "boolean"}
            },
            "required": ["cell", "ok"]
        }));
        assert!(accepts(&a, r#"{"cell":[["conv",0]],"ok":true}"#));
        assert!(accepts(
            &a,
            r#"{"cell":[["conv",12],["pool",3]],"note":"a\"b","ok":false}"#
        ));
        for bad in [
            r#"{"cell":[],"ok":true}"#,
            r#"{"cell":[["conv",13]],"ok":true}"#,
            r#"{"cell":[["conv",01]],"ok":true}"#,
            r#"{"cell":[["relu",1]],"ok":true}"#,
            r#"{"cell":[["conv",1]]}"#,
            r#"{"ok":true,"cell":[["conv",1]]}"#,
            r#"{"cell":[["conv",1]],"note":"abcd","ok":true}"#,
            r#"{"cell":[["conv",1],["conv",1],["conv",1]],"ok":true}"#,
            r#"{ "cell":[["conv",1]],"ok":true}"#,
        ] {
            assert!(!accepts(&a, bad), "{bad}");
        }
        // prefixes stay alive, and the completed value accepts nothing more
        let s = a.feed(&a.start(), br#"{"cell":[["co"#).unwrap();
        assert!(!a.is_complete(&s) && a.can_continue(&s));
        let s = a
            .feed(&a.start(), br#"{"cell":[["conv",1]],"ok":true}"#)
            .unwrap();
        assert!(a.is_complete(&s) && !a.can_continue(&s));
    }

    #[test]
    fn integer_prefix_feasibility() {
        assert!(int_feasible(b"1", Some(10), Some(19)));
        assert!(!int_feasible(b"2", Some(10), Some(19)));
        assert!(int_feasible(b"-", Some(-5), Some(5)));
        assert!(!int_feasible(b"-", Some(0), None));
        assert!(!int_feasible(b"-0", None, None));
        assert!(!int_feasible(b"00", None, None));
        assert!(int_complete(b"0", Some(0), Some(4)));
        let a = auto(json!({"type": "integer", "minimum": -3, "maximum": 120}));
        for ok in ["-3", "0", "7", "99", "120"] {
            assert!(accepts(&a, ok), "{ok}");
        }
        for bad in ["-4", "121", "1200", "-", "-0"] {
            assert!(!accepts(&a, bad), "{bad}");
        }
        // top level "1" is complete and may still grow
        let s = a.feed(&a.start(), b"1").unwrap();
        assert!(a.is_complete(&s) && a.can_continue(&s));
    }

    #[test]
    fn optional_properties_may_be_skipped_in_order() {
        let a = auto(json!({"type": "object", "properties": {
            "a": {"type": "null"}, "b": {"type": "null"}, "c": {"type": "null"}
        }, "required": ["c"]}));
        assert!(accepts(&a, r#"{"c":null}"#));
        assert!(accepts(&a, r#"{"a":null,"c":null}"#));
        assert!(accepts(&a, r#"{"b":null,"c":null}"#));
        assert!(!accepts(&a, r#"{"b":null,"a":null,"c":null}"#));
        assert!(!accepts(&a, r#"{}"#));
    }
}
