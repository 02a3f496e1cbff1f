//! Canonical cache keys: an unambiguous, versioned encoding of everything that can change an
//! answer, hashed with SHA-256.
//!
//! Every variable-length field is length-prefixed and every optional field carries a presence
//! byte, so no two different inputs share an encoding: tenant `"ab"` with policy `"c"` is not
//! tenant `"a"` with policy `"bc"`, and `temperature: None` is not `Some(0.0)`. A version tag
//! comes first (bump it when the encoding or the normalisation changes) and a domain tag keeps
//! response keys and score keys apart.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};
use sluice_policy::{GenParams, Message, Role};

/// Bumped whenever the encoding or [`normalize_text`] changes, so old entries are never read.
const VERSION_TAG: &[u8] = b"sluice-cache-v2";
const RESPONSE_DOMAIN: &[u8] = b"response";
const SCORE_DOMAIN: &[u8] = b"score";

/// A cache key: the SHA-256 of the canonical encoding of a request.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub struct CacheKey(pub [u8; 32]);

impl CacheKey {
    /// The key as 64 lowercase hex digits (the form stored in Redis).
    pub fn hex(&self) -> String {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut out = String::with_capacity(64);
        for b in self.0 {
            out.push(char::from(DIGITS[usize::from(b >> 4)]));
            out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
        }
        out
    }
}

impl std::fmt::Display for CacheKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.hex())
    }
}

/// What identifies a cached chat answer.
#[derive(Debug, Clone, Copy)]
pub struct ResponseKeyInput<'a> {
    pub tenant: &'a str,
    pub policy: &'a str,
    /// Changes whenever the policy's content changes (the caller hashes the file); part of the key.
    pub policy_fingerprint: u64,
    /// The local model's id (answers differ per model).
    pub local_model: &'a str,
    /// "auto" | "local" | "remote": the route hint changes the answer.
    pub hint: &'a str,
    pub messages: &'a [Message],
    pub params: &'a GenParams,
    /// Request tags that can change the route (policy rules match on them); empty when none
    /// can, so that tags which change nothing do not split the cache.
    pub tags: &'a BTreeMap<String, String>,
}

/// What identifies a cached difficulty score of the local model.
#[derive(Debug, Clone, Copy)]
pub struct ScoreKeyInput<'a> {
    pub tenant: &'a str,
    pub policy: &'a str,
    /// Changes whenever the policy's content changes; part of the key.
    pub policy_fingerprint: u64,
    /// The local model's id (scores differ per model).
    pub local_model: &'a str,
    pub messages: &'a [Message],
    /// The token budget the score was computed for.
    pub max_tokens: u32,
}

/// The key of a cached answer; equal exactly when the canonical requests are equal.
pub fn response_key(k: &ResponseKeyInput<'_>) -> CacheKey {
    let mut enc = Encoder::new(RESPONSE_DOMAIN);
    enc.bytes(k.tenant.as_bytes());
    enc.bytes(k.policy.as_bytes());
    enc.u64(k.policy_fingerprint);
    enc.bytes(k.local_model.as_bytes());
    enc.bytes(k.hint.as_bytes());
    enc.messages(k.messages);
    enc.opt_u32(k.params.max_tokens);
    enc.opt_f32(k.params.temperature);
    enc.opt_f32(k.params.top_p);
    enc.len(k.params.stop.len());
    for stop in &k.params.stop {
        enc.bytes(stop.as_bytes());
    }
    // A BTreeMap iterates in key order: the same tags always encode the same way.
    enc.len(k.tags.len());
    for (name, value) in k.tags {
        enc.bytes(name.as_bytes());
        enc.bytes(value.as_bytes());
    }
    enc.finish()
}

/// The key of a cached score; never equal to a response key.
pub fn score_key(k: &ScoreKeyInput<'_>) -> CacheKey {
    let mut enc = Encoder::new(SCORE_DOMAIN);
    enc.bytes(k.tenant.as_bytes());
    enc.bytes(k.policy.as_bytes());
    enc.u64(k.policy_fingerprint);
    enc.bytes(k.local_model.as_bytes());
    enc.messages(k.messages);
    enc.u32(k.max_tokens);
    enc.finish()
}

/// Normalises a message text: CRLF/CR → LF, trailing whitespace of every line removed, leading/trailing blank lines and surrounding whitespace trimmed. Inner text (including repeated inner spaces) is kept: it can change the answer.
pub fn normalize_text(s: &str) -> String {
    let unified = s.replace("\r\n", "\n").replace('\r', "\n");
    let mut out = String::with_capacity(unified.len());
    for (i, line) in unified.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(line.trim_end());
    }
    // Lines carry no trailing whitespace now, so this trims blank lines at both ends and the
    // first line's indentation, nothing inside.
    out.trim().to_owned()
}

/// Feeds a canonical, self-delimiting encoding into SHA-256.
struct Encoder(Sha256);

impl Encoder {
    fn new(domain: &[u8]) -> Self {
        let mut enc = Encoder(Sha256::new());
        enc.bytes(VERSION_TAG);
        enc.bytes(domain);
        enc
    }

    fn u64(&mut self, v: u64) {
        self.0.update(v.to_le_bytes());
    }

    fn u32(&mut self, v: u32) {
        self.0.update(v.to_le_bytes());
    }

    fn len(&mut self, n: usize) {
        // usize is at most 64 bits on every supported target.
        self.u64(n as u64);
    }

    fn bytes(&mut self, b: &[u8]) {
        self.len(b.len());
        self.0.update(b);
    }

    fn opt_u32(&mut self, v: Option<u32>) {
        match v {
            None => self.0.update([0u8]),
            Some(v) => {
                self.0.update([1u8]);
                self.u32(v);
            }
        }
    }

    fn opt_f32(&mut self, v: Option<f32>) {
        match v {
            None => self.0.update([0u8]),
            Some(v) => {
                self.0.update([1u8]);
                self.u32(canonical_f32_bits(v));
            }
        }
    }

    fn messages(&mut self, messages: &[Message]) {
        self.len(messages.len());
        for m in messages {
            self.0.update([role_tag(m.role)]);
            self.bytes(normalize_text(&m.content).as_bytes());
        }
    }

    fn finish(self) -> CacheKey {
        CacheKey(self.0.finalize().into())
    }
}

/// The f32's exact bits, except that -0.0 is 0.0 and every NaN is the same NaN: those pairs
/// compare (or behave) the same to a sampler.
fn canonical_f32_bits(v: f32) -> u32 {
    if v == 0.0 {
        0
    } else if v.is_nan() {
        f32::NAN.to_bits()
    } else {
        v.to_bits()
    }
}

/// A fixed tag per role, independent of the enum's declaration order.
fn role_tag(role: Role) -> u8 {
    match role {
        Role::System => 1,
        Role::User => 2,
        Role::Assistant => 3,
    }
}

#[cfg(test)]
mod tests;
