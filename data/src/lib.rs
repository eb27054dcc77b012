//! dsmath-data: the DeepSeekMath corpus pipeline (§2.1), free of Burn: WARC/WET/JSONL readers,
//! math-aware HTML to text, URL / exact / MinHash dedup, the fastText classifier, recall,
//! domain discovery, benchmark decontamination, token shards and the mixture sampler.

pub mod classify;
pub mod decontam;
pub mod dedup;
pub mod doc;
pub mod error;
pub mod extract;
pub mod html;
pub mod iterate;
pub mod mathml;
pub mod mixture;
pub mod pipeline;
pub mod recall;
pub mod shards;
pub mod url;
pub mod warc;

pub use doc::{Document, Provenance, Reject};
pub use error::{DataError, Result};
