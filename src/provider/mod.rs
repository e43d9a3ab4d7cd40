//! Provider knowledge: which API a request is for, where content lives in its JSON, and
//! what an error looks like to that provider's SDKs.
//!
//! - [`Provider::detect`] tells OpenAI-, Anthropic- and generic traffic apart from the path
//!   (and the `anthropic-version` header).
//! - [`Provider::is_content`] says whether a JSON string value is content to scan or
//!   structure to leave alone (model names, roles, ids, function names, schema keywords).
//!   The rule is written over key names and positions, not as a table per endpoint, and it
//!   fails towards scanning: a path it does not know is content.
//! - [`Provider::error_body`], [`Provider::error_event`] and [`error_response`] build errors
//!   in the provider's own shape, so SDKs raise their usual exception types.
//!
//! ```
//! use veilgate::engine::json::Seg;
//! use veilgate::provider::{Direction, Endpoint, Provider};
//!
//! let (provider, endpoint) = Provider::detect("/v1/chat/completions", &http::HeaderMap::new());
//! assert_eq!((provider, endpoint), (Provider::OpenAi, Endpoint::ChatCompletions));
//!
//! let path = [Seg::Key("messages".into()), Seg::Index(0), Seg::Key("content".into())];
//! assert!(provider.is_content(endpoint, Direction::Request, &path));
//! let path = [Seg::Key("model".into())];
//! assert!(!provider.is_content(endpoint, Direction::Request, &path));
//! ```

mod content;
mod error;

pub use error::{ErrorKind, error_response};

/// The API family a request speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Provider {
    /// OpenAI and OpenAI-compatible APIs (Azure OpenAI, most self-hosted servers).
    OpenAi,
    /// Anthropic Messages API.
    Anthropic,
    /// Anything else: every string value is content except well-known structural keys.
    Generic,
}

/// The endpoint within a provider's API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    ChatCompletions,
    Responses,
    Completions,
    Embeddings,
    Messages,
    FineTuning,
    Files,
    Other,
}

/// Which body a path belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Request,
    Response,
}

impl Direction {
    /// `request` or `response`.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Request => "request",
            Direction::Response => "response",
        }
    }
}

impl Provider {
    /// Detects the provider and endpoint from the request path and headers.
    ///
    /// `/v1/messages` (and `/v1/messages/...`) or an `anthropic-version` header mean
    /// Anthropic; other `/v1/...` paths, Azure's `/openai/deployments/{d}/...` and
    /// `/openai/...`, and a bare `.../chat/completions` mean OpenAI; anything else is
    /// generic. A prefix before `/v1` (`/openai/v1/...`, `/api/v1/...`), a query string and
    /// trailing or doubled slashes are tolerated.
    pub fn detect(path: &str, headers: &http::HeaderMap) -> (Provider, Endpoint) {
        let path = path.split(['?', '#']).next().unwrap_or_default();
        // API paths are short: their segments fit on the stack (no allocation per
        // request); a longer path is classified from a Vec.
        let mut stack = [""; 16];
        let mut n = 0;
        for s in path.split('/').filter(|s| !s.is_empty()) {
            if n == stack.len() {
                let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
                return Provider::classify(&segs, headers);
            }
            stack[n] = s;
            n += 1;
        }
        Provider::classify(&stack[..n], headers)
    }

    /// [`Provider::detect`] on the path's non-empty segments.
    fn classify(segs: &[&str], headers: &http::HeaderMap) -> (Provider, Endpoint) {
        let rest: Option<&[&str]> = if let Some(i) = segs.iter().position(|s| *s == "v1") {
            Some(&segs[i + 1..])
        } else if let Some(i) = segs
            .iter()
            .position(|s| *s == "deployments")
            .filter(|i| i + 1 < segs.len())
        {
            // Azure OpenAI: /openai/deployments/{deployment}/chat/completions
            Some(&segs[i + 2..])
        } else if segs.first() == Some(&"openai") {
            // Azure OpenAI without a deployment: /openai/responses?api-version=...
            Some(&segs[1..])
        } else if segs.ends_with(&["chat", "completions"]) {
            // OpenAI-compatible servers with a bare base URL (`/chat/completions`).
            Some(&segs[segs.len() - 2..])
        } else {
            None
        };
        let by_header = headers.contains_key("anthropic-version");
        let Some(rest) = rest else {
            let provider = if by_header {
                Provider::Anthropic
            } else {
                Provider::Generic
            };
            return (provider, Endpoint::Other);
        };
        let (endpoint, anthropic_path) = match rest {
            ["messages"] | ["messages", "count_tokens"] => (Endpoint::Messages, true),
            ["messages", ..] => (Endpoint::Other, true), // message batches
            ["complete"] => (Endpoint::Completions, true), // Anthropic's legacy text completions
            ["chat", "completions", ..] => (Endpoint::ChatCompletions, false),
            ["responses", ..] => (Endpoint::Responses, false),
            ["completions"] => (Endpoint::Completions, false),
            ["embeddings"] => (Endpoint::Embeddings, false),
            ["fine_tuning", ..] | ["fine-tunes", ..] => (Endpoint::FineTuning, false),
            ["files", ..] | ["uploads", ..] => (Endpoint::Files, false),
            _ => (Endpoint::Other, false),
        };
        let provider = if anthropic_path || by_header {
            Provider::Anthropic
        } else {
            Provider::OpenAi
        };
        (provider, endpoint)
    }

