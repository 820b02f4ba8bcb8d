//! JSON schemas of each search space's architecture, for constrained output.

use crate::space::{darts, nb201, Space};
use serde_json::{json, Value};

/// The JSON schema an architecture reply must satisfy.
///
/// DARTS: `{"normal": [[op, input] x 8], "reduce": [[op, input] x 8]}`.
/// NAS-Bench-201: `{"edges": [op x 6]}` in the order of the string form
/// (node 1's edge from 0; node 2's from 0, 1; node 3's from 0, 1, 2).
pub fn arch_schema(space: Space) -> Value {
    match space {
        Space::Darts => {
            let pair = json!({
                "type": "array",
                "prefixItems": [
                    {"type": "string", "enum": darts::OPS[1..]},
                    {"type": "integer", "minimum": 0, "maximum": 5}
                ],
                "minItems": 2,
                "maxItems": 2
            });
            let cell = json!({"type": "array", "items": pair, "minItems": 8, "maxItems": 8});
            json!({
                "type": "object",
                "properties": {"normal": cell, "reduce": cell},
                "required": ["normal", "reduce"],
                "additionalProperties": false
            })
        }
        Space::Nb201 => json!({
            "type": "object",
            "properties": {
                "edges": {
                    "type": "array",
                    "items": {"type": "string", "enum": nb201::OPS},
                    "minItems": 6,
                    "maxItems": 6
                }
            },
            "required": ["edges"],
            "additionalProperties": false
        }),
    }
}
