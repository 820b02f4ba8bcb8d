//! A JSON schema compiled to a grammar of nodes.
//!
//! The subset: `type` object (`properties`, `required`,
//! `additionalProperties: false` or absent), array (`items`, `prefixItems`,
//! `minItems`, `maxItems`), string (free, `enum`, `const`, `maxLength`),
//! integer (`minimum`, `maximum`, `enum`), boolean, null; `enum` and `const`
//! of any JSON values. Annotations (`title`, `description`, `$schema`,
//! `$id`, `examples`, `default`) are ignored; any other keyword is an error,
//! so a schema is never silently enforced only in part.
//!
//! Output is compact JSON: no insignificant whitespace, object properties
//! in the schema's order (optional ones may be left out).

use serde_json::Value;

/// Index of a node.
pub type NodeId = u32;

/// One grammar node.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    /// An object with fixed properties, written in this order.
    Object {
        /// (JSON-encoded key without its quotes, value node, required)
        props: Vec<(Vec<u8>, NodeId, bool)>,
    },
    /// An array.
    Array {
        /// Nodes of the first items, in order.
        prefix: Vec<NodeId>,
        /// Node of the items after the prefix (`None`: no more items).
        items: Option<NodeId>,
        /// Fewest items.
        min: usize,
        /// Most items.
        max: usize,
    },
    /// One of these exact JSON texts.
    Literals(Vec<Vec<u8>>),
    /// An integer in a range.
    Integer {
        /// Smallest value.
        min: Option<i64>,
        /// Largest value.
        max: Option<i64>,
    },
    /// Any string (no control characters), at most `max_len` characters.
    String {
        /// Longest string, in characters.
        max_len: Option<usize>,
    },
}

/// A compiled schema.
#[derive(Debug, Clone, PartialEq)]
pub struct Grammar {
    /// Nodes; the root is node 0.
    pub nodes: Vec<Node>,
}

/// A schema outside the supported subset, or malformed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("JSON schema at {at}: {message}")]
pub struct SchemaError {
    /// JSON pointer of the offending part.
    pub at: String,
    /// What is wrong.
    pub message: String,
}

const IGNORED: [&str; 7] = [
    "title",
    "description",
    "$schema",
    "$id",
    "examples",
    "default",
    "$comment",
];

impl Grammar {
    /// Compile a schema.
    pub fn compile(schema: &Value) -> Result<Self, SchemaError> {
        let mut g = Grammar { nodes: Vec::new() };
        g.node(schema, "#")?;
        Ok(g)
    }

    fn push(&mut self, n: Node) -> NodeId {
        self.nodes.push(n);
        (self.nodes.len() - 1) as NodeId
    }