    /// A short lowercase name for logs and metrics: `openai`, `anthropic`, `generic`.
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::OpenAi => "openai",
            Provider::Anthropic => "anthropic",
            Provider::Generic => "generic",
        }
    }
}

impl Endpoint {
    /// A short lowercase name for logs and metrics, e.g. `chat_completions`.
    pub fn as_str(self) -> &'static str {
        match self {
            Endpoint::ChatCompletions => "chat_completions",
            Endpoint::Responses => "responses",
            Endpoint::Completions => "completions",
            Endpoint::Embeddings => "embeddings",
            Endpoint::Messages => "messages",
            Endpoint::FineTuning => "fine_tuning",
            Endpoint::Files => "files",
            Endpoint::Other => "other",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn detect(path: &str) -> (Provider, Endpoint) {
        Provider::detect(path, &http::HeaderMap::new())
    }

    #[test]
    fn detects_anthropic() {
        use Endpoint::*;
        use Provider::Anthropic;
        assert_eq!(detect("/v1/messages"), (Anthropic, Messages));
        assert_eq!(detect("/v1/messages/"), (Anthropic, Messages));
        assert_eq!(detect("/v1/messages/count_tokens"), (Anthropic, Messages));
        assert_eq!(
            detect("/anthropic/v1/messages?beta=true"),
            (Anthropic, Messages)
        );
        assert_eq!(detect("/v1/messages/batches"), (Anthropic, Other));
        assert_eq!(detect("/v1/complete"), (Anthropic, Completions));
        let mut h = http::HeaderMap::new();
        h.insert("anthropic-version", "2023-06-01".parse().unwrap());
        assert_eq!(Provider::detect("/v1/models", &h), (Anthropic, Other));
        assert_eq!(Provider::detect("/v1/files", &h), (Anthropic, Files));
        assert_eq!(Provider::detect("/custom/route", &h), (Anthropic, Other));
        // The header wins over the path.
        assert_eq!(
            Provider::detect("/v1/chat/completions", &h),
            (Anthropic, ChatCompletions)
        );
    }

    #[test]
    fn detects_openai() {
        use Endpoint::*;
        use Provider::OpenAi;
        for (path, endpoint) in [
            ("/v1/chat/completions", ChatCompletions),
            ("/v1/chat/completions/", ChatCompletions),
            ("//v1//chat/completions", ChatCompletions),
            ("/v1/chat/completions?x=1", ChatCompletions),
            (
                "/v1/chat/completions/chatcmpl-123/messages",
                ChatCompletions,
            ),
            ("/openai/v1/chat/completions", ChatCompletions),
            ("/api/v1/chat/completions", ChatCompletions),
            (
                "/openai/deployments/gpt4o-prod/chat/completions",
                ChatCompletions,
            ),
            (
                "/openai/deployments/gpt4o-prod/chat/completions?api-version=2024-10-21",
                ChatCompletions,
            ),
            ("/openai/deployments/emb/embeddings", Embeddings),
            ("/openai/responses", Responses),
            ("/chat/completions", ChatCompletions),
            ("/v1/responses", Responses),
            ("/v1/responses/resp_123", Responses),
            ("/v1/responses/resp_123/input_items", Responses),
            ("/v1/completions", Completions),
            ("/v1/embeddings", Embeddings),
            ("/v1/fine_tuning/jobs", FineTuning),
            ("/v1/fine_tuning/jobs/ftjob-1/events", FineTuning),
            ("/v1/files", Files),
            ("/v1/files/file-123/content", Files),
            ("/v1/uploads", Files),
            ("/v1/models", Other),
            ("/v1/audio/transcriptions", Other),
            ("/v1", Other),
        ] {
            assert_eq!(detect(path), (OpenAi, endpoint), "{path}");
        }
    }

    #[test]
    fn detects_generic() {
        for path in [
            "/",
            "",
            "/api/chat",
            "/api/generate",
            "/v1beta/models/gemini-pro:generateContent",
            "/messages",
            "/v2/chat",
        ] {
            assert_eq!(detect(path), (Provider::Generic, Endpoint::Other), "{path}");
        }
    }

    #[test]
    fn names() {
        assert_eq!(Provider::OpenAi.as_str(), "openai");
        assert_eq!(Endpoint::ChatCompletions.as_str(), "chat_completions");
    }
}
