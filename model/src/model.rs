//! The LLaMA / DeepSeek / Qwen2 / Qwen3 decoder (HF `modeling_llama.py`, `modeling_qwen2.py`,
//! `modeling_qwen3.py`): RMSNorm, rotate-half RoPE (default / linear / llama3 frequencies),
//! multi-head / grouped-query attention with a KV cache and Qwen3's per-head q/k norm, SwiGLU MLP.
//! Module fields are named after the HF state-dict keys, so weights map one to one.

use burn::module::{Module, Param};
use burn::tensor::activation::silu;
use burn::tensor::module::{attention, embedding};
use burn::tensor::ops::AttentionModuleOptions;
use burn::tensor::{Bool, DType, Int, Tensor, TensorData, backend::Backend};

use crate::ModelError;
use crate::config::LlamaConfig;
use crate::weights::{Init, WeightSource};

/// A linear layer in HF layout: `weight` is `[out_features, in_features]`.
#[derive(Module, Debug)]
pub struct Linear<B: Backend> {
    pub weight: Param<Tensor<B, 2>>,
    pub bias: Option<Param<Tensor<B, 1>>>,
}

impl<B: Backend> Linear<B> {
    pub fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        hf_linear(x, self.weight.val(), self.bias.as_ref().map(|b| b.val()))
    }
}

/// `x W^T + b` with `W` in HF layout `[out, in]`. `W^T` is a strided view that the CPU
/// backends' gemm reads in place; the output comes out contiguous (the former `(W x^T)^T` gave a
/// transposed output that every following reshape or row-wise op had to copy).
pub fn hf_linear<B: Backend>(
    x: Tensor<B, 3>,
    w: Tensor<B, 2>,
    bias: Option<Tensor<B, 1>>,
) -> Tensor<B, 3> {
    let [b, s, d] = x.dims();
    let out = w.dims()[0];
    let y = x
        .reshape([b * s, d])
        .matmul(w.transpose())
        .reshape([b, s, out]); // [b, s, out]
    match bias {
        Some(bias) => y + bias.unsqueeze::<3>(),
        None => y,
    }
}

/// RMSNorm as in HF: `weight * x / sqrt(mean(x^2) + eps)`.
#[derive(Module, Debug)]
pub struct RmsNorm<B: Backend> {
    pub weight: Param<Tensor<B, 1>>,
    pub eps: f64,
}

impl<B: Backend> RmsNorm<B> {
    pub fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        // As HF: the statistics in f32 whatever the activations' dtype (bf16 training).
        let dtype = x.dtype();
        let x = if dtype == DType::F32 {
            x
        } else {
            x.cast(DType::F32)
        };
        let rms = (x.clone().square().mean_dim(2) + self.eps).sqrt(); // [b, s, 1]
        let normed = x / rms;
        let normed = if dtype == DType::F32 {
            normed
        } else {
            normed.cast(dtype)
        };
        normed * self.weight.val().unsqueeze::<3>()
    }
}

#[derive(Module, Debug)]
pub struct Attention<B: Backend> {
    pub q_proj: Linear<B>,
    pub k_proj: Linear<B>,
    pub v_proj: Linear<B>,
    pub o_proj: Linear<B>,
    /// Qwen3: RMSNorm over each head's `head_dim` of the queries / keys, before RoPE.
    pub q_norm: Option<RmsNorm<B>>,
    pub k_norm: Option<RmsNorm<B>>,
    pub num_heads: usize,
    pub num_key_value_heads: usize,
    pub head_dim: usize,
}

/// Keys and values of one layer: `[batch, kv_heads, cached_len, head_dim]` each.
#[derive(Debug, Clone)]
pub struct LayerCache<B: Backend> {
    pub k: Tensor<B, 4>,
    pub v: Tensor<B, 4>,
}

/// The KV cache of the whole model; slot `t` of every row holds the token fed at step `t`.
#[derive(Debug, Clone)]
pub struct KvCache<B: Backend> {
    pub layers: Vec<Option<LayerCache<B>>>,
}

impl<B: Backend> KvCache<B> {
    pub fn new(num_layers: usize) -> Self {
        Self {
            layers: vec![None; num_layers],
        }
    }

