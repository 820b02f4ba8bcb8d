//! Run-time selection of a SIMD build of a kernel's inner loops.
//!
//! [`simd_fn!`] compiles a function body twice: once for the baseline
//! target, once with AVX2 and FMA enabled (8-wide vectors, fused
//! multiply-add through [`Madd`]); the AVX2 build runs when the CPU has
//! those features. The crate stays portable (no `-C target-cpu`), and the
//! loops get the vector width the machine has.

use std::sync::atomic::{AtomicBool, Ordering};

/// Multiply-add as the inner loops use it: `a * b + c`.
pub trait Madd {
    /// `a * b + c`.
    fn madd(a: f32, b: f32, c: f32) -> f32;
}

/// Separate multiply and add (the baseline build: a fused multiply-add
/// without the FMA instruction is a slow library call).
pub struct Plain;

impl Madd for Plain {
    #[inline(always)]
    fn madd(a: f32, b: f32, c: f32) -> f32 {
        a * b + c
    }
}

/// Fused multiply-add (the AVX2 + FMA build).
pub struct Fused;

impl Madd for Fused {
    #[inline(always)]
    fn madd(a: f32, b: f32, c: f32) -> f32 {
        a.mul_add(b, c)
    }
}

static BASELINE_ONLY: AtomicBool = AtomicBool::new(false);

/// Held by tests that switch the builds ([`set_baseline_only`]) and by tests
/// that need the same build for two calls, so that tests running in
/// parallel do not switch builds under each other.
#[cfg(test)]
pub(crate) static DISPATCH_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Run only the baseline builds from now on (`true`), or the fastest the
/// CPU supports again (`false`): for comparing the two in tests and
/// benchmarks. Results agree up to rounding.
pub fn set_baseline_only(on: bool) {
    BASELINE_ONLY.store(on, Ordering::Relaxed);
}

static NO_AVX512: AtomicBool = AtomicBool::new(false);

/// Leave out every AVX-512 build from now on, the VNNI products and the
/// 512-bit builds of `simd_fn!` kernels (`true`; the AVX2 ones run
/// instead), or use them where the CPU has them again (`false`): for
/// comparing the two in tests and benchmarks.
pub fn set_no_avx512(on: bool) {
    NO_AVX512.store(on, Ordering::Relaxed);
}

