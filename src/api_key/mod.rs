//! The API-key middleware: every request gets a key id that is safe to log, auth headers
//! are marked sensitive, and in gateway-key mode clients present veilgate keys that are
//! verified and swapped for the upstream's real provider key.
//!
//! # What it does
//!
//! **Key id.** The presented key is read from `Authorization: Bearer ...`, `x-api-key` or
//! `api-key` (the first present, in that order). Its id is HMAC-SHA256 keyed with a
//! [`Pepper`], truncated to 80 bits and base32-encoded: `kid_` and 16 characters, e.g.
//! `kid_7QK2M4XJ3BWD5RAE`. The same key and pepper always give the same id; without the
//! pepper, an id cannot be checked against guessed keys. Logs, metrics and tenant
//! mappings use the id, never the key.
//!
//! **Context.** A [`KeyContext`] (key id, tenant, whether a gateway key was verified) is
//! put into the request extensions. A [`Tenant`] the host application already put there
//! (an axum auth middleware, say) is kept. `Authorization`, `x-api-key` and `api-key` are
//! marked sensitive ([`http::HeaderValue::set_sensitive`]), so `Debug` and HTTP/2 header
//! compression leave them alone.
//!
//! **Gateway-key mode** ([`ApiKeyLayer::gateway_keys`]). The configuration holds only the
//! SHA-256 of each veilgate key ([`hash`]; [`mint`] makes new ones). The presented key's
//! hash is compared with every configured hash in constant time ([`constant_time_eq`],
//! no early exit). On success the client's auth headers are removed and the
//! [`ProviderKey`] is injected: `Authorization: Bearer` for OpenAI-style and generic
//! APIs, `x-api-key` for Anthropic (by [`Provider::detect`](crate::provider::Provider::detect)
//! or [`ApiKeyLayer::provider`]). A missing key gets a provider-shaped 401 with code
//! `veilgate_missing_api_key`, a wrong one `veilgate_invalid_api_key`; the inner service
//! is not called, and the body never quotes the key.
//!
//! Without gateway keys the layer never refuses: requests without a key pass with
//! `key_id: None`.
//!
//! # Example
//!
//! ```
//! use std::convert::Infallible;
//! use bytes::Bytes;
//! use http::{Request, Response, StatusCode};
//! use http_body_util::Full;
//! use tower::{ServiceBuilder, ServiceExt};
//! use veilgate::api_key::{ApiKeyLayer, GatewayKey, KeyContext, Pepper, ProviderKey};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let (client_key, sha256_hex) = veilgate::api_key::mint().unwrap();
//! let layer = ApiKeyLayer::new(Pepper::new(*b"a pepper from a secret store...."))
//!     .gateway_keys(vec![GatewayKey { sha256_hex, tenant: Some("acme".into()), name: None }])
//!     .provider_key(ProviderKey::new("sk-real-provider-key").unwrap());
//!
//! // The "provider": checks what it was given.
//! let upstream = tower::service_fn(|req: Request<Full<Bytes>>| async move {
//!     assert_eq!(req.headers()["authorization"], "Bearer sk-real-provider-key");
//!     let ctx = req.extensions().get::<KeyContext>().unwrap();
//!     assert_eq!(ctx.tenant.as_ref().unwrap().as_str(), "acme");
//!     assert!(ctx.key_id.as_ref().unwrap().as_str().starts_with("kid_"));
//!     Ok::<_, Infallible>(Response::new(Full::new(Bytes::new())))
//! });
//! let svc = ServiceBuilder::new().layer(layer).service(upstream);
//!
//! let req = Request::post("/v1/chat/completions")
//!     .header("authorization", format!("Bearer {client_key}"))
//!     .body(Full::new(Bytes::new()))
//!     .unwrap();
//! assert_eq!(svc.clone().oneshot(req).await.unwrap().status(), StatusCode::OK);
//!
//! let req = Request::post("/v1/chat/completions")
//!     .header("authorization", "Bearer vg-not-a-real-key")
//!     .body(Full::new(Bytes::new()))
//!     .unwrap();
//! assert_eq!(svc.oneshot(req).await.unwrap().status(), StatusCode::UNAUTHORIZED);
//! # }
//! ```

mod layer;
mod secret;
mod service;

pub use layer::ApiKeyLayer;
pub use secret::{Pepper, ProviderKey, SecretError};
pub use service::{ApiKey, ResponseBody, ResponseFuture};

use std::fmt;
use std::io::Read;
use std::sync::Arc;

use hmac::Mac;
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// Headers that carry API keys, in the order they are read.
pub const KEY_HEADERS: [&str; 3] = ["authorization", "x-api-key", "api-key"];

/// The public id of an API key: `kid_` and 16 base32 characters (80 bits of
/// HMAC-SHA256 under the [`Pepper`]). Safe to log.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(Arc<str>);

impl KeyId {
    /// The id of `key` under `pepper`.
    pub fn of(pepper: &Pepper, key: &[u8]) -> KeyId {
        let mut mac = pepper.keyed.clone();
        mac.update(key);
        let tag = mac.finalize().into_bytes();
        KeyId(format!("kid_{}", base32(&tag[..10])).into())
    }