    /// Number of cached slots.
    pub fn len(&self) -> usize {
        self.layers
            .first()
            .and_then(|l| l.as_ref())
            .map_or(0, |l| l.k.dims()[2])
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Keep (or repeat) batch rows: row `i` of the result is row `rows[i]` of `self`.
    pub fn select_rows(self, rows: &[usize], device: &B::Device) -> Self {
        let idx: Vec<i64> = rows.iter().map(|&r| r as i64).collect();
        let idx = Tensor::<B, 1, Int>::from_data(TensorData::new(idx, [rows.len()]), device);
        let layers = self
            .layers
            .into_iter()
            .map(|l| {
                l.map(|l| LayerCache {
                    k: l.k.select(0, idx.clone()),
                    v: l.v.select(0, idx.clone()),
                })
            })
            .collect();
        Self { layers }
    }
}

/// RoPE for one forward pass, HF's rotate-half form `x cos + rotate_half(x) sin`, applied to
/// `[b, s, heads, hd]` projections before the heads are swapped out: cos / sin laid out once per
/// pass for the query and the key heads (same-shape products take the backends' fast paths), and
/// `rotate_half` (`[x1, x2] -> [-x2, x1]`) as a matmul with a `[hd, hd]` signed permutation. Each
/// output is one `±x` plus zeros, so it is exact; its gradient is one matmul, where
/// `narrow` / `neg` / `cat` cost a zero-filled `slice_assign` per half in backward.
#[derive(Debug, Clone)]
pub struct Rotary<B: Backend> {
    /// `[b, s, num_heads, hd]`
    cos_q: Tensor<B, 4>,
    sin_q: Tensor<B, 4>,
    /// `[b, s, num_key_value_heads, hd]`
    cos_k: Tensor<B, 4>,
    sin_k: Tensor<B, 4>,
    /// `[hd, hd]`: `x.matmul(rotate)` is `rotate_half(x)`.
    rotate: Tensor<B, 2>,
}

impl<B: Backend> Rotary<B> {
    /// From cos / sin `[b, s, hd]` (HF layout: the frequencies twice over).
    fn new(cos: Tensor<B, 3>, sin: Tensor<B, 3>, heads: usize, kv_heads: usize) -> Self {
        let [_, _, hd] = cos.dims();
        let device = cos.device();
        let mut r = vec![0f32; hd * hd];
        for j in 0..hd / 2 {
            r[(j + hd / 2) * hd + j] = -1.0; // out[j] = -x[j + hd/2]
            r[j * hd + j + hd / 2] = 1.0; // out[j + hd/2] = x[j]
        }
        let rotate =
            Tensor::<B, 2>::from_data(TensorData::new(r, [hd, hd]), &device).cast(cos.dtype());
        let lay = |t: &Tensor<B, 3>, n: usize| t.clone().unsqueeze_dim::<4>(2).repeat_dim(2, n); // [b, s, n, hd]
        let (cos_q, sin_q) = (lay(&cos, heads), lay(&sin, heads));
        // Multi-head attention: the key tables are the query tables (shared, not laid out twice).
        let (cos_k, sin_k) = if kv_heads == heads {
            (cos_q.clone(), sin_q.clone())
        } else {
            (lay(&cos, kv_heads), lay(&sin, kv_heads))
        };
        Self {
            cos_q,
            sin_q,
            cos_k,
            sin_k,
            rotate,
        }
    }

    fn apply(&self, x: Tensor<B, 4>, cos: &Tensor<B, 4>, sin: &Tensor<B, 4>) -> Tensor<B, 4> {
        let [b, s, n, hd] = x.dims();
        let rotated = x
            .clone()
            .reshape([b * s * n, hd])
            .matmul(self.rotate.clone())
            .reshape([b, s, n, hd]);
        x * cos.clone() + rotated * sin.clone() // [b, s, n, hd]
    }

    /// Queries `[b, s, num_heads, hd]`.
    pub fn queries(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        self.apply(x, &self.cos_q, &self.sin_q)
    }

