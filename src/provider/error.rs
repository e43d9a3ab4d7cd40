//! Errors in the provider's own shape, so SDKs raise their usual exception types.
//!
//! OpenAI and generic: `{"error":{"message":..,"type":..,"param":null,"code":..}}`.
//! Anthropic: `{"type":"error","error":{"type":..,"message":..,"code":..}}`.
//! The `code` is always veilgate's own code (e.g. `veilgate_invalid_json`), so a client can
//! tell a gateway refusal from an upstream error. Messages are written by veilgate and must
//! never quote the body.

use bytes::Bytes;
use serde_json::Value;

use super::Provider;

/// What went wrong, independent of the provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// 400: the body cannot be decoded or parsed, or policy blocks it.
    InvalidRequest,
    /// 401: missing or unknown API key.
    Auth,
    /// 403: the key or tenant may not do this (e.g. a training endpoint after opt-out).
    Permission,
    /// 413: the body (or its decoded form) is over the size limit.
    TooLarge,
    /// 415: an unsupported `Content-Encoding` or content type.
    UnsupportedMediaType,
    /// 502: the upstream answered with something veilgate cannot process.
    Upstream,
    /// 504: the upstream did not answer in time.
    Timeout,
    /// 503: veilgate cannot serve the request now (overload, dependency down).
    Unavailable,
    /// 500: a bug or an unexpected failure inside veilgate.
    Internal,
}

impl ErrorKind {
    /// The HTTP status for this kind.
    pub fn status(self) -> http::StatusCode {
        use http::StatusCode as S;
        match self {
            ErrorKind::InvalidRequest => S::BAD_REQUEST,
            ErrorKind::Auth => S::UNAUTHORIZED,
            ErrorKind::Permission => S::FORBIDDEN,
            ErrorKind::TooLarge => S::PAYLOAD_TOO_LARGE,
            ErrorKind::UnsupportedMediaType => S::UNSUPPORTED_MEDIA_TYPE,
            ErrorKind::Upstream => S::BAD_GATEWAY,
            ErrorKind::Timeout => S::GATEWAY_TIMEOUT,
            ErrorKind::Unavailable => S::SERVICE_UNAVAILABLE,
            ErrorKind::Internal => S::INTERNAL_SERVER_ERROR,
        }
    }
}

impl Provider {
    /// The provider's name for an error kind (the `type` field of its error object).
    pub fn error_type(self, kind: ErrorKind) -> &'static str {
        use ErrorKind as K;
        match (self, kind) {
            (Provider::Anthropic, K::InvalidRequest | K::UnsupportedMediaType) => {
                "invalid_request_error"
            }
            (Provider::Anthropic, K::Auth) => "authentication_error",
            (Provider::Anthropic, K::Permission) => "permission_error",
            (Provider::Anthropic, K::TooLarge) => "request_too_large",
            (Provider::Anthropic, K::Upstream | K::Internal) => "api_error",
            (Provider::Anthropic, K::Timeout) => "timeout_error",
            (Provider::Anthropic, K::Unavailable) => "overloaded_error",
            // OpenAI reports bad keys (401) as invalid requests, with a code.
            (_, K::InvalidRequest | K::Auth | K::TooLarge | K::UnsupportedMediaType) => {
                "invalid_request_error"
            }
            (_, K::Permission) => "permission_error",
            (_, K::Upstream | K::Timeout) => "api_error",
            (_, K::Unavailable | K::Internal) => "server_error",
        }
    }

    /// The error object as compact JSON (no newline), fields in the provider's order.
    fn error_json(self, kind: ErrorKind, message: &str, code: &str) -> String {
        let kind = self.error_type(kind);
        let message = Value::from(message);
        let code = Value::from(code);
        match self {
            Provider::Anthropic => format!(
                r#"{{"type":"error","error":{{"type":"{kind}","message":{message},"code":{code}}}}}"#
            ),
            Provider::OpenAi | Provider::Generic => format!(
                r#"{{"error":{{"message":{message},"type":"{kind}","param":null,"code":{code}}}}}"#
            ),
        }
    }

    /// A provider-shaped JSON error body. `message` must not contain body content.
    pub fn error_body(self, kind: ErrorKind, message: &str, code: &str) -> Bytes {
        Bytes::from(self.error_json(kind, message, code))
    }

    /// A provider-shaped SSE error event, for streams that fail after their headers were
    /// sent: `data: {"error":{..}}` for OpenAI and generic, `event: error` +
    /// `data: {"type":"error",..}` for Anthropic. Ends with a blank line.
    pub fn error_event(self, kind: ErrorKind, message: &str, code: &str) -> Bytes {
        // Serialized JSON never contains a raw newline, so one `data:` line is enough.
        let data = self.error_json(kind, message, code);
        let event = match self {
            Provider::Anthropic => format!("event: error\ndata: {data}\n\n"),
            Provider::OpenAi | Provider::Generic => format!("data: {data}\n\n"),
        };
        Bytes::from(event)
    }
}

