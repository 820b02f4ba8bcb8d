//! Turning an LLM's statement of shared patterns into insights, and marking
//! insights that later evidence contradicts.

use crate::knowledge::{Insight, InsightStatus};

/// Split a patterns reply into at most `max` insight texts: bullet or
/// numbered lines, or else the whole reply as one.
pub fn split_patterns(text: &str, max: usize) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.lines() {
        let t = line.trim();
        let stripped = t
            .strip_prefix("- ")
            .or_else(|| t.strip_prefix("* "))
            .or_else(|| t.strip_prefix("• "))
            .or_else(|| {
                let digits = t.chars().take_while(|c| c.is_ascii_digit()).count();
                (digits > 0).then(|| t[digits..].trim_start_matches(['.', ')']).trim_start())
            });
        if let Some(s) = stripped.map(str::trim).filter(|s| s.len() >= 10) {
            out.push(clip(s, 300));
        }
        if out.len() == max {
            break;
        }
    }
    if out.is_empty() {
        let whole = text.split_whitespace().collect::<Vec<_>>().join(" ");
        if whole.len() >= 10 {
            out.push(clip(&whole, 300));
        }
    }
    out
}

/// At most `n` characters of `s`, cut at a character boundary.
pub fn clip(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(n).collect();
        t.push('…');
        t
    }
}

/// Record the outcome of an architecture designed from `insight`: it
/// supports the insight when it scores at least `bar` (the median of the
/// session's scores before it), else it counts against it. An insight with at
/// least two counter-examples, more than its supports, is marked
/// contradicted. Returns whether the insight changed.
pub fn judge(
    insight: &mut Insight,
    supports: &mut u32,
    record_id: &str,
    score: Option<f64>,
    bar: Option<f64>,
) -> bool {
    let (Some(s), Some(b)) = (score, bar) else {
        return false;
    };
    if s >= b {
        *supports += 1;
        return false;
    }
    insight.contradicted_by.push(record_id.to_string());
    let against = insight.contradicted_by.len() as u32;
    if insight.status == InsightStatus::Active && against >= 2 && against > *supports {
        insight.status = InsightStatus::Contradicted;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::knowledge::Provenance;
    use crate::space::Space;

    #[test]
    fn splits_bullets_numbers_and_prose() {
        let t = "Patterns:\n- Stack 3x3 convolutions early\n2. Keep a skip connection to the output\n* x\n";
        assert_eq!(
            split_patterns(t, 3),
            vec![
                "Stack 3x3 convolutions early",
                "Keep a skip connection to the output"
            ]
        );
        assert_eq!(
            split_patterns("All of them use many separable convolutions.", 3).len(),
            1
        );
        assert!(split_patterns("ok", 3).is_empty());
    }

    #[test]
    fn two_counter_examples_outweighing_support_contradict() {
        let mut i = Insight {
            id: "i".into(),
            space: Space::Nb201,
            text: "t".into(),
            evidence: vec![],
            status: InsightStatus::Active,
            contradicted_by: vec![],
            provenance: Provenance::default(),
            created: String::new(),
        };
        let mut sup = 0;
        assert!(!judge(&mut i, &mut sup, "a", Some(90.0), Some(80.0)));
        assert!(judge(&mut i, &mut sup, "b", Some(70.0), Some(80.0)));
        assert_eq!(i.status, InsightStatus::Active);
        assert!(judge(&mut i, &mut sup, "c", Some(70.0), Some(80.0)));
        assert_eq!(i.status, InsightStatus::Contradicted);
        assert_eq!(i.contradicted_by, vec!["b", "c"]);
    }
}