    /// Keys `[b, s, num_key_value_heads, hd]`.
    pub fn keys(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        self.apply(x, &self.cos_k, &self.sin_k)
    }
}

impl<B: Backend> Attention<B> {
    /// `x`: [b, s, d]; `rope`: this pass's tables; `mask`: [b, 1, s, past + s], true = blocked.
    pub fn forward(
        &self,
        x: Tensor<B, 3>,
        rope: &Rotary<B>,
        mask: Option<AttnMask<B>>,
        cache: Option<&mut Option<LayerCache<B>>>,
    ) -> Tensor<B, 3> {
        let [b, s, _] = x.dims();
        let (h, kvh, hd) = (self.num_heads, self.num_key_value_heads, self.head_dim);
        let split = |t: Tensor<B, 3>, n: usize| t.reshape([b, s, n, hd]); // [b, s, n, hd]
        let head_norm = |t: Tensor<B, 4>, norm: &Option<RmsNorm<B>>| match norm {
            Some(norm) => {
                let [b, s, n, hd] = t.dims();
                norm.forward(t.reshape([b, s * n, hd]))
                    .reshape([b, s, n, hd])
            }
            None => t,
        };
        let q = head_norm(split(self.q_proj.forward(x.clone()), h), &self.q_norm);
        let q = rope.queries(q).swap_dims(1, 2); // [b, h, s, hd]
        let k = head_norm(split(self.k_proj.forward(x.clone()), kvh), &self.k_norm);
        let mut k = rope.keys(k).swap_dims(1, 2); // [b, kvh, s, hd]
        let mut v = split(self.v_proj.forward(x), kvh).swap_dims(1, 2); // [b, kvh, s, hd]
        if let Some(slot) = cache {
            if let Some(past) = slot.take() {
                k = Tensor::cat(vec![past.k, k], 2); // [b, kvh, past + s, hd]
                v = Tensor::cat(vec![past.v, v], 2);
            }
            *slot = Some(LayerCache {
                k: k.clone(),
                v: v.clone(),
            });
        }
        let t = k.dims()[2];
        // Grouped-query attention: each kv head serves h / kvh consecutive query heads.
        let repeat = |x: Tensor<B, 4>| {
            if h == kvh {
                x
            } else {
                x.unsqueeze_dim::<5>(2)
                    .expand([b, kvh, h / kvh, t, hd])
                    .reshape([b, h, t, hd])
            }
        };
        let options = AttentionModuleOptions {
            scale: None,
            softcap: None,
            is_causal: false,
        };
        let (mask, bias) = match mask {
            Some(AttnMask::Blocked(m)) => (Some(m.expand([b, h, s, t])), None),
            Some(AttnMask::Bias(m)) => (None, Some(m.expand([b, h, s, t]))),
            None => (None, None),
        };
        let out = attention(q, repeat(k), repeat(v), mask, bias, options); // [b, h, s, hd]
        self.o_proj
            .forward(out.swap_dims(1, 2).reshape([b, s, h * hd]))
    }
}

/// How attention learns which keys a query may not see.
#[derive(Debug, Clone)]
pub enum AttnMask<B: Backend> {
    /// `[b, 1, s, t]`, true = blocked (inference: the backends' fused attention reads it).
    Blocked(Tensor<B, 4, Bool>),
    /// `[b, h, s, t]` added to the scores: 0 or -inf (training: an added constant costs
    /// nothing in backward, and under autodiff the attention is one node computing its
    /// probabilities from these scores, so no boolean mask is needed).
    Bias(Tensor<B, 4>),
}

impl<B: Backend> AttnMask<B> {
    /// The form suited to the backend: [`AttnMask::Bias`] in `dtype` when it differentiates,
    /// laid out once for all `heads` (every layer adds it to its scores; adding a view expanded
    /// over the heads takes CPU backends' slower broadcast path in each layer).
    pub fn new(blocked: Tensor<B, 4, Bool>, dtype: DType, heads: usize) -> Self {
        if B::ad_enabled(&blocked.device()) {
            let [b, _, s, t] = blocked.dims();
            let zeros = Tensor::<B, 4>::zeros([b, heads, s, t], &blocked.device());
            let bias = zeros.mask_fill(blocked.expand([b, heads, s, t]), f32::NEG_INFINITY); // [b, h, s, t]
            Self::Bias(if dtype == DType::F32 {
                bias
            } else {
                bias.cast(dtype)
            })
        } else {
            Self::Blocked(blocked)
        }
    }
}

#[derive(Module, Debug)]
pub struct Mlp<B: Backend> {
    pub gate_proj: Linear<B>,
    pub up_proj: Linear<B>,
    pub down_proj: Linear<B>,
}

impl<B: Backend> Mlp<B> {
    pub fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        self.down_proj
            .forward(silu(self.gate_proj.forward(x.clone())) * self.up_proj.forward(x))
    }
}