/// A complete provider-shaped error response: status from `kind`,
/// `content-type: application/json`, body from [`Provider::error_body`].
pub fn error_response<B: From<Bytes>>(
    provider: Provider,
    kind: ErrorKind,
    message: &str,
    code: &str,
) -> http::Response<B> {
    let mut res = http::Response::new(B::from(provider.error_body(kind, message, code)));
    *res.status_mut() = kind.status();
    res.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    const KINDS: [ErrorKind; 9] = [
        ErrorKind::InvalidRequest,
        ErrorKind::Auth,
        ErrorKind::Permission,
        ErrorKind::TooLarge,
        ErrorKind::UnsupportedMediaType,
        ErrorKind::Upstream,
        ErrorKind::Timeout,
        ErrorKind::Unavailable,
        ErrorKind::Internal,
    ];

    fn parse(b: &[u8]) -> Value {
        serde_json::from_slice(b).expect("error bodies are JSON")
    }

    #[test]
    fn statuses() {
        let codes: Vec<u16> = KINDS.iter().map(|k| k.status().as_u16()).collect();
        assert_eq!(codes, [400, 401, 403, 413, 415, 502, 504, 503, 500]);
    }

    #[test]
    fn openai_shape() {
        for provider in [Provider::OpenAi, Provider::Generic] {
            let v = parse(&provider.error_body(
                ErrorKind::InvalidRequest,
                "the request body is not valid JSON",
                "veilgate_invalid_json",
            ));
            let e = &v["error"];
            assert_eq!(e["message"], "the request body is not valid JSON");
            assert_eq!(e["type"], "invalid_request_error");
            assert_eq!(e["param"], Value::Null);
            assert_eq!(e["code"], "veilgate_invalid_json");
            assert_eq!(v.as_object().unwrap().len(), 1);
            assert_eq!(e.as_object().unwrap().len(), 4);
        }
        assert_eq!(
            Provider::OpenAi.error_body(
                ErrorKind::Timeout,
                "upstream timed out",
                "veilgate_timeout"
            ),
            r#"{"error":{"message":"upstream timed out","type":"api_error","param":null,"code":"veilgate_timeout"}}"#
        );
        assert_eq!(
            Provider::Anthropic.error_body(ErrorKind::Auth, "missing API key", "veilgate_auth"),
            r#"{"type":"error","error":{"type":"authentication_error","message":"missing API key","code":"veilgate_auth"}}"#
        );
        let types: Vec<&str> = KINDS
            .iter()
            .map(|&k| Provider::OpenAi.error_type(k))
            .collect();
        assert_eq!(
            types,
            [
                "invalid_request_error",
                "invalid_request_error",
                "permission_error",
                "invalid_request_error",
                "invalid_request_error",
                "api_error",
                "api_error",
                "server_error",
                "server_error",
            ]
        );
    }

    #[test]
    fn anthropic_shape() {
        let v = parse(&Provider::Anthropic.error_body(
            ErrorKind::TooLarge,
            "the request body is over the 10 MiB limit",
            "veilgate_too_large",
        ));
        assert_eq!(v["type"], "error");
        assert_eq!(v["error"]["type"], "request_too_large");
        assert_eq!(
            v["error"]["message"],
            "the request body is over the 10 MiB limit"
        );
        assert_eq!(v["error"]["code"], "veilgate_too_large");
        let types: Vec<&str> = KINDS
            .iter()
            .map(|&k| Provider::Anthropic.error_type(k))
            .collect();
        assert_eq!(
            types,
            [
                "invalid_request_error",
                "authentication_error",
                "permission_error",
                "request_too_large",
                "invalid_request_error",
                "api_error",
                "timeout_error",
                "overloaded_error",
                "api_error",
            ]
        );
    }

    #[test]
    fn messages_are_escaped() {
        let v = parse(&Provider::OpenAi.error_body(
            ErrorKind::Internal,
            "quote \" and\nnewline",
            "veilgate_x",
        ));
        assert_eq!(v["error"]["message"], "quote \" and\nnewline");
    }

    #[test]
    fn responses() {
        let res: http::Response<Bytes> = error_response(
            Provider::Anthropic,
            ErrorKind::UnsupportedMediaType,
            "unsupported content-encoding: compress",
            "veilgate_unsupported_encoding",
        );
        assert_eq!(res.status(), 415);
        assert_eq!(res.headers()["content-type"], "application/json");
        let v = parse(res.body());
        assert_eq!(v["type"], "error");
        assert_eq!(v["error"]["type"], "invalid_request_error");
        assert_eq!(v["error"]["code"], "veilgate_unsupported_encoding");

        let res: http::Response<Vec<u8>> = error_response(
            Provider::OpenAi,
            ErrorKind::Auth,
            "unknown API key",
            "veilgate_invalid_api_key",
        );
        assert_eq!(res.status(), 401);
        let v = parse(res.body());
        assert_eq!(v["error"]["type"], "invalid_request_error");
        assert_eq!(v["error"]["code"], "veilgate_invalid_api_key");
    }

    #[test]
    fn sse_events() {
        let ev = Provider::OpenAi.error_event(
            ErrorKind::Upstream,
            "the upstream stream broke\noff",
            "veilgate_upstream",
        );
        let s = std::str::from_utf8(&ev).unwrap();
        let data = s
            .strip_prefix("data: ")
            .and_then(|s| s.strip_suffix("\n\n"))
            .unwrap();
        assert!(!data.contains('\n'));
        let v = parse(data.as_bytes());
        assert_eq!(v["error"]["type"], "api_error");
        assert_eq!(v["error"]["message"], "the upstream stream broke\noff");
        assert_eq!(v["error"]["code"], "veilgate_upstream");

        let ev = Provider::Anthropic.error_event(
            ErrorKind::Unavailable,
            "overloaded",
            "veilgate_overloaded",
        );
        let s = std::str::from_utf8(&ev).unwrap();
        let data = s
            .strip_prefix("event: error\ndata: ")
            .and_then(|s| s.strip_suffix("\n\n"))
            .unwrap();
        assert!(!data.contains('\n'));
        let v = parse(data.as_bytes());
        assert_eq!(v["type"], "error");
        assert_eq!(v["error"]["type"], "overloaded_error");
        assert_eq!(v["error"]["message"], "overloaded");
        assert_eq!(v["error"]["code"], "veilgate_overloaded");
    }
}