    /// `kid_...`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A tenant name. A host application that authenticates requests itself can insert one
/// into the request extensions before this layer runs; it is then kept.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tenant(Arc<str>);

impl Tenant {
    pub fn new(name: impl Into<Arc<str>>) -> Tenant {
        Tenant(name.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Tenant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for Tenant {
    fn from(s: &str) -> Tenant {
        Tenant::new(s)
    }
}

impl From<String> for Tenant {
    fn from(s: String) -> Tenant {
        Tenant::new(s)
    }
}

/// What the layer learned about the request's key; in the request extensions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyContext {
    /// The presented key's id, if a key was presented.
    pub key_id: Option<KeyId>,
    /// The host's tenant if it set one, else the verified gateway key's.
    pub tenant: Option<Tenant>,
    /// A gateway key was presented and verified.
    pub gateway_verified: bool,
}

/// A veilgate key the gateway accepts, as stored in the configuration: only its hash.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayKey {
    /// Lowercase or uppercase hex SHA-256 of the key (see [`hash`]).
    pub sha256_hex: String,
    /// The tenant requests with this key belong to.
    #[serde(default)]
    pub tenant: Option<String>,
    /// A label for people (never used to authenticate).
    #[serde(default)]
    pub name: Option<String>,
}

impl GatewayKey {
    /// Checks `sha256_hex` (64 hex digits).
    pub fn check(&self) -> Result<(), SecretError> {
        self.digest().map(drop)
    }

    pub(crate) fn digest(&self) -> Result<[u8; 32], SecretError> {
        let bad = || SecretError::BadHash(self.name.clone().unwrap_or_default());
        let hex = self.sha256_hex.trim().as_bytes();
        if hex.len() != 64 {
            return Err(bad());
        }
        let mut out = [0u8; 32];
        for (o, pair) in out.iter_mut().zip(hex.chunks(2)) {
            let hi = (pair[0] as char).to_digit(16).ok_or_else(bad)?;
            let lo = (pair[1] as char).to_digit(16).ok_or_else(bad)?;
            *o = (hi * 16 + lo) as u8;
        }
        Ok(out)
    }
}

/// Equality that takes the same time wherever the inputs differ: XOR of every byte pair
/// folded with OR, no early exit. Only the lengths (not secret here) may end it early.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    core::hint::black_box(diff) == 0
}

/// The SHA-256 of `key` (surrounding whitespace trimmed), as lowercase hex: what the
/// configuration stores for a gateway key.
pub fn hash(key: &str) -> String {
    hex(&Sha256::digest(key.trim().as_bytes()))
}

/// Mints a gateway key: `vg-` and 43 base64url characters (256 bits from `/dev/urandom`),
/// with its [`hash`]. Show the key once; store only the hash.
pub fn mint() -> std::io::Result<(String, String)> {
    let mut raw = vec![0u8; 32];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut raw)?;
    let key = format!("vg-{}", base64url(&raw));
    secret::wipe(&mut raw);
    let digest = hash(&key);
    Ok((key, digest))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// RFC 4648 base32, uppercase, no padding.
fn base32(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    encode_bits(bytes, 5, ALPHABET)
}

/// RFC 4648 base64url, no padding.
fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    encode_bits(bytes, 6, ALPHABET)
}

/// Encodes `bits` bits per character, most significant first; the last group is padded
/// with zero bits.
fn encode_bits(bytes: &[u8], bits: u32, alphabet: &[u8]) -> String {
    let mut out = String::with_capacity((bytes.len() * 8).div_ceil(bits as usize));
    let (mut acc, mut n) = (0u32, 0u32);
    for &b in bytes {
        acc = (acc << 8) | u32::from(b);
        n += 8;
        while n >= bits {
            n -= bits;
            out.push(alphabet[((acc >> n) & ((1 << bits) - 1)) as usize] as char);
        }
        acc &= (1 << n) - 1;
    }
    if n > 0 {
        out.push(alphabet[((acc << (bits - n)) & ((1 << bits) - 1)) as usize] as char);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings_match_rfc4648() {
        // RFC 4648, section 10.
        assert_eq!(base32(b"foobar"), "MZXW6YTBOI");
        assert_eq!(base32(b"fooba"), "MZXW6YTB");
        assert_eq!(base64url(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64url(b"fo"), "Zm8");
        assert_eq!(base64url(&[0xfb, 0xff]), "-_8");
        assert_eq!(
            hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn hex_digest_round_trips() {
        let g = GatewayKey {
            sha256_hex: hash("k").to_uppercase(),
            tenant: None,
            name: None,
        };
        assert_eq!(hex(&g.digest().unwrap()), hash("k"));
        let bad = GatewayKey {
            sha256_hex: "zz".repeat(32),
            tenant: None,
            name: Some("ci".into()),
        };
        assert!(bad.check().unwrap_err().to_string().contains("ci"));
    }
}