    fn node(&mut self, s: &Value, at: &str) -> Result<NodeId, SchemaError> {
        let err = |m: String| SchemaError {
            at: at.to_string(),
            message: m,
        };
        let obj = s
            .as_object()
            .ok_or_else(|| err(format!("expected a schema object, found {s}")))?;
        let allowed: &[&str] = if obj.contains_key("enum") || obj.contains_key("const") {
            &["type", "enum", "const"]
        } else {
            match obj.get("type").and_then(Value::as_str) {
                Some("object") => &["type", "properties", "required", "additionalProperties"],
                Some("array") => &["type", "items", "prefixItems", "minItems", "maxItems"],
                Some("string") => &["type", "maxLength"],
                Some("integer") => &["type", "minimum", "maximum"],
                Some("boolean") | Some("null") => &["type"],
                Some(other) => {
                    return Err(err(format!(
                        "type '{other}' is not supported (supported: object, array, string, integer, boolean, null)"
                    )))
                }
                None => {
                    return Err(err(
                        "needs a \"type\" (object, array, string, integer, boolean, null), \"enum\" or \"const\"".into(),
                    ))
                }
            }
        };
        for k in obj.keys() {
            if !allowed.contains(&k.as_str()) && !IGNORED.contains(&k.as_str()) {
                return Err(err(format!("keyword '{k}' is not supported here")));
            }
        }
        // Reserve the slot so the root stays node 0.
        let id = self.push(Node::Literals(Vec::new()));
        let node = if let Some(c) = obj.get("const") {
            Node::Literals(vec![literal(c)])
        } else if let Some(e) = obj.get("enum") {
            let items = e
                .as_array()
                .filter(|a| !a.is_empty())
                .ok_or_else(|| err("\"enum\" must be a non-empty list".into()))?;
            Node::Literals(items.iter().map(literal).collect())
        } else {
            match obj.get("type").and_then(Value::as_str) {
                Some("object") => {
                    if obj
                        .get("additionalProperties")
                        .is_some_and(|v| v != &Value::Bool(false))
                    {
                        return Err(err(
                            "only \"additionalProperties\": false is supported".into()
                        ));
                    }
                    let required: Vec<&str> = match obj.get("required") {
                        None => Vec::new(),
                        Some(r) => r
                            .as_array()
                            .and_then(|a| a.iter().map(Value::as_str).collect::<Option<Vec<_>>>())
                            .ok_or_else(|| err("\"required\" must be a list of names".into()))?,
                    };
                    let mut props = Vec::new();
                    if let Some(p) = obj.get("properties") {
                        let p = p
                            .as_object()
                            .ok_or_else(|| err("\"properties\" must be an object".into()))?;
                        for (k, v) in p {
                            let child = self.node(v, &format!("{at}/properties/{k}"))?;
                            let key = serde_json::to_string(k)
                                .map(|s| s.as_bytes()[1..s.len() - 1].to_vec())
                                .unwrap_or_default();
                            props.push((key, child, required.contains(&k.as_str())));
                        }
                    }
                    for r in &required {
                        if !props.iter().any(|(k, _, _)| k == r.as_bytes()) {
                            return Err(err(format!(
                                "required property '{r}' is not in \"properties\""
                            )));
                        }
                    }
                    Node::Object { props }
                }
                Some("array") => {
                    let count = |k: &str| -> Result<Option<usize>, SchemaError> {
                        match obj.get(k) {
                            None => Ok(None),
                            Some(v) => v
                                .as_u64()
                                .map(|n| Some(n as usize))
                                .ok_or_else(|| err(format!("\"{k}\" must be a whole number"))),
                        }
                    };
                    let mut prefix = Vec::new();
                    if let Some(p) = obj.get("prefixItems") {
                        let p = p
                            .as_array()
                            .ok_or_else(|| err("\"prefixItems\" must be a list".into()))?;
                        for (i, v) in p.iter().enumerate() {
                            prefix.push(self.node(v, &format!("{at}/prefixItems/{i}"))?);
                        }
                    }
                    let items = match obj.get("items") {
                        None | Some(Value::Bool(false)) => None,
                        Some(v) => Some(self.node(v, &format!("{at}/items"))?),
                    };
                    let min = count("minItems")?.unwrap_or(0);
                    let max = match (items, count("maxItems")?) {
                        (_, Some(m)) => m,
                        (None, None) => prefix.len(),
                        (Some(_), None) => usize::from(u16::MAX),
                    };
                    let max = if items.is_none() {
                        max.min(prefix.len())
                    } else {
                        max
                    };
                    if min > max {
                        return Err(err(format!(
                            "minItems {min} exceeds the most items possible ({max})"
                        )));
                    }
                    Node::Array {
                        prefix,
                        items,
                        min,
                        max,
                    }
                }
                Some("string") => Node::String {
                    max_len: match obj.get("maxLength") {
                        None => None,
                        Some(v) => Some(
                            v.as_u64()
                                .ok_or_else(|| err("\"maxLength\" must be a whole number".into()))?
                                as usize,
                        ),
                    },
                },
                Some("integer") => {
                    let bound = |k: &str| -> Result<Option<i64>, SchemaError> {
                        match obj.get(k) {
                            None => Ok(None),
                            Some(v) => v
                                .as_i64()
                                .map(Some)
                                .ok_or_else(|| err(format!("\"{k}\" must be an integer"))),
                        }
                    };
                    let (min, max) = (bound("minimum")?, bound("maximum")?);
                    if let (Some(a), Some(b)) = (min, max) {
                        if a > b {
                            return Err(err(format!("minimum {a} exceeds maximum {b}")));
                        }
                    }
                    Node::Integer { min, max }
                }
                Some("boolean") => Node::Literals(vec![b"true".to_vec(), b"false".to_vec()]),
                _ => Node::Literals(vec![b"null".to_vec()]),
            }
        };
        self.nodes[id as usize] = node;
        Ok(id)
    }
}

