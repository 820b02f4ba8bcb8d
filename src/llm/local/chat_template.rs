//! Chat templates: the model's own `tokenizer.chat_template` (Jinja,
//! rendered with minijinja and Python-style string methods), or a known
//! template chosen by architecture when the file has none.

use crate::llm::{Message, Role};
use minijinja::{context, Environment, Error, ErrorKind};

/// ChatML (SmolLM2, Qwen).
pub const CHATML: &str = "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

/// Llama 3.
pub const LLAMA3: &str = "{{ bos_token }}{% for message in messages %}{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' + message['content'] | trim + '<|eot_id|>' }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}";

/// Gemma (system text is prepended to the first user turn).
pub const GEMMA: &str = "{{ bos_token }}{% set sys = namespace(text='') %}{% for message in messages %}{% if message['role'] == 'system' %}{% set sys.text = message['content'] + '\n\n' %}{% else %}{{ '<start_of_turn>' + ('model' if message['role'] == 'assistant' else 'user') + '\n' + (sys.text if loop.index0 <= 1 else '') + message['content'] | trim + '<end_of_turn>\n' }}{% endif %}{% endfor %}{% if add_generation_prompt %}{{ '<start_of_turn>model\n' }}{% endif %}";

/// Instructions one rendering may execute (many times what any real chat
/// template needs for a long conversation).
const FUEL: u64 = 20_000_000;

/// A chat-template failure.
#[derive(Debug, thiserror::Error)]
#[error("chat template: {0}")]
pub struct TemplateError(pub String);

/// A compiled chat template.
#[derive(Debug)]
pub struct ChatTemplate {
    env: Environment<'static>,
    bos: String,
    eos: String,
    /// Where the template came from ("gguf" or the fallback's name).
    pub source: String,
}

/// The fallback template for an architecture (and vocabulary).
pub fn fallback(arch: &str, has_token: impl Fn(&str) -> bool) -> (&'static str, &'static str) {
    if arch.starts_with("gemma") {
        ("gemma", GEMMA)
    } else if has_token("<|start_header_id|>") {
        ("llama3", LLAMA3)
    } else {
        ("chatml", CHATML)
    }
}

impl ChatTemplate {
    /// Compile `source` (Jinja).
    pub fn new(template: &str, origin: &str, bos: &str, eos: &str) -> Result<Self, TemplateError> {
        let mut env = Environment::new();
        // A template that loops without end is an error, not a hang.
        env.set_fuel(Some(FUEL));
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function("raise_exception", |msg: String| -> Result<String, Error> {
            Err(Error::new(ErrorKind::InvalidOperation, msg))
        });
        env.add_template_owned("chat", template.to_string())
            .map_err(|e| TemplateError(format!("{origin} template does not compile: {e}")))?;
        Ok(ChatTemplate {
            env,
            bos: bos.to_string(),
            eos: eos.to_string(),
            source: origin.to_string(),
        })
    }

    /// Render the conversations the agent sends (system and user turns, and
    /// an assistant turn followed by a user turn, as in a repair): a template
    /// that cannot render them fails here, when the model loads, rather
    /// than in the middle of a session.
    pub fn probe(&self) -> Result<(), TemplateError> {
        self.render(&[Message::system("s"), Message::user("u")])?;
        self.render(&[
            Message::system("s"),
            Message::user("u"),
            Message::assistant("a"),
            Message::user("u"),
        ])
        .map(|_| ())
        .map_err(|e| {
            TemplateError(format!(
                "{} (rendering a conversation with a repair turn)",
                e.0
            ))
        })
    }

    /// Render a conversation, ending with the assistant's turn opened.
    pub fn render(&self, messages: &[Message]) -> Result<String, TemplateError> {
        let msgs: Vec<minijinja::Value> = messages
            .iter()
            .map(|m| {
                let role = match m.role {
                    Role::System => "system",
                    Role::User => "user",
                    Role::Assistant => "assistant",
                };
                context! { role => role, content => m.content.clone() }
            })
            .collect();
        let t = self
            .env
            .get_template("chat")
            .map_err(|e| TemplateError(e.to_string()))?;
        t.render(context! {
            messages => msgs,
            add_generation_prompt => true,
            bos_token => self.bos.clone(),
            eos_token => self.eos.clone(),
        })
        .map_err(|e| TemplateError(format!("{} template: {e}", self.source)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_chatml_and_fallbacks() {
        let t = ChatTemplate::new(CHATML, "chatml", "", "<|im_end|>").unwrap();
        let s = t
            .render(&[Message::system("S"), Message::user("hi")])
            .unwrap();
        assert_eq!(
            s,
            "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
        );
        let g = ChatTemplate::new(GEMMA, "gemma", "<bos>", "<eos>").unwrap();
        let s = g
            .render(&[Message::system("S"), Message::user("hi")])
            .unwrap();
        assert_eq!(
            s,
            "<bos><start_of_turn>user\nS\n\nhi<end_of_turn>\n<start_of_turn>model\n"
        );
        let l = ChatTemplate::new(LLAMA3, "llama3", "<|begin_of_text|>", "").unwrap();
        assert!(l.render(&[Message::user(" q ")]).unwrap().ends_with(
            "user<|end_header_id|>\n\nq<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
        ));
        assert_eq!(fallback("gemma3", |_| false).0, "gemma");
        assert_eq!(
            fallback("llama", |t| t == "<|start_header_id|>").0,
            "llama3"
        );
        assert_eq!(fallback("qwen2", |_| false).0, "chatml");
    }

    #[test]
    fn python_methods_and_raise_exception_work() {
        let t = ChatTemplate::new(
            "{% if messages[0]['role'] != 'user' %}{{ raise_exception('user first') }}{% endif %}{{ messages[0]['content'].strip() }}",
            "test",
            "",
            "",
        )
        .unwrap();
        assert_eq!(t.render(&[Message::user("  x ")]).unwrap(), "x");
        let e = t.render(&[Message::system("s")]).unwrap_err().to_string();
        assert!(e.contains("user first"), "{e}");
        assert!(ChatTemplate::new("{% if %}", "bad", "", "").is_err());
    }

    #[test]
    fn templates_are_probed_and_cannot_loop_forever() {
        let t = ChatTemplate::new(CHATML, "chatml", "", "").unwrap();
        t.probe().unwrap();
        // Rejecting system turns: fails at the probe, i.e. at load.
        let t = ChatTemplate::new(
            "{% for m in messages %}{% if m['role'] == 'system' %}{{ raise_exception('no system role') }}{% endif %}{% endfor %}",
            "gguf",
            "",
            "",
        )
        .unwrap();
        assert!(t
            .probe()
            .unwrap_err()
            .to_string()
            .contains("no system role"));
        let t = ChatTemplate::new(
            "{% for m in messages %}{% if m['role'] == 'assistant' %}{{ raise_exception('roles must alternate') }}{% endif %}{% endfor %}",
            "gguf",
            "",
            "",
        )
        .unwrap();
        let e = t.probe().unwrap_err().to_string();
        assert!(
            e.contains("roles must alternate") && e.contains("repair turn"),
            "{e}"
        );
        let t = ChatTemplate::new(
            "{% for a in range(10000) %}{% for b in range(10000) %}{% endfor %}{% endfor %}",
            "gguf",
            "",
            "",
        )
        .unwrap();
        assert!(t.probe().unwrap_err().to_string().contains("fuel"));
    }
}