#[derive(Module, Debug)]
pub struct DecoderLayer<B: Backend> {
    pub self_attn: Attention<B>,
    pub mlp: Mlp<B>,
    pub input_layernorm: RmsNorm<B>,
    pub post_attention_layernorm: RmsNorm<B>,
}

/// HF state-dict names, the one table that loading (`from_source`) and saving (`named_tensors`)
/// read: the top-level tensors, and a decoder layer's modules under `model.layers.N.` (a linear
/// layer's tensors are `<name>.weight` and, with a bias, `<name>.bias`; a norm's `<name>.weight`).
pub mod hf_names {
    pub const EMBED_TOKENS: &str = "model.embed_tokens.weight";
    pub const NORM: &str = "model.norm.weight";
    pub const LM_HEAD: &str = "lm_head.weight";
    pub const Q_PROJ: &str = "self_attn.q_proj";
    pub const K_PROJ: &str = "self_attn.k_proj";
    pub const V_PROJ: &str = "self_attn.v_proj";
    pub const O_PROJ: &str = "self_attn.o_proj";
    pub const Q_NORM: &str = "self_attn.q_norm";
    pub const K_NORM: &str = "self_attn.k_norm";
    pub const GATE_PROJ: &str = "mlp.gate_proj";
    pub const UP_PROJ: &str = "mlp.up_proj";
    pub const DOWN_PROJ: &str = "mlp.down_proj";
    pub const INPUT_LAYERNORM: &str = "input_layernorm";
    pub const POST_ATTENTION_LAYERNORM: &str = "post_attention_layernorm";

    /// The prefix of layer `i`'s modules.
    pub fn layer_prefix(i: usize) -> String {
        format!("model.layers.{i}")
    }
}