impl Grammar {
    /// Check a parsed JSON value against the grammar (any key order and
    /// whitespace); the error names the JSON pointer of the first problem.
    pub fn validate(&self, v: &Value) -> Result<(), SchemaError> {
        self.check(0, v, "#")
    }

    fn check(&self, id: NodeId, v: &Value, at: &str) -> Result<(), SchemaError> {
        let err = |m: String| {
            Err(SchemaError {
                at: at.to_string(),
                message: m,
            })
        };
        let Some(node) = self.nodes.get(id as usize) else {
            return err("internal: no such node".into());
        };
        match node {
            Node::Literals(l) => {
                if l.iter()
                    .any(|x| serde_json::from_slice::<Value>(x).ok().as_ref() == Some(v))
                {
                    Ok(())
                } else {
                    let options: Vec<String> = l
                        .iter()
                        .map(|x| String::from_utf8_lossy(x).into_owned())
                        .collect();
                    err(format!("{v} is not one of {}", options.join(", ")))
                }
            }
            Node::Integer { min, max } => match v.as_i64() {
                Some(x) if min.is_none_or(|m| x >= m) && max.is_none_or(|m| x <= m) => Ok(()),
                _ => err(format!(
                    "{v} is not an integer in [{}, {}]",
                    min.map_or("-inf".into(), |m| m.to_string()),
                    max.map_or("inf".into(), |m| m.to_string())
                )),
            },
            Node::String { max_len } => match v.as_str() {
                Some(s) if max_len.is_none_or(|m| s.chars().count() <= m) => Ok(()),
                _ => err(format!("{v} is not a string of the allowed length")),
            },
            Node::Array {
                prefix,
                items,
                min,
                max,
            } => {
                let Some(a) = v.as_array() else {
                    return err(format!("expected an array, found {v}"));
                };
                if a.len() < *min || a.len() > *max {
                    return err(format!("expected {min} to {max} items, found {}", a.len()));
                }
                for (i, x) in a.iter().enumerate() {
                    let Some(n) = prefix.get(i).copied().or(*items) else {
                        return err(format!("item {i} is not allowed"));
                    };
                    self.check(n, x, &format!("{at}/{i}"))?;
                }
                Ok(())
            }
            Node::Object { props } => {
                let Some(o) = v.as_object() else {
                    return err(format!("expected an object, found {v}"));
                };
                for k in o.keys() {
                    if !props.iter().any(|p| p.0 == k.as_bytes()) {
                        return err(format!("unexpected property '{k}'"));
                    }
                }
                for (k, n, required) in props {
                    let name = String::from_utf8_lossy(k);
                    match o.get(name.as_ref()) {
                        Some(x) => self.check(*n, x, &format!("{at}/{name}"))?,
                        None if *required => {
                            return err(format!("missing required property '{name}'"))
                        }
                        None => {}
                    }
                }
                Ok(())
            }
        }
    }
}

/// Compact JSON text of a value.
fn literal(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn compiles_the_subset() {
        let g = Grammar::compile(&json!({
            "type": "object",
            "properties": {
                "a": {"type": "array", "prefixItems": [{"enum": ["x", "y"]}, {"type": "integer", "minimum": 0, "maximum": 4}]},
                "b": {"type": "boolean"}
            },
            "required": ["a"],
            "additionalProperties": false
        }))
        .unwrap();
        match &g.nodes[0] {
            Node::Object { props } => {
                assert_eq!(props.len(), 2);
                assert!(props[0].2 && !props[1].2);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn rejects_what_it_cannot_enforce() {
        for (s, want) in [
            (json!({"type": "string", "pattern": "a+"}), "pattern"),
            (json!({"type": "number"}), "number"),
            (json!({"anyOf": []}), "type"),
            (json!({"type": "object", "required": ["z"]}), "'z'"),
            (
                json!({"type": "array", "prefixItems": [{"type": "null"}], "minItems": 2}),
                "minItems",
            ),
        ] {
            let e = Grammar::compile(&s).unwrap_err().to_string();
            assert!(e.contains(want), "{e}");
        }
    }
}
