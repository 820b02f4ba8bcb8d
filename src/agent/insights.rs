//! Marking free-text insights (from knowledge bases written before insights
//! stated checkable claims) that later evidence contradicts; clipping text.

use crate::knowledge::{Insight, InsightStatus};

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
    fn two_counter_examples_outweighing_support_contradict() {
        let mut i = Insight {
            id: "i".into(),
            space: Space::Nb201,
            text: "t".into(),
            evidence: vec![],
            status: InsightStatus::Active,
            contradicted_by: vec![],
            claim: None,
            stats: None,
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
