//! Prompt templates: minijinja files, one per step of the agent.
//!
//! The built-in templates are the files in the repository's `prompts/`
//! folder, compiled in. A user points `agent.prompts_dir` at a folder of
//! their own; any template found there replaces the built-in one. Rendering
//! is strict: a variable the context lacks is an error naming the template,
//! the line and the expression.

use minijinja::{Environment, UndefinedBehavior};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// The steps that have a template, with their built-in text.
pub const TEMPLATES: [(&str, &str); 8] = [
    ("system", include_str!("../prompts/system.j2")),
    (
        "evolution_strategy",
        include_str!("../prompts/evolution_strategy.j2"),
    ),
    (
        "evolution_arch",
        include_str!("../prompts/evolution_arch.j2"),
    ),
    (
        "inspiration_patterns",
        include_str!("../prompts/inspiration_patterns.j2"),
    ),
    (
        "inspiration_arch",
        include_str!("../prompts/inspiration_arch.j2"),
    ),
    ("repair", include_str!("../prompts/repair.j2")),
    (
        "ranked_mutation",
        include_str!("../prompts/ranked_mutation.j2"),
    ),
    ("prune", include_str!("../prompts/prune.j2")),
];

/// A template problem.
#[derive(Debug, thiserror::Error)]
pub enum PromptError {
    /// A user template could not be read.
    #[error("cannot read prompt template {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A template has a syntax error, or rendering failed.
    #[error("prompt template {template}{line}: {message}")]
    Template {
        /// Template name and origin (`evolution_arch (prompts/evolution_arch.j2)`).
        template: String,
        /// `, line N` when known.
        line: String,
        /// What is wrong (with the offending expression).
        message: String,
    },
    /// No such template.
    #[error("no prompt template named '{0}'")]
    Unknown(String),
}

/// The loaded templates.
#[derive(Debug)]
pub struct Prompts {
    env: Environment<'static>,
    origins: Vec<(String, String)>,
}

fn describe(
    err: &minijinja::Error,
    origins: &[(String, String)],
    sources: &[(String, String)],
) -> PromptError {
    let name = err.name().unwrap_or("?").to_string();
    let origin = origins
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, o)| format!("{name} ({o})"))
        .unwrap_or(name.clone());
    let mut message = match err.kind() {
        minijinja::ErrorKind::UndefinedError => "undefined variable".to_string(),
        _ => err.kind().to_string(),
    };
    if let Some(d) = err.detail() {
        message.push_str(&format!(": {d}"));
    }
    let source = sources
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, s)| s.as_str());
    if let (Some(range), Some(src)) = (err.range(), source) {
        if let Some(expr) = src.get(range) {
            message.push_str(&format!(" (in `{}`)", expr.trim()));
        }
    }
    PromptError::Template {
        template: origin,
        line: err
            .line()
            .map(|l| format!(", line {l}"))
            .unwrap_or_default(),
        message,
    }
}

impl Prompts {
    /// The built-in templates, overridden by those in `dir` (if given).
    pub fn load(dir: Option<&Path>) -> Result<Self, PromptError> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        let mut origins = Vec::new();
        let mut sources = Vec::new();
        for (name, builtin) in TEMPLATES {
            let user = dir
                .map(|d| d.join(format!("{name}.j2")))
                .filter(|p| p.is_file());
            let (text, origin) = match user {
                Some(p) => (
                    std::fs::read_to_string(&p).map_err(|source| PromptError::Io {
                        path: p.clone(),
                        source,
                    })?,
                    p.display().to_string(),
                ),
                None => (builtin.to_string(), "built-in".to_string()),
            };
            origins.push((name.to_string(), origin));
            sources.push((name.to_string(), text.clone()));
            if let Err(e) = env.add_template_owned(name.to_string(), text) {
                return Err(describe(&e, &origins, &sources));
            }
        }
        let prompts = Prompts { env, origins };
        Ok(prompts)
    }

    /// Where template `name` came from (`built-in` or its path).
    pub fn origin(&self, name: &str) -> Option<&str> {
        self.origins
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, o)| o.as_str())
    }

    /// Render template `name` with a serialisable context.
    pub fn render<C: Serialize>(&self, name: &str, ctx: &C) -> Result<String, PromptError> {
        let t = self
            .env
            .get_template(name)
            .map_err(|_| PromptError::Unknown(name.to_string()))?;
        t.render(minijinja::value::Serde(ctx))
            .map(|s| s.trim().to_string())
            .map_err(|e| {
                let sources: Vec<(String, String)> = [(name.to_string(), t.source().to_string())]
                    .into_iter()
                    .collect();
                describe(&e, &self.origins, &sources)
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins_load_and_user_templates_override() {
        let p = Prompts::load(None).unwrap();
        assert_eq!(p.origin("repair"), Some("built-in"));
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("repair.j2"), "Fix: {{ error }}").unwrap();
        let p = Prompts::load(Some(d.path())).unwrap();
        assert_eq!(
            p.render("repair", &serde_json::json!({"error": "bad"}))
                .unwrap(),
            "Fix: bad"
        );
    }

    #[test]
    fn unknown_variable_names_template_line_and_expression() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("repair.j2"), "line one\n{{ eror.text }}\n").unwrap();
        let p = Prompts::load(Some(d.path())).unwrap();
        let e = p
            .render("repair", &serde_json::json!({"error": "x"}))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("repair")
                && e.contains("repair.j2")
                && e.contains("line 2")
                && e.contains("eror"),
            "{e}"
        );
    }

    #[test]
    fn syntax_error_names_template_and_line() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("system.j2"), "ok\n{% if %}\n").unwrap();
        let e = Prompts::load(Some(d.path())).unwrap_err().to_string();
        assert!(
            e.contains("system") && e.contains("line 2") && e.contains("syntax"),
            "{e}"
        );
    }
}
