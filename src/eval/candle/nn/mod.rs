//! Networks built from genotypes: the layers, the DARTS network and the
//! NAS-Bench-201 network, with parameter and multiply-add counts.

pub mod darts;
pub mod layers;
pub mod nb201;

use crate::rng::Rng;
use candle_core::{DType, Device, Result, Tensor, Var};

/// What one forward pass needs besides its input.
pub struct Ctx {
    /// Training mode (batch statistics, drop-path) or inference.
    pub train: bool,
    /// Drop-path probability (training only; 0 disables).
    pub drop_path: f64,
    /// Random stream for drop-path masks.
    pub rng: Rng,
    /// Multiply-adds per sample of convolutions and linear layers, accumulated.
    pub macs: u64,
}

impl Ctx {
    /// A context for training or inference.
    pub fn new(train: bool, drop_path: f64, seed: u64) -> Self {
        Ctx {
            train,
            drop_path,
            rng: Rng::seed(seed),
            macs: 0,
        }
    }
}

/// A trainable parameter.
pub struct Param {
    /// Dotted name (`cells.3.ops.1.pw1.weight`).
    pub name: String,
    /// The variable.
    pub var: Var,
}

/// Creates parameters with PyTorch's default initialisation and keeps them.
pub struct Builder {
    /// Where tensors live.
    pub device: Device,
    rng: Rng,
    prefix: Vec<String>,
    /// Every parameter created, in creation order.
    pub params: Vec<Param>,
}

impl Builder {
    /// A builder whose initial weights follow `seed`.
    pub fn new(device: Device, seed: u64) -> Self {
        Builder {
            device,
            rng: Rng::seed(seed ^ 0x5EC1_0000),
            prefix: Vec::new(),
            params: Vec::new(),
        }
    }

    /// Run `f` with `name` pushed on the name prefix.
    pub fn scope<T>(
        &mut self,
        name: impl Into<String>,
        f: impl FnOnce(&mut Self) -> Result<T>,
    ) -> Result<T> {
        self.prefix.push(name.into());
        let r = f(self);
        self.prefix.pop();
        r
    }

    fn add(&mut self, name: &str, t: Tensor) -> Result<Var> {
        let var = Var::from_tensor(&t)?;
        let mut full = self.prefix.join(".");
        if !full.is_empty() {
            full.push('.');
        }
        full.push_str(name);
        self.params.push(Param {
            name: full,
            var: var.clone(),
        });
        Ok(var)
    }

    /// Uniform in `[-bound, bound)`.
    pub fn uniform(&mut self, name: &str, shape: &[usize], bound: f64) -> Result<Var> {
        let n: usize = shape.iter().product();
        let v: Vec<f32> = (0..n)
            .map(|_| ((self.rng.unit() * 2.0 - 1.0) * bound) as f32)
            .collect();
        let t = Tensor::from_vec(v, shape, &self.device)?;
        self.add(name, t)
    }

    /// A constant tensor.
    pub fn constant(&mut self, name: &str, shape: &[usize], value: f64) -> Result<Var> {
        let t = (Tensor::ones(shape, DType::F32, &self.device)? * value)?;
        self.add(name, t)
    }

    /// Number of trainable scalars.
    pub fn param_count(&self) -> usize {
        self.params.iter().map(|p| p.var.elem_count()).sum()
    }
}

/// A network that classifies `[N, C, H, W]` images.
pub trait Network: Send {
    /// Logits `[N, classes]`, and the auxiliary head's logits when it has one
    /// and is training.
    fn forward(&mut self, x: &Tensor, ctx: &mut Ctx) -> Result<(Tensor, Option<Tensor>)>;
}

/// Multiply-adds of one sample through `net`, counted on a zero input of
/// `[1, channels, size, size]` in inference mode.
pub fn count_macs(
    net: &mut dyn Network,
    channels: usize,
    size: usize,
    device: &Device,
) -> Result<u64> {
    let x = Tensor::zeros((1, channels, size, size), DType::F32, device)?;
    let mut ctx = Ctx::new(false, 0.0, 0);
    net.forward(&x, &mut ctx)?;
    Ok(ctx.macs)
}
