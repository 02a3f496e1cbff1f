//! One-time model preparation: rewrite a GGUF file's weights into a quantization this build
//! has vectorised CPU kernels for.
//!
//! candle chooses its quantized dot products at compile time. With AVX2 (our `x86-64-v3`
//! build) Q4_0, Q8_0 and the k-quants have SIMD kernels; Q4_1, Q5_0 and Q5_1 have only scalar
//! code. The shipped SmolLM2 file is Q4_1, so its matrices run on the scalar path. Q8_0 holds
//! every Q4_1 value almost exactly (a Q4_1 block has 16 levels, a Q8_0 block 255), so the
//! rewrite keeps the model's answers while moving every matmul onto the AVX2 kernel.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use candle_core::quantized::{gguf_file, GgmlDType, QTensor};
use candle_core::Device;

/// Failure to prepare a model file.
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    #[error("cannot read {path}: {message}")]
    Read { path: PathBuf, message: String },
    #[error("cannot write {path}: {message}")]
    Write { path: PathBuf, message: String },
    #[error("tensor {name} of {path}: {message}")]
    Tensor {
        path: PathBuf,
        name: String,
        message: String,
    },
    #[error("unknown quantization {0:?}; expected one of q8_0, q4_0")]
    UnknownTarget(String),
}

/// The formats `prepare` writes: the two block formats with AVX2 kernels in candle that a
/// 32-wide block model (any GGUF, any shape) can always be rewritten into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Q8_0,
    Q4_0,
}

impl Target {
    pub fn parse(s: &str) -> Result<Self, PrepareError> {
        match s.to_ascii_lowercase().as_str() {
            "q8_0" => Ok(Self::Q8_0),
            "q4_0" => Ok(Self::Q4_0),
            _ => Err(PrepareError::UnknownTarget(s.to_owned())),
        }
    }

    fn dtype(self) -> GgmlDType {
        match self {
            Self::Q8_0 => GgmlDType::Q8_0,
            Self::Q4_0 => GgmlDType::Q4_0,
        }
    }
}

/// Whether candle has an AVX2 `vec_dot` for this type (k_quants.rs, candle-core 0.10.2).
/// Float tensors (norms) are not matmul weights in the quantized path and stay as they are.
fn has_simd_kernel(t: GgmlDType) -> bool {
    !matches!(
        t,
        GgmlDType::Q4_1 | GgmlDType::Q5_0 | GgmlDType::Q5_1 | GgmlDType::Q8_1
    )
}

/// What `prepare` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepared {
    /// Tensors rewritten, by their original type.
    pub converted: BTreeMap<String, usize>,
    /// Tensors copied unchanged.
    pub kept: usize,
}

/// Rewrite `src` into `dst`: every tensor whose type has no SIMD kernel is dequantized and
/// quantized to `target`; everything else (metadata, tokenizer, chat template, other tensors)
/// is copied. Writes `dst` atomically (a temporary file renamed into place).
pub fn prepare(src: &Path, dst: &Path, target: Target) -> Result<Prepared, PrepareError> {
    let read_err = |e: &dyn std::fmt::Display| PrepareError::Read {
        path: src.to_path_buf(),
        message: e.to_string(),
    };
    let mut reader = BufReader::new(File::open(src).map_err(|e| read_err(&e))?);
    let content = gguf_file::Content::read(&mut reader).map_err(|e| read_err(&e))?;
    let mut names: Vec<&String> = content.tensor_infos.keys().collect();
    names.sort();
    let mut tensors: Vec<(&str, QTensor)> = Vec::with_capacity(names.len());
    let mut done = Prepared {
        converted: BTreeMap::new(),
        kept: 0,
    };
    for name in names {
        let tensor_err = |e: candle_core::Error| PrepareError::Tensor {
            path: src.to_path_buf(),
            name: name.clone(),
            message: e.to_string(),
        };
        let q = content
            .tensor(&mut reader, name, &Device::Cpu)
            .map_err(tensor_err)?;
        let from = q.dtype();
        let q = if has_simd_kernel(from) {
            done.kept += 1;
            q
        } else {
            let f = q.dequantize(&Device::Cpu).map_err(tensor_err)?;
            *done.converted.entry(format!("{from:?}")).or_default() += 1;
            QTensor::quantize(&f, target.dtype()).map_err(tensor_err)?
        };
        tensors.push((name.as_str(), q));
    }
    let mut metadata: Vec<(&str, &gguf_file::Value)> = content
        .metadata
        .iter()
        .map(|(k, v)| (k.as_str(), v))
        .collect();
    metadata.sort_by(|a, b| a.0.cmp(b.0));

    let write_err = |e: &dyn std::fmt::Display| PrepareError::Write {
        path: dst.to_path_buf(),
        message: e.to_string(),
    };
    let partial = dst.with_extension("gguf.partial");
    let result = (|| {
        let mut w = BufWriter::new(File::create(&partial).map_err(|e| write_err(&e))?);
        let refs: Vec<(&str, &QTensor)> = tensors.iter().map(|(n, t)| (*n, t)).collect();
        gguf_file::write(&mut w, &metadata, &refs).map_err(|e| write_err(&e))?;
        w.flush().map_err(|e| write_err(&e))?;
        w.get_ref().sync_all().map_err(|e| write_err(&e))?;
        std::fs::rename(&partial, dst).map_err(|e| write_err(&e))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    result.map(|()| done)
}

/// The tensor types of a GGUF file, with how many tensors have each.
pub fn tensor_types(path: &Path) -> Result<BTreeMap<String, usize>, PrepareError> {
    let read_err = |e: &dyn std::fmt::Display| PrepareError::Read {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let mut reader = BufReader::new(File::open(path).map_err(|e| read_err(&e))?);
    let content = gguf_file::Content::read(&mut reader).map_err(|e| read_err(&e))?;
    let mut types = BTreeMap::new();
    for info in content.tensor_infos.values() {
        *types.entry(format!("{:?}", info.ggml_dtype)).or_default() += 1;
    }
    Ok(types)
}

#[cfg(test)]
mod tests;
