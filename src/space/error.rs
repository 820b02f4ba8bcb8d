//! The one error type every search space reports a bad architecture with.

/// An architecture that does not parse or does not fit its search space.
///
/// `at` says where (which cell, which node, which edge) and `message` what is
/// wrong, naming the offending text and, for an unknown op, the valid ones.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {space} architecture{}: {message}", if at.is_empty() { String::new() } else { format!(" at {at}") })]
pub struct ArchError {
    /// The search space's name (`darts`, `nb201`).
    pub space: &'static str,
    /// Where in the architecture the problem is; empty when it is the whole text.
    pub at: String,
    /// What is wrong.
    pub message: String,
}

impl ArchError {
    pub(crate) fn new(
        space: &'static str,
        at: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        ArchError {
            space,
            at: at.into(),
            message: message.into(),
        }
    }
}

/// Quote a piece of user text for an error message, shortened if long.
pub(crate) fn quoted(text: &str) -> String {
    let t: String = text.chars().take(60).collect();
    if t.len() < text.len() {
        format!("'{t}…'")
    } else {
        format!("'{t}'")
    }
}
