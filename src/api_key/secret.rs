//! Secret holders: the pepper behind key ids and the provider key injected upstream.
//!
//! Both keep their bytes in a [`Secret`], whose `Debug` prints `<redacted>` and whose
//! buffer (its whole capacity, not only its length) is overwritten with zeros on drop.
//!
//! # Limits of the zeroizing
//!
//! It is written without `unsafe` (the crate forbids it): the buffer is overwritten with
//! ordinary writes and then passed to [`core::hint::black_box`], which makes the compiler
//! treat the zeros as observed. That is a best effort, not a guarantee like
//! `write_volatile`. It also only covers the buffer veilgate owns: the process
//! environment still holds a variable's value, the OS and `std` may have made copies
//! while reading a file, and a key copied into an HTTP header (`HeaderValue`, backed by
//! `Bytes`) lives on in the request and in the HTTP client until they are dropped.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::fmt;
use std::path::{Path, PathBuf};

/// Bytes that are never printed and are zeroed on drop.
#[derive(Clone, Default)]
pub(crate) struct Secret(Vec<u8>);

impl Secret {
    pub(crate) fn new(bytes: Vec<u8>) -> Secret {
        Secret(bytes)
    }

    pub(crate) fn expose(&self) -> &[u8] {
        &self.0
    }

    /// Appends to the secret (for building a header value in a buffer that is zeroed).
    pub(crate) fn extend(&mut self, bytes: &[u8]) {
        // Reserve first, so that no reallocation leaves an unzeroed copy behind.
        if self.0.capacity() - self.0.len() < bytes.len() {
            let mut bigger = Vec::with_capacity(self.0.len() + bytes.len());
            bigger.extend_from_slice(&self.0);
            std::mem::swap(&mut self.0, &mut bigger);
            drop(Secret(bigger));
        }
        self.0.extend_from_slice(bytes);
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        wipe(&mut self.0);
    }
}

/// Overwrites the whole allocation of `v` (spare capacity included) with zeros.
pub(crate) fn wipe(v: &mut Vec<u8>) {
    let cap = v.capacity();
    v.clear();
    // Within capacity: writes zeros in place, never reallocates.
    v.resize(cap, 0);
    core::hint::black_box(v.as_mut_slice());
    v.clear();
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Why a secret could not be loaded. Names the variable or file, never the value.
#[derive(Debug)]
#[non_exhaustive]
pub enum SecretError {
    /// The environment variable is unset or not valid UTF-8.
    Env(String),
    /// The file could not be read.
    File(PathBuf, std::io::Error),
    /// The secret is empty (after trimming surrounding whitespace).
    Empty,
    /// A provider key must be visible ASCII to go into an HTTP header.
    NotHeaderSafe,
    /// A gateway key's `sha256_hex` is not 64 hex digits (the key's name is given).
    BadHash(String),
}

impl fmt::Display for SecretError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretError::Env(var) => write!(f, "environment variable {var} is unset or not UTF-8"),
            SecretError::File(path, e) => write!(f, "cannot read {}: {e}", path.display()),
            SecretError::Empty => f.write_str("the secret is empty"),
            SecretError::NotHeaderSafe => {
                f.write_str("the provider key contains characters not allowed in a header")
            }
            SecretError::BadHash(name) => {
                write!(f, "gateway key {name:?}: sha256_hex must be 64 hex digits")
            }
        }
    }
}

impl std::error::Error for SecretError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SecretError::File(_, e) => Some(e),
            _ => None,
        }
    }
}

/// Reads a variable into a [`Secret`], trimmed.
fn from_env(var: &str) -> Result<Secret, SecretError> {
    let value = std::env::var(var).map_err(|_| SecretError::Env(var.to_owned()))?;
    trimmed(value.into_bytes())
}

/// Reads a file into a [`Secret`], trimmed (a trailing newline is common in secret files).
fn from_file(path: &Path) -> Result<Secret, SecretError> {
    let bytes = std::fs::read(path).map_err(|e| SecretError::File(path.to_owned(), e))?;
    trimmed(bytes)
}

/// Trims ASCII whitespace in place (no reallocation, so no stray copy) and refuses empty.
fn trimmed(bytes: Vec<u8>) -> Result<Secret, SecretError> {
    let mut secret = Secret::new(bytes);
    let v = &mut secret.0;
    let end = v
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(0, |i| i + 1);
    v.truncate(end);
    let start = v.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(0);
    v.drain(..start);
    if v.is_empty() {
        return Err(SecretError::Empty);
    }
    Ok(secret)
}

/// The key behind key ids (HMAC-SHA256). Keep it out of the config file and the same
/// across replicas, or key ids will differ between them. 32 random bytes are plenty.
#[derive(Clone)]
pub struct Pepper {
    /// HMAC keyed once with the pepper: each key id then costs two SHA-256 blocks, not
    /// four (the keyed inner and outer states are computed here, not per request).
    pub(crate) keyed: Hmac<Sha256>,
}

impl fmt::Debug for Pepper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pepper(<redacted>)")
    }
}

impl Pepper {
    /// A pepper from bytes (not trimmed).
    ///
    /// # Panics
    /// If `bytes` is empty: an empty pepper would make key ids a plain hash.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Pepper {
        let bytes = bytes.into();
        assert!(!bytes.is_empty(), "the pepper must not be empty");
        Pepper::keyed(Secret::new(bytes))
    }

    /// The value of an environment variable, surrounding whitespace trimmed.
    pub fn from_env(var: &str) -> Result<Pepper, SecretError> {
        from_env(var).map(Pepper::keyed)
    }

    /// The content of a file, surrounding whitespace trimmed.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Pepper, SecretError> {
        from_file(path.as_ref()).map(Pepper::keyed)
    }

    /// The secret itself is dropped (and wiped) here; only the keyed state stays.
    fn keyed(secret: Secret) -> Pepper {
        Pepper {
            keyed: Hmac::new_from_slice(secret.expose()).expect("HMAC accepts keys of any length"),
        }
    }
}

/// The upstream's real API key, injected in gateway-key mode.
#[derive(Clone, Debug)]
pub struct ProviderKey(pub(crate) Secret);

impl ProviderKey {
    /// A provider key from a string (trimmed; must be visible ASCII).
    pub fn new(key: impl Into<String>) -> Result<ProviderKey, SecretError> {
        Self::checked(trimmed(key.into().into_bytes())?)
    }

    /// The value of an environment variable, surrounding whitespace trimmed.
    pub fn from_env(var: &str) -> Result<ProviderKey, SecretError> {
        Self::checked(from_env(var)?)
    }

    /// The content of a file, surrounding whitespace trimmed.
    pub fn from_file(path: impl AsRef<Path>) -> Result<ProviderKey, SecretError> {
        Self::checked(from_file(path.as_ref())?)
    }

    fn checked(secret: Secret) -> Result<ProviderKey, SecretError> {
        if secret.expose().iter().all(|b| b.is_ascii_graphic()) {
            Ok(ProviderKey(secret))
        } else {
            Err(SecretError::NotHeaderSafe)
        }
    }

    /// The key as a sensitive header value, with `prefix` (e.g. `"Bearer "`) before it.
    pub(crate) fn header_value(&self, prefix: &str) -> http::HeaderValue {
        let mut buf = Secret::new(Vec::with_capacity(prefix.len() + self.0.expose().len()));
        buf.extend(prefix.as_bytes());
        buf.extend(self.0.expose());
        let mut value = http::HeaderValue::from_bytes(buf.expose())
            .expect("checked at construction: visible ASCII");
        value.set_sensitive(true);
        value
    }
}
