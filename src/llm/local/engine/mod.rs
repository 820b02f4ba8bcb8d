//! seki's own transformer forward for the llama, qwen2, qwen3 and gemma3 GGUF
//! families,
//! on the quantized kernels of `seki_kernels::quant` (weights used as
//! stored in the file) with a key/value cache it owns:
//!
//! * [`weights`]: the configuration from the metadata and the tensors'
//!   bytes, read from the file;
//! * [`cache`]: the key/value cache, with the token ids it holds, so that a
//!   prompt sharing its beginning with the cached one runs only its new part;
//! * [`model`]: the forward pass (RMS norm, rotary embedding in the family's
//!   convention, grouped-query causal attention, SiLU-gated MLP, logits).

pub mod cache;
pub mod model;
pub mod weights;

pub use model::Engine;
pub use weights::{Activation, Config};

/// Errors of the engine.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// Reading the model file failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The file lacks something the engine needs, or has it in a form it
    /// cannot use.
    #[error("{0}")]
    Format(String),
    /// An architecture or tensor type the engine does not run (the candle
    /// path may).
    #[error("not supported by the seki engine: {0}")]
    Unsupported(String),
    /// A kernel refused its operands.
    #[error("kernel: {0}")]
    Quant(#[from] seki_kernels::quant::QuantError),
    /// A token id outside the vocabulary.
    #[error("token id {0} is outside the vocabulary of {1}")]
    Token(u32, usize),
    /// More positions than the context holds.
    #[error("{0} positions do not fit the context of {1}")]
    Context(usize, usize),
    /// An empty input.
    #[error("no tokens to run")]
    Empty,
}

impl From<candle_core::Error> for EngineError {
    fn from(e: candle_core::Error) -> Self {
        EngineError::Format(e.to_string())
    }
}
