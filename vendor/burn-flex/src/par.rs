//! dsmath patch: split element-wise work over rayon when a tensor is large enough to pay
//! for it (burn-flex 0.21 runs element-wise ops on the calling thread only).

/// Elements below which element-wise work stays on the calling thread.
#[cfg(feature = "rayon")]
pub(crate) const PAR_MIN: usize = 1 << 15;

#[cfg(feature = "rayon")]
fn chunk_len(n: usize) -> usize {
    n.div_ceil(rayon::current_num_threads() * 4).next_multiple_of(64).max(4096)
}

/// `f` over disjoint chunks of `data`, in parallel for large slices.
pub(crate) fn chunks_mut<E: Send>(data: &mut [E], f: impl Fn(&mut [E]) + Sync + Send) {
    #[cfg(feature = "rayon")]
    if data.len() >= PAR_MIN {
        use rayon::prelude::*;
        let c = chunk_len(data.len());
        data.par_chunks_mut(c).for_each(|chunk| f(chunk));
        return;
    }
    f(data)
}

/// `f` over matching chunks of `a` (written) and `b` (read, same length), in parallel for
/// large slices.
pub(crate) fn zip_chunks_mut<E: Send, R: Sync>(a: &mut [E], b: &[R], f: impl Fn(&mut [E], &[R]) + Sync + Send) {
    debug_assert_eq!(a.len(), b.len());
    #[cfg(feature = "rayon")]
    if a.len() >= PAR_MIN {
        use rayon::prelude::*;
        let c = chunk_len(a.len());
        a.par_chunks_mut(c).zip(b.par_chunks(c)).for_each(|(x, y)| f(x, y));
        return;
    }
    f(a, b)
}

/// `n` zeros; written in parallel for large `n` (a reused heap block is not zero, so `vec![0; n]`
/// is a `memset` on the calling thread while the pool waits).
pub(crate) fn zeros<E: bytemuck::Zeroable + Copy + Send>(n: usize) -> alloc::vec::Vec<E> {
    #[cfg(feature = "rayon")]
    if n >= PAR_MIN {
        use rayon::prelude::*;
        let mut out = alloc::vec::Vec::with_capacity(n);
        out.spare_capacity_mut()[..n].par_chunks_mut(chunk_len(n)).for_each(|o| {
            for o in o {
                o.write(E::zeroed());
            }
        });
        // SAFETY: the chunks above cover `0..n` and wrote every element.
        unsafe { out.set_len(n) };
        return out;
    }
    alloc::vec![E::zeroed(); n]
}

/// `op` of every element of `src`, into a new vector; in parallel for large slices. The output
/// is written once, never zero-filled first.
pub(crate) fn map<E: Copy + Sync, R: Send>(src: &[E], op: impl Fn(E) -> R + Sync + Send) -> alloc::vec::Vec<R> {
    #[cfg(feature = "rayon")]
    if src.len() >= PAR_MIN {
        use rayon::prelude::*;
        let n = src.len();
        let c = chunk_len(n);
        let mut out = alloc::vec::Vec::with_capacity(n);
        out.spare_capacity_mut()[..n].par_chunks_mut(c).zip(src.par_chunks(c)).for_each(|(o, s)| {
            for (o, &x) in o.iter_mut().zip(s) {
                o.write(op(x));
            }
        });
        // SAFETY: the chunks above cover `0..n` and wrote every element.
        unsafe { out.set_len(n) };
        return out;
    }
    src.iter().map(|&x| op(x)).collect()
}

/// `op` of matching elements of `a` and `b` (same length), into a new vector; in parallel for
/// large slices.
pub(crate) fn map2<E: Copy + Sync, R: Send>(a: &[E], b: &[E], op: impl Fn(E, E) -> R + Sync + Send) -> alloc::vec::Vec<R> {
    debug_assert_eq!(a.len(), b.len());
    #[cfg(feature = "rayon")]
    if a.len() >= PAR_MIN {
        use rayon::prelude::*;
        let n = a.len().min(b.len());
        let c = chunk_len(n);
        let mut out = alloc::vec::Vec::with_capacity(n);
        out.spare_capacity_mut()[..n].par_chunks_mut(c).zip(a[..n].par_chunks(c)).zip(b[..n].par_chunks(c)).for_each(|((o, x), y)| {
            for ((o, &x), &y) in o.iter_mut().zip(x).zip(y) {
                o.write(op(x, y));
            }
        });
        // SAFETY: the chunks above cover `0..n` and wrote every element.
        unsafe { out.set_len(n) };
        return out;
    }
    a.iter().zip(b).map(|(&x, &y)| op(x, y)).collect()
}