/// One module of a decoder layer, as `DecoderLayer::modules` lists them.
pub enum LayerModule<'a, B: Backend> {
    Linear(&'a Linear<B>),
    Norm(&'a RmsNorm<B>),
}

impl<B: Backend> DecoderLayer<B> {
    /// The layer's modules with their HF names, in HF's state-dict order (Qwen3's q / k norms
    /// only when the model has them).
    pub fn modules(&self) -> Vec<(&'static str, LayerModule<'_, B>)> {
        use LayerModule::{Linear as L, Norm as N};
        use hf_names::*;
        let (a, m) = (&self.self_attn, &self.mlp);
        let mut out = vec![
            (Q_PROJ, L(&a.q_proj)),
            (K_PROJ, L(&a.k_proj)),
            (V_PROJ, L(&a.v_proj)),
            (O_PROJ, L(&a.o_proj)),
        ];
        out.extend(a.q_norm.as_ref().map(|n| (Q_NORM, N(n))));
        out.extend(a.k_norm.as_ref().map(|n| (K_NORM, N(n))));
        out.extend([
            (GATE_PROJ, L(&m.gate_proj)),
            (UP_PROJ, L(&m.up_proj)),
            (DOWN_PROJ, L(&m.down_proj)),
            (INPUT_LAYERNORM, N(&self.input_layernorm)),
            (POST_ATTENTION_LAYERNORM, N(&self.post_attention_layernorm)),
        ]);
        out
    }
}

/// HF `LlamaModel`: the transformer body (`model.*` keys).
#[derive(Module, Debug)]
pub struct LlamaModel<B: Backend> {
    pub embed_tokens: Param<Tensor<B, 2>>,
    pub layers: Vec<DecoderLayer<B>>,
    pub norm: RmsNorm<B>,
}

/// HF `LlamaForCausalLM` / `Qwen2ForCausalLM` / `Qwen3ForCausalLM`: body + LM head
/// (`lm_head.weight`, absent when tied).
#[derive(Module, Debug)]
pub struct LlamaForCausalLM<B: Backend> {
    pub model: LlamaModel<B>,
    pub lm_head: Option<Param<Tensor<B, 2>>>,
    /// RoPE inverse frequencies, `head_dim / 2` ([`crate::config::Rope::inv_freq`]).
    #[module(skip)]
    pub inv_freq: Vec<f32>,
}

impl<B: Backend> LlamaForCausalLM<B> {
    /// Logits `[b, s, vocab]` for `input_ids` `[b, s]` at `positions` `[b, s]` (RoPE positions).
    /// `mask` `[b, 1, s, past + s]` (true = blocked) comes from [`attention_mask`]; `None` means
    /// no position is blocked (a single new token per row without padding). With `cache`, keys and
    /// values of this call are appended to it.
    pub fn forward(
        &self,
        input_ids: Tensor<B, 2, Int>,
        positions: Tensor<B, 2, Int>,
        mask: Option<Tensor<B, 4, Bool>>,
        cache: Option<&mut KvCache<B>>,
    ) -> Tensor<B, 3> {
        let x = self.hidden_states(input_ids, positions, mask, cache); // [b, s, d]
        let head = self
            .lm_head
            .as_ref()
            .unwrap_or(&self.model.embed_tokens)
            .val(); // [vocab, d]
        hf_linear(x, head, None) // [b, s, vocab]
    }

    /// The body's output after the final norm, `[b, s, d]` (what the LM head or a reward head reads).
    pub fn hidden_states(
        &self,
        input_ids: Tensor<B, 2, Int>,
        positions: Tensor<B, 2, Int>,
        mask: Option<Tensor<B, 4, Bool>>,
        mut cache: Option<&mut KvCache<B>>,
    ) -> Tensor<B, 3> {
        let (cos, sin) = self.rope_tables(positions);
        let mut x = embedding(self.model.embed_tokens.val(), input_ids); // [b, s, d]
        // Reduced-precision weights (bf16 training): the rotary tables follow the activations.
        let dtype = x.dtype();
        let (cos, sin) = if dtype == DType::F32 {
            (cos, sin)
        } else {
            (cos.cast(dtype), sin.cast(dtype))
        };
        let (heads, kv_heads) = self.model.layers.first().map_or((1, 1), |l| {
            (l.self_attn.num_heads, l.self_attn.num_key_value_heads)
        });
        let rope = Rotary::new(cos, sin, heads, kv_heads);
        let mask = mask.map(|m| AttnMask::new(m, dtype, heads));
        for (i, layer) in self.model.layers.iter().enumerate() {
            let slot = cache.as_mut().map(|c| &mut c.layers[i]);
            let attn = layer.self_attn.forward(
                layer.input_layernorm.forward(x.clone()),
                &rope,
                mask.clone(),
                slot,
            );
            x = x + attn;
            x = x.clone() + layer.mlp.forward(layer.post_attention_layernorm.forward(x));
        }
        self.model.norm.forward(x)
    }

    /// Logits for whole sequences with right or left padding (no cache): `valid[i][j]` says token
    /// `j` of row `i` is real; positions count real tokens only, as HF `generate` does.
    pub fn forward_padded(
        &self,
        input_ids: Tensor<B, 2, Int>,
        valid: &[Vec<bool>],
    ) -> Tensor<B, 3> {
        let device = input_ids.device();
        let s = input_ids.dims()[1];
        let positions = positions_from_valid(valid, 0, s, &device);
        let mask = attention_mask::<B>(valid, s, &device);
        self.forward(input_ids, positions, Some(mask), None)
    }

    /// [`Self::hidden_states`] for whole padded sequences (no cache), as [`Self::forward_padded`].
    pub fn hidden_padded(&self, input_ids: Tensor<B, 2, Int>, valid: &[Vec<bool>]) -> Tensor<B, 3> {
        let device = input_ids.device();
        let s = input_ids.dims()[1];
        let positions = positions_from_valid(valid, 0, s, &device);
        let mask = attention_mask::<B>(valid, s, &device);
        self.hidden_states(input_ids, positions, Some(mask), None)
    }

    /// The LM head's weight `[vocab, d]` (the embedding matrix when tied).
    pub fn head_weight(&self) -> Tensor<B, 2> {
        self.lm_head
            .as_ref()
            .unwrap_or(&self.model.embed_tokens)
            .val()
    }

    /// cos / sin tables `[b, s, head_dim]` for integer positions `[b, s]` (HF rotate-half layout).
    fn rope_tables(&self, positions: Tensor<B, 2, Int>) -> (Tensor<B, 3>, Tensor<B, 3>) {
        let hd = self.model.layers[0].self_attn.head_dim;
        let [b, s] = positions.dims();
        let device = positions.device();
        let inv =
            Tensor::<B, 1>::from_data(TensorData::new(self.inv_freq.clone(), [hd / 2]), &device)
                .reshape([1, 1, hd / 2]);
        let freqs = positions.float().reshape([b, s, 1]) * inv; // [b, s, hd/2]
        let emb = Tensor::cat(vec![freqs.clone(), freqs], 2); // [b, s, hd]
        (emb.clone().cos(), emb.sin())
    }

    /// Build the model from a weight source (a checkpoint or a random init), asking for every
    /// HF tensor by name; all problems are reported together by `source.finish()`.
    pub fn from_source(
        config: &LlamaConfig,
        source: &mut impl WeightSource,
        device: &B::Device,
    ) -> Result<Self, ModelError> {
        config.validate()?;
        let c = config;
        let (h, hd, q, kv) = (
            c.hidden_size,
            c.head_dim(),
            c.num_attention_heads,
            c.num_kv_heads(),
        );
        let mut w = Builder {
            source,
            device,
            std: Init::Normal(c.initializer_range),
            eps: c.rms_norm_eps,
        };
        let mut layers = Vec::with_capacity(c.num_hidden_layers);
        for i in 0..c.num_hidden_layers {
            use hf_names::*;
            let p = hf_names::layer_prefix(i);
            let n = |name: &str| format!("{p}.{name}");
            let nw = |name: &str| format!("{p}.{name}.weight");
            let inter = c.intermediate_size;
            layers.push(DecoderLayer {
                self_attn: Attention {
                    q_proj: w.linear(&n(Q_PROJ), q * hd, h, c.qkv_bias()),
                    k_proj: w.linear(&n(K_PROJ), kv * hd, h, c.qkv_bias()),
                    v_proj: w.linear(&n(V_PROJ), kv * hd, h, c.qkv_bias()),
                    o_proj: w.linear(&n(O_PROJ), h, q * hd, c.o_bias()),
                    q_norm: c.qk_norm().then(|| w.norm(&nw(Q_NORM), hd)),
                    k_norm: c.qk_norm().then(|| w.norm(&nw(K_NORM), hd)),
                    num_heads: q,
                    num_key_value_heads: kv,
                    head_dim: hd,
                },
                mlp: Mlp {
                    gate_proj: w.linear(&n(GATE_PROJ), inter, h, c.mlp_bias),
                    up_proj: w.linear(&n(UP_PROJ), inter, h, c.mlp_bias),
                    down_proj: w.linear(&n(DOWN_PROJ), h, inter, c.mlp_bias),
                },
                input_layernorm: w.norm(&nw(INPUT_LAYERNORM), h),
                post_attention_layernorm: w.norm(&nw(POST_ATTENTION_LAYERNORM), h),
            });
        }
        let norm = w.norm(hf_names::NORM, h);
        let embed_tokens = w.matrix(hf_names::EMBED_TOKENS, c.vocab_size, h);
        let lm_head =
            (!c.tie_word_embeddings).then(|| w.matrix(hf_names::LM_HEAD, c.vocab_size, h));
        let inv_freq = c.rope()?.inv_freq(hd);
        Ok(Self {
            model: LlamaModel {
                embed_tokens,
                layers,
                norm,
            },
            lm_head,
            inv_freq,
        })
    }

    /// Every parameter with its HF state-dict name, in the order HF lists them.
    pub fn named_tensors(&self) -> Vec<(String, TensorData)> {
        let mut out = vec![(
            hf_names::EMBED_TOKENS.to_string(),
            self.model.embed_tokens.val().into_data(),
        )];
        for (i, layer) in self.model.layers.iter().enumerate() {
            let p = hf_names::layer_prefix(i);
            for (name, module) in layer.modules() {
                match module {
                    LayerModule::Linear(l) => {
                        out.push((format!("{p}.{name}.weight"), l.weight.val().into_data()));
                        if let Some(b) = &l.bias {
                            out.push((format!("{p}.{name}.bias"), b.val().into_data()));
                        }
                    }
                    LayerModule::Norm(n) => {
                        out.push((format!("{p}.{name}.weight"), n.weight.val().into_data()))
                    }
                }
            }
        }
        out.push((
            hf_names::NORM.into(),
            self.model.norm.weight.val().into_data(),
        ));
        if let Some(head) = &self.lm_head {
            out.push((hf_names::LM_HEAD.into(), head.val().into_data()));
        }
        out
    }
}

/// RoPE positions `[b, s]` for the `s` tokens after `past` cached slots: the number of real tokens
/// before each one (left padding does not advance the position), as HF `generate` computes them.
pub fn positions_from_valid<B: Backend>(
    valid: &[Vec<bool>],
    past: usize,
    s: usize,
    device: &B::Device,
) -> Tensor<B, 2, Int> {
    let mut pos = Vec::with_capacity(valid.len() * s);
    for row in valid {
        let mut count = row[..past].iter().filter(|&&v| v).count() as i64;
        for &v in &row[past..past + s] {
            pos.push((count - 1 + v as i64).max(0));
            count += v as i64;
        }
    }
    Tensor::from_data(TensorData::new(pos, [valid.len(), s]), device)
}

/// The attention mask `[b, 1, s, t]` (true = blocked) for the last `s` of `t = valid[i].len()` slots:
/// a query may see keys at or before its own slot that hold real tokens.
pub fn attention_mask<B: Backend>(
    valid: &[Vec<bool>],
    s: usize,
    device: &B::Device,
) -> Tensor<B, 4, Bool> {
    let t = valid.first().map_or(0, Vec::len);
    let mut blocked = Vec::with_capacity(valid.len() * s * t);
    for row in valid {
        for j in 0..s {
            let slot = t - s + j;
            blocked.extend((0..t).map(|k| k > slot || !row[k]));
        }
    }
    Tensor::from_data(TensorData::new(blocked, [valid.len(), 1, s, t]), device)
}

/// Pulls named tensors from a [`WeightSource`] into parameters; a tensor the source cannot give
/// becomes zeros here and is reported by the source's `finish`.
struct Builder<'a, S, B: Backend> {
    source: &'a mut S,
    device: &'a B::Device,
    std: Init,
    eps: f64,
}

impl<S: WeightSource, B: Backend> Builder<'_, S, B> {
    fn tensor<const D: usize>(
        &mut self,
        name: &str,
        shape: [usize; D],
        init: Init,
    ) -> Param<Tensor<B, D>> {
        let data = self
            .source
            .take(name, &shape, init)
            .unwrap_or_else(|| TensorData::zeros::<f32, _>(shape));
        Param::from_tensor(Tensor::from_data(data, self.device))
    }

    fn matrix(&mut self, name: &str, rows: usize, cols: usize) -> Param<Tensor<B, 2>> {
        self.tensor(name, [rows, cols], self.std)
    }

    fn linear(&mut self, name: &str, out: usize, inp: usize, bias: bool) -> Linear<B> {
        Linear {
            weight: self.matrix(&format!("{name}.weight"), out, inp),
            bias: bias.then(|| self.tensor(&format!("{name}.bias"), [out], Init::Zeros)),
        }
    }

    fn norm(&mut self, name: &str, d: usize) -> RmsNorm<B> {
        RmsNorm {
            weight: self.tensor(name, [d], Init::Ones),
            eps: self.eps,
        }
    }
}
