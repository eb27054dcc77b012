//! Backend choice for the binary: Cargo features decide what is compiled in, `--backend` picks one
//! at run time. Library crates stay generic; only this file names concrete Burn backends.

use clap::ValueEnum;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BackendKind {
    /// burn-flex: CPU, multi-threaded gemm (the default)
    Flex,
    /// burn-ndarray: CPU
    Ndarray,
    /// burn-wgpu: Vulkan / Metal / DX12 GPUs (and lavapipe on CPU)
    Wgpu,
    /// burn-cuda: NVIDIA GPUs
    Cuda,
}

impl BackendKind {
    /// The backends this binary was built with.
    pub fn compiled() -> Vec<BackendKind> {
        let mut v = vec![];
        if cfg!(feature = "flex") {
            v.push(BackendKind::Flex);
        }
        if cfg!(feature = "ndarray") {
            v.push(BackendKind::Ndarray);
        }
        if cfg!(feature = "wgpu") {
            v.push(BackendKind::Wgpu);
        }
        if cfg!(feature = "cuda") {
            v.push(BackendKind::Cuda);
        }
        v
    }

    /// `--backend` if given, else the first compiled in (flex by default).
    pub fn resolve(choice: Option<BackendKind>) -> anyhow::Result<BackendKind> {
        let compiled = Self::compiled();
        match choice {
            Some(b) if compiled.contains(&b) => Ok(b),
            Some(b) => anyhow::bail!(
                "backend {b:?} is not compiled into this binary (compiled: {compiled:?}); rebuild with `--features {}`",
                format!("{b:?}").to_lowercase()
            ),
            None => compiled.first().copied().ok_or_else(|| anyhow::anyhow!("no backend compiled in")),
        }
    }
}

/// Run `$body` with `$B` bound to the chosen backend type and `$dev` to its default device.
#[macro_export]
macro_rules! with_backend {
    ($kind:expr, |$B:ident, $dev:ident| $body:expr) => {{
        #[allow(unreachable_patterns)]
        match $kind {
            #[cfg(feature = "flex")]
            $crate::backend::BackendKind::Flex => {
                type $B = burn_flex::Flex;
                let $dev: burn::tensor::Device<$B> = Default::default();
                $body
            }
            #[cfg(feature = "ndarray")]
            $crate::backend::BackendKind::Ndarray => {
                type $B = burn_ndarray::NdArray<f32>;
                let $dev: burn::tensor::Device<$B> = Default::default();
                $body
            }
            #[cfg(feature = "wgpu")]
            $crate::backend::BackendKind::Wgpu => {
                type $B = burn_wgpu::Wgpu;
                let $dev: burn::tensor::Device<$B> = Default::default();
                $body
            }
            #[cfg(feature = "cuda")]
            $crate::backend::BackendKind::Cuda => {
                type $B = burn_cuda::Cuda;
                let $dev: burn::tensor::Device<$B> = Default::default();
                $body
            }
            other => anyhow::bail!("backend {other:?} is not compiled in"),
        }
    }};
}
