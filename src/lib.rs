//! veilgate: privacy middleware for AI-provider API gateways.
//!
//! The crate is organised by layer (see `DESIGN.md` in the project's shared folder):
//!
//! - [`engine`]: no HTTP types at all. Filters loaded from data, one compiled multi-pattern
//!   detector, validators, actions (redact, mask, hash, pseudonymize, block), a JSON string
//!   scanner that preserves every byte it does not change, and an SSE framer.
//!
//! ```
//! use std::sync::Arc;
//! use veilgate::engine::{Action, Engine, Format, Redactor};
//!
//! let engine = Arc::new(Engine::builtin().expect("built-in filters compile"));
//! let redactor = Redactor::new(engine).with_action(Action::Redact);
//! let body = br#"{"messages":[{"role":"user","content":"mail me: jane.doe@acme.io"}]}"#;
//! let out = veilgate::engine::redact_bytes(&redactor, body, Format::Json).unwrap();
//! assert_eq!(
//!     String::from_utf8(out).unwrap(),
//!     r#"{"messages":[{"role":"user","content":"mail me: [EMAIL]"}]}"#
//! );
//! ```
#![forbid(unsafe_code)]
#![warn(missing_debug_implementations, rust_2018_idioms)]

#[cfg(feature = "redact")]
pub mod api_key;
pub mod engine;
pub mod policy;
#[cfg(feature = "redact")]
pub mod provider;
#[cfg(feature = "redact")]
pub mod redact;
#[cfg(feature = "redact")]
pub mod retention;
#[cfg(feature = "sidecar")]
pub mod sidecar;
#[cfg(feature = "redact")]
pub mod telemetry;
#[cfg(feature = "redact")]
pub mod training;
