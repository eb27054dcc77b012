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
    /// burn-cuda with bf16 as the float type: weights, activations, gradients and AdamW moments
    /// in bf16 (no f32 master copy)
    CudaBf16,
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
            v.push(BackendKind::CudaBf16);
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
                if b == BackendKind::CudaBf16 {
                    "cuda".to_string()
                } else {
                    format!("{b:?}").to_lowercase()
                }
            ),
            None => compiled
                .first()
                .copied()
                .ok_or_else(|| anyhow::anyhow!("no backend compiled in")),
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
            #[cfg(feature = "cuda")]
            $crate::backend::BackendKind::CudaBf16 => {
                type $B = burn_cuda::Cuda<half::bf16>;
                let $dev: burn::tensor::Device<$B> = Default::default();
                $body
            }
            other => anyhow::bail!("backend {other:?} is not compiled in"),
        }
    }};
}

/// The devices of a data-parallel run (`train.devices = N`): GPUs 0..N, or N peers sharing the
/// CPU (threads) on the CPU backends.
pub trait DeviceList: burn::tensor::backend::Backend {
    fn devices(n: usize) -> Vec<Self::Device>;
}

#[cfg(feature = "flex")]
impl DeviceList for burn_flex::Flex {
    fn devices(n: usize) -> Vec<Self::Device> {
        vec![Default::default(); n]
    }
}

#[cfg(feature = "ndarray")]
impl DeviceList for burn_ndarray::NdArray<f32> {
    fn devices(n: usize) -> Vec<Self::Device> {
        vec![Default::default(); n]
    }
}

#[cfg(feature = "wgpu")]
impl DeviceList for burn_wgpu::Wgpu {
    fn devices(n: usize) -> Vec<Self::Device> {
        if n <= 1 {
            vec![Default::default()]
        } else {
            (0..n).map(burn_wgpu::WgpuDevice::DiscreteGpu).collect()
        }
    }
}

#[cfg(feature = "cuda")]
impl DeviceList for burn_cuda::Cuda {
    fn devices(n: usize) -> Vec<Self::Device> {
        (0..n.max(1))
            .map(|index| burn_cuda::CudaDevice { index })
            .collect()
    }
}

#[cfg(feature = "cuda")]
impl DeviceList for burn_cuda::Cuda<half::bf16> {
    fn devices(n: usize) -> Vec<Self::Device> {
        (0..n.max(1))
            .map(|index| burn_cuda::CudaDevice { index })
            .collect()
    }
}
