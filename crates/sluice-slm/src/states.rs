//! What the carried engine returns beside raw logits for a Llama-family GGUF model: the hidden
//! states of every block (`third_party/mistralrs-core`, `QLlama::forward_states`), and the
//! model file's digest, which a probe fitted on those states records.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use candle_core::quantized::gguf_file;
use sha2::{Digest, Sha256};

/// The layout of a raw-logits row: `vocab` logits, then `count` hidden states of `size` each
/// (the embedding, the residual stream after each block, the final norm's output).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateShape {
    pub count: usize,
    pub size: usize,
    pub vocab: usize,
}

impl StateShape {
    /// Width of a raw-logits row that carries the states.
    pub fn width(&self) -> usize {
        self.vocab + self.count * self.size
    }
}

/// The state layout of a Llama-family GGUF file (from `llama.block_count`,
/// `llama.embedding_length` and the token embedding's size); `None` for other architectures,
/// whose raw logits carry no states.
pub fn state_shape(path: &Path) -> Result<Option<StateShape>, String> {
    let mut reader = BufReader::new(File::open(path).map_err(|e| e.to_string())?);
    let content = gguf_file::Content::read(&mut reader).map_err(|e| e.to_string())?;
    let arch = content
        .metadata
        .get("general.architecture")
        .and_then(|v| v.to_string().ok())
        .cloned()
        .unwrap_or_default();
    if arch != "llama" {
        return Ok(None);
    }
    let int = |key: &str| -> Result<usize, String> {
        let v = content
            .metadata
            .get(key)
            .ok_or_else(|| format!("metadata key {key} is missing"))?;
        v.to_u32()
            .map(|n| n as usize)
            .or_else(|_| v.to_u64().map(|n| n as usize))
            .map_err(|e| format!("metadata key {key}: {e}"))
    };
    let blocks = int("llama.block_count")?;
    let size = int("llama.embedding_length")?;
    let embd = content
        .tensor_infos
        .get("token_embd.weight")
        .ok_or("tensor token_embd.weight is missing")?;
    let cells = embd.shape.elem_count();
    if size == 0 || cells % size != 0 {
        return Err(format!(
            "token_embd.weight has {cells} cells, not a multiple of embedding_length {size}"
        ));
    }
    Ok(Some(StateShape {
        count: blocks + 2,
        size,
        vocab: cells / size,
    }))
}

/// SHA-256 of a file, as lowercase hex.
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut file = BufReader::new(File::open(path)?);
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_of_a_known_text() {
        let path = std::env::temp_dir().join(format!("sluice-sha-{}", std::process::id()));
        std::fs::write(&path, b"abc").unwrap();
        let got = sha256_file(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(
            got,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn a_file_that_is_not_gguf_is_an_error() {
        let path = std::env::temp_dir().join(format!("sluice-notgguf-{}", std::process::id()));
        std::fs::write(&path, b"not a gguf file").unwrap();
        let got = state_shape(&path);
        std::fs::remove_file(&path).unwrap();
        assert!(got.is_err(), "{got:?}");
    }
}
