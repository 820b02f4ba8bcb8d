//! Run-time selection of a SIMD build of a kernel's inner loops.
//!
//! [`simd_fn!`] compiles a function body twice: once for the baseline
//! target, once with AVX2 and FMA enabled (8-wide vectors, fused
//! multiply-add through [`Madd`]); the AVX2 build runs when the CPU has
//! those features. The crate stays portable (no `-C target-cpu`), and the
//! loops get the vector width the machine has.

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

/// Whether the CPU has AVX2 and FMA (std caches the answer).
#[inline]
pub fn has_avx2_fma() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
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
                #[target_feature(enable = "avx2,fma")]
                #[allow(clippy::too_many_arguments)]
                unsafe fn fast($($arg: $ty),*) {
                    body::<$crate::simd::Fused>($($arg),*)
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
