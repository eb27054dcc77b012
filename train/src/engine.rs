//! dsmath's generator behind dsmath-eval's [`Engine`] trait: prompts are tokenised, generated in
//! one batched KV-cache call (n samples share a prefill), and decoded back to text.

use burn::tensor::backend::Backend;
use dsmath_eval::run::Engine;
use dsmath_model::chat::ChatTemplate;
use dsmath_model::{LlamaForCausalLM, SamplingParams, Tokenizer, generate};

/// A model, its tokenizer and the sampling settings used when the evaluator asks for samples.
pub struct ModelEngine<'a, B: Backend> {
    pub model: &'a LlamaForCausalLM<B>,
    pub tokenizer: &'a Tokenizer,
    /// Settings for sampled completions (maj@k / pass@k); greedy ignores temperature/top-p/top-k.
    pub sampling: SamplingParams,
    /// Prompts longer than this many tokens keep their last `max_prompt_tokens` tokens.
    pub max_prompt_tokens: usize,
    /// Calls so far: varies the seed between calls so continuations are fresh samples.
    calls: u64,
    /// Tokens generated so far.
    pub generated_tokens: usize,
    /// The checkpoint's chat template: `cot` prompts become one user turn in it.
    pub chat: Option<ChatTemplate>,
}

impl<'a, B: Backend> ModelEngine<'a, B> {
    pub fn new(
        model: &'a LlamaForCausalLM<B>,
        tokenizer: &'a Tokenizer,
        sampling: SamplingParams,
        max_prompt_tokens: usize,
    ) -> Self {
        ModelEngine {
            model,
            tokenizer,
            sampling,
            max_prompt_tokens,
            calls: 0,
            generated_tokens: 0,
            chat: None,
        }
    }
}

impl<B: Backend> Engine for ModelEngine<'_, B> {
    fn complete(
        &mut self,
        prompts: &[String],
        n: usize,
        sampled: bool,
        stop: &[String],
    ) -> Result<Vec<Vec<String>>, String> {
        let mut ids = Vec::with_capacity(prompts.len());
        for p in prompts {
            let mut t = self.tokenizer.encode_prompt(p).map_err(|e| e.to_string())?;
            if t.len() > self.max_prompt_tokens {
                t.drain(..t.len() - self.max_prompt_tokens);
            }
            ids.push(t);
        }
        let mut params = if sampled {
            self.sampling.clone()
        } else {
            SamplingParams::greedy(self.sampling.max_new_tokens)
        };
        params.n = n;
        params.stop = stop.to_vec();
        params.seed = self
            .sampling
            .seed
            .wrapping_add(self.calls.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        self.calls += 1;
        let samples =
            generate(self.model, self.tokenizer, &ids, &params, None).map_err(|e| e.to_string())?;
        self.generated_tokens += samples.iter().map(|s| s.tokens.len()).sum::<usize>();
        let mut out: Vec<Vec<String>> = vec![Vec::with_capacity(n); prompts.len()];
        for s in samples {
            out[s.prompt].push(s.text); // already cut before any stop string
        }
        Ok(out)
    }

    fn user_turn(&self, text: &str) -> Result<Option<String>, String> {
        self.chat
            .as_ref()
            .map(|c| c.user_prompt(text).map_err(|e| e.to_string()))
            .transpose()
    }
}
