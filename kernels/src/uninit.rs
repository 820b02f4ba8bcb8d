//! Output buffers that a kernel writes in full, taken without zeroing them
//! first. A block's output and pre-normalisation planes are megabytes a
//! call; zeroing them before the kernel overwrote every value took ~4% of a
//! training step of the DARTS proxy (`seki bench-train`).

use std::mem::MaybeUninit;

/// `len` values from `fill`, which is handed the whole uninitialised buffer.
///
/// # Safety
/// `fill` must initialise every one of the `len` values before it returns.
pub(crate) unsafe fn vec_written(
    len: usize,
    fill: impl FnOnce(&mut [MaybeUninit<f32>]),
) -> Vec<f32> {
    let mut v = Vec::with_capacity(len);
    fill(&mut v.spare_capacity_mut()[..len]);
    // SAFETY: the capacity is at least `len`, and the caller vouches that
    // `fill` initialised all of it.
    unsafe { v.set_len(len) };
    v
}

/// `s` as initialised values.
///
/// # Safety
/// Every value of `s` must have been initialised.
pub(crate) unsafe fn assume_init(s: &mut [MaybeUninit<f32>]) -> &mut [f32] {
    // SAFETY: `MaybeUninit<f32>` has the layout of `f32`, and the caller
    // vouches that every value is initialised.
    unsafe { &mut *(s as *mut [MaybeUninit<f32>] as *mut [f32]) }
}

/// Writes `v` into every value of `s` and returns it initialised.
pub(crate) fn fill(s: &mut [MaybeUninit<f32>], v: f32) -> &mut [f32] {
    for o in s.iter_mut() {
        o.write(v);
    }
    // SAFETY: every value was written just above.
    unsafe { assume_init(s) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_vectors_hold_what_fill_wrote() {
        // SAFETY: the closure writes all 37 values.
        let v = unsafe {
            vec_written(37, |s| {
                for (i, o) in s.iter_mut().enumerate() {
                    o.write(i as f32);
                }
            })
        };
        assert_eq!(v, (0..37).map(|i| i as f32).collect::<Vec<_>>());
        let mut raw = [MaybeUninit::<f32>::uninit(); 5];
        assert_eq!(fill(&mut raw, 2.5), &[2.5; 5]);
    }
}