/// Whether the builds with AVX-512 VNNI run (the quantized products'
/// integer dots in one instruction; 256-bit registers for decoding, 512-bit
/// for prompts): the AVX2 builds run, the CPU has `avx512vnni`, `avx512vl`,
/// `avx512f` and `avx512bw`, and [`set_no_avx512`] is off.
#[inline]
pub fn has_avx512_vnni() -> bool {
    if !has_avx512f() {
        return false;
    }
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx512vnni")
            && std::is_x86_feature_detected!("avx512vl")
            && std::is_x86_feature_detected!("avx512bw")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Whether the 512-bit builds of `simd_fn!` kernels run: the AVX2 builds
/// run, the CPU has `avx512f`, and [`set_no_avx512`] is off.
#[inline]
pub fn has_avx512f() -> bool {
    if NO_AVX512.load(Ordering::Relaxed) || !has_avx2_fma() {
        return false;
    }
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx512f")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Whether the AVX2 + FMA builds run: the CPU has both features (std caches
/// the answer) and [`set_baseline_only`] is off.
#[inline]
pub fn has_avx2_fma() -> bool {
    if BASELINE_ONLY.load(Ordering::Relaxed) {
        return false;
    }
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// The sum of a vector's 8 lanes, in the one order every kernel uses
/// (halves, then pairs, then the last two).
///
/// # Safety
/// The CPU must have AVX (the callers' `target_feature` builds).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(crate) unsafe fn hsum(v: std::arch::x86_64::__m256) -> f32 {
    use std::arch::x86_64::*;
    let h = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    let h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    _mm_cvtss_f32(_mm_add_ss(h, _mm_shuffle_ps(h, h, 1)))
}

/// `simd_fn! { fn name<M>(args) { body } }` defines `fn name(args)` whose
/// body, generic over `M: Madd`, runs in an AVX2 + FMA build when the CPU
/// has them and in the baseline build otherwise. Functions return `()`.
#[macro_export]
#[doc(hidden)]
macro_rules! simd_fn {
    ($(#[$attr:meta])* $vis:vis fn $name:ident<$m:ident>($($arg:ident: $ty:ty),* $(,)?) $body:block) => {
        $(#[$attr])*
        #[allow(clippy::too_many_arguments)]
        $vis fn $name($($arg: $ty),*) {
            #[inline(always)]
            #[allow(clippy::too_many_arguments, clippy::extra_unused_type_parameters)]
            fn body<$m: $crate::simd::Madd>($($arg: $ty),*) $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2,fma,avx512f")]
                #[allow(clippy::too_many_arguments)]
                unsafe fn wide($($arg: $ty),*) {
                    body::<$crate::simd::Fused>($($arg),*)
                }
                #[target_feature(enable = "avx2,fma")]
                #[allow(clippy::too_many_arguments)]
                unsafe fn fast($($arg: $ty),*) {
                    body::<$crate::simd::Fused>($($arg),*)
                }
                if $crate::simd::has_avx512f() {
                    // SAFETY: the CPU has the features `wide` is built for.
                    return unsafe { wide($($arg),*) };
                }
                if $crate::simd::has_avx2_fma() {
                    // SAFETY: the CPU has the features `fast` is built for.
                    return unsafe { fast($($arg),*) };
                }
            }
            body::<$crate::simd::Plain>($($arg),*)
        }
    };
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use crate::depthwise::{self, Dims};
    use crate::testutil::{close, values};
    use crate::{batchnorm, dot, sum, DwParams};

    /// Everything the SIMD builds compute, once per build (the baseline one
    /// and, on CPUs with AVX2 + FMA, the fast one), each beside its plain
    /// reference from [`crate::testutil::naive`] (never from a build).
    fn run_all() -> Vec<(Vec<f32>, Vec<f32>)> {
        use crate::testutil::naive;
        let mut out = Vec::new();
        let a = values(1000, 1);
        let b = values(1000, 2);
        let want_dot = a
            .iter()
            .zip(&b)
            .map(|(u, v)| *u as f64 * *v as f64)
            .sum::<f64>();
        let want_sum = a.iter().map(|u| *u as f64).sum::<f64>();
        out.push((
            vec![dot(&a, &b), sum(&a)],
            vec![want_dot as f32, want_sum as f32],
        ));
        for &(k, stride, pad, dilation, relu) in
            &[(3, 1, 1, 1, true), (5, 1, 4, 2, false), (3, 2, 1, 1, true)]
        {
            let p = DwParams {
                k,
                stride,
                pad,
                dilation,
                relu,
            };
            let (n, c, h, w) = (2, 3, 17, 15);
            let d = Dims {
                n,
                c,
                h,
                w,
                oh: p.out_size(h).unwrap(),
                ow: p.out_size(w).unwrap(),
            };
            let x = values(n * c * h * w, 3);
            let wt = values(c * k * k, 4);
            let g = values(n * c * d.oh * d.ow, 5);
            let (y, dx, dw) = naive::depthwise(&x, &wt, &g, &p, d);
            out.push((depthwise::forward(&x, &wt, &p, d), y));
            out.push((depthwise::backward_input(&x, &g, &wt, &p, d), dx));
            out.push((depthwise::backward_weight(&x, &g, &p, d), dw));
        }
        // The pointwise weight gradient's register tiles (ReLU fused).
        let pd = crate::pointwise::Dims {
            n: 2,
            cin: 5,
            cout: 3,
            hw: 21,
        };
        let x = values(pd.n * pd.cin * pd.hw, 10);
        let g = values(pd.n * pd.cout * pd.hw, 11);
        let want: Vec<f32> = (0..pd.cout * pd.cin)
            .map(|o| {
                let (co, ci) = (o / pd.cin, o % pd.cin);
                let mut s = 0f64;
                for b in 0..pd.n {
                    for p in 0..pd.hw {
                        let xv = x[(b * pd.cin + ci) * pd.hw + p].max(0.0) as f64;
                        s += g[(b * pd.cout + co) * pd.hw + p] as f64 * xv;
                    }
                }
                s as f32
            })
            .collect();
        out.push((crate::pointwise::backward_weight(&x, &g, pd, true), want));
        let (n, c, hw) = (4, 3, 37);
        let x = values(n * c * hw, 6);
        let (gamma, beta) = (values(c, 7), values(c, 8));
        let g = values(n * c * hw, 9);
        let (y, st) = batchnorm::forward(&x, &gamma, &beta, n, c, hw, 1e-5);
        let (dx, dg, db) = batchnorm::backward(&x, &gamma, &g, &st, n, c, hw);
        let want = naive::batchnorm(&x, &gamma, &beta, &g, n, c, hw, 1e-5);
        for (got, want) in [y, st.mean, st.var, dx, dg, db].into_iter().zip(want) {
            out.push((got, want));
        }
        out
    }

    #[test]
    fn baseline_avx2_and_avx512_builds_agree() {
        let _same_build = super::DISPATCH_LOCK
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        super::set_baseline_only(true);
        assert!(!super::has_avx2_fma());
        for (i, (got, want)) in run_all().iter().enumerate() {
            close(got, want, &format!("baseline build, result {i}"));
        }
        super::set_baseline_only(false);
        // AVX2 without the AVX-512 builds, then the best the CPU has.
        super::set_no_avx512(true);
        assert!(!super::has_avx512f());
        for (i, (got, want)) in run_all().iter().enumerate() {
            close(got, want, &format!("AVX2 build, result {i}"));
        }
        super::set_no_avx512(false);
        for (i, (got, want)) in run_all().iter().enumerate() {
            close(got, want, &format!("default build, result {i}"));
        }
    }
}
