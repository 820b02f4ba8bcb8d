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
    /// Untrained-network probing (zero-cost proxies); `None` in training
    /// and inference.
    pub probe: Option<Probe>,
}

/// What a zero-cost proxy needs from a forward pass: batch normalisation
/// left out (synflow's linearised network), and the ReLU activation
/// pattern of every sample (NASWOT's binary codes). Under a probe every
/// layer runs unfused (separate ReLU, convolution and normalisation), so
/// each ReLU input is seen.
#[derive(Debug, Default)]
pub struct Probe {
    /// Whether batch normalisation is applied (`false`: every BN layer is
    /// the identity).
    pub batch_norm: bool,
    /// Whether ReLU activation patterns are accumulated into `codes`.
    pub record: bool,
    /// The Hamming-similarity kernel of the samples' ReLU codes, summed
    /// over every ReLU: `K[i][j]` = the number of units on which samples
    /// `i` and `j` are both active or both inactive (`[N, N]`, f64).
    pub codes: Option<Tensor>,
    /// Units recorded per sample (the length of each code).
    pub units: usize,
}

impl Probe {
    /// Record the ReLU input `x` (`[N, ...]`): the sign pattern of each
    /// sample, as `(units + s_i·s_j) / 2` with `s = ±1` per unit.
    pub fn record(&mut self, x: &Tensor) -> Result<()> {
        if !self.record {
            return Ok(());
        }
        let x = x.detach();
        let n = x.dim(0)?;
        // In f64: the agreement counts of a large network pass 2^24, where
        // f32 stops counting exactly.
        let s = ((x.gt(0.0)?.to_dtype(DType::F64)? * 2.0)? - 1.0)?.reshape((n, ()))?;
        let d = s.dim(1)?;
        let k = ((s.matmul(&s.t()?)? + d as f64)? * 0.5)?;
        self.units += d;
        self.codes = Some(match self.codes.take() {
            Some(acc) => (acc + k)?,
            None => k,
        });
        Ok(())
    }
}

impl Ctx {
    /// A context for training or inference.
    pub fn new(train: bool, drop_path: f64, seed: u64) -> Self {
        Ctx {
            train,
            drop_path,
            rng: Rng::seed(seed),
            macs: 0,
            probe: None,
        }
    }

    /// Whether a zero-cost probe is running (layers then run unfused).
    pub fn probing(&self) -> bool {
        self.probe.is_some()
    }

    /// Whether batch normalisation is left out (a probe without it).
    pub fn skip_batch_norm(&self) -> bool {
        self.probe.as_ref().is_some_and(|p| !p.batch_norm)
    }

    /// Record a ReLU input for the probe, if one records.
    pub fn relu_input(&mut self, x: &Tensor) -> Result<()> {
        match self.probe.as_mut() {
            Some(p) => p.record(x),
            None => Ok(()),
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
