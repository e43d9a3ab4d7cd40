//! Where content lives: one rule over key names and positions, shared by every endpoint.
//!
//! The rule is checked in this order, first match wins:
//!
//! 1. Free-form data is content through and through: tool-call inputs given as JSON
//!    (`content[*].input` of a `tool_use` block, `arguments` sent as an object) and
//!    `metadata`. Keys like `id` or `type` inside them are the user's data, not structure.
//! 2. JSON Schemas (tool `parameters` / `input_schema`, `json_schema.schema`,
//!    `format.schema`): only `description` and `title` strings are content; keywords,
//!    property names, `enum` values and patterns are structure.
//! 3. `user`, `user_id` and `safety_identifier` are content (they often hold e-mails).
//! 4. Structural keys are not content: `model`, `role`, `type`, `id`, `*_id`, `object`,
//!    `finish_reason`, enums such as `tool_choice`, `media_type`, `detail`, `format`,
//!    `service_tier`, opaque signatures, and in responses everything under `usage`.
//! 5. Function names are not content (`function.name`, `tools[*].name`, `tool_use.name`,
//!    Responses `function_call` items' `name`): a changed name breaks tool calling.
//! 6. Everything else is content.

use super::{Direction, Endpoint, Provider};
use crate::engine::json::Seg;

/// Keys whose string values are identifiers, enums or opaque tokens, wherever they appear
/// (outside free-form data).
const STRUCTURAL: &[&str] = &[
    "model",
    "role",
    "type",
    "id",
    "object",
    "finish_reason",
    "stop_reason",
    "tool_choice",
    "media_type",
    "format",
    "encoding_format",
    "voice",
    "purpose",
    "service_tier",
    "effort",
    "reasoning_effort",
    "modalities",
    "include",
    "system_fingerprint",
    "created",
    "created_at",
    "embedding",
    "signature",
    "encrypted_content",
    "obfuscation",
    "training_file",
    "validation_file",
    "result_files",
    "fine_tuned_model",
];

/// Keys that are content although they look like ids.
const PERSONAL_IDS: &[&str] = &["user", "user_id", "safety_identifier"];

/// Keys under which everything is free-form data.
const FREE_FORM: &[&str] = &["metadata", "arguments"];

/// Schema keywords whose value is a schema (possibly indexed, as in `items: [..]`).
const SUBSCHEMA: &[&str] = &[
    "items",
    "additionalItems",
    "additionalProperties",
    "unevaluatedItems",
    "unevaluatedProperties",
    "contains",
    "propertyNames",
    "not",
    "if",
    "then",
    "else",
    "anyOf",
    "allOf",
    "oneOf",
    "prefixItems",
];

/// Schema keywords whose value maps names to schemas.
const SCHEMA_MAPS: &[&str] = &[
    "properties",
    "patternProperties",
    "$defs",
    "definitions",
    "dependentSchemas",
];

fn key(seg: Option<&Seg>) -> Option<&str> {
    match seg {
        Some(Seg::Key(k)) => Some(k),
        _ => None,
    }
}

fn has_key(path: &[Seg], names: &[&str]) -> bool {
    path.iter()
        .any(|s| key(Some(s)).is_some_and(|k| names.contains(&k)))
}

impl Provider {
    /// Whether the JSON string value at `path` (from the body's root; object keys and array
    /// indexes) is content to scan (`true`) or structure to leave alone (`false`).
    ///
    /// Unknown paths are content: nothing is skipped unless it is known to be structure.
    /// SSE event paths (`choices[0].delta.content`, `delta.text`, ...) follow the same rule.
    pub fn is_content(self, endpoint: Endpoint, dir: Direction, path: &[Seg]) -> bool {
        // Free-form data and schemas nest in each other (a schema property named `metadata`,
        // a tool input holding a `parameters` object): the outermost one decides.
        match (free_form_at(path), schema_root_at(path)) {
            (Some(f), s) if s.is_none_or(|s| f < s) => return true,
            (_, Some(s)) => return schema_value_is_content(&path[s + 1..]),
            _ => {}
        }
        // The key the value sits under: `stop[1]` sits under `stop`.
        let Some(at) = path.iter().rposition(|s| matches!(s, Seg::Key(_))) else {
            return true; // a bare string or an array of strings at the root
        };
        let owner = key(path.get(at)).unwrap_or_default();
        if PERSONAL_IDS.contains(&owner) {
            return true;
        }
        if STRUCTURAL.contains(&owner)
            || owner.ends_with("_id")
            || owner.ends_with("_ids")
            || has_key(&path[..at], &["tool_choice"])
            || (dir == Direction::Response && has_key(&path[..at], &["usage"]))
        {
            return false;
        }
        // Top-level `detail` is free text (`{"detail": "..."}` errors); nested it is the
        // image detail enum.
        if owner == "detail" && at > 0 {
            return false;
        }
        // Legacy `function_call: "auto"`.
        if owner == "function_call" && at == 0 {
            return false;
        }
        if owner == "name" && self.is_tool_name(endpoint, &path[..at]) {
            return false;
        }
        true
    }

    /// Whether a `name` key found at the end of `parent` names a function or tool.
    fn is_tool_name(self, endpoint: Endpoint, parent: &[Seg]) -> bool {
        let n = parent.len();
        let last = parent.last();
        let above = n.checked_sub(2).and_then(|i| key(parent.get(i)));
        // `tools[*].function.name`, `tool_calls[*].function.name`, `functions[*].name`,
        // legacy `function_call.name`, and flat tools (`tools[*].name`: Responses, Anthropic).
        if matches!(key(last), Some("function" | "function_call")) {
            return true;
        }
        let indexed = matches!(last, Some(Seg::Index(_)));
        if indexed && matches!(above, Some("tools" | "functions")) {
            return true;
        }
        let anthropic = self == Provider::Anthropic || endpoint == Endpoint::Messages;
        // Anthropic `tool_use` / `server_tool_use` blocks, in bodies and stream starts.
        if anthropic
            && ((indexed && above == Some("content")) || key(last) == Some("content_block"))
        {
            return true;
        }
        // Responses API `function_call` items, in bodies and stream events.
        endpoint == Endpoint::Responses
            && ((indexed && matches!(above, Some("input" | "output"))) || key(last) == Some("item"))
    }
}

/// Where free-form data (see the module docs) containing the value starts, if it does.
fn free_form_at(path: &[Seg]) -> Option<usize> {
    let inner = path.len().saturating_sub(1); // the value itself does not count
    (0..inner).find(|&i| match key(path.get(i)) {
        Some(k) if FREE_FORM.contains(&k) => true,
        // Anthropic tool_use `input` (`content[*].input`, `content_block.input`).
        Some("input") => match i.checked_sub(1).and_then(|j| path.get(j)) {
            Some(Seg::Index(_)) => {
                key(i.checked_sub(2).and_then(|j| path.get(j))) == Some("content")
            }
            before => key(before) == Some("content_block"),
        },
        _ => false,
    })
}

/// Where the root of a JSON Schema containing the value is, if there is one.
fn schema_root_at(path: &[Seg]) -> Option<usize> {
    let inner = path.len().saturating_sub(1);
    (0..inner).find(|&i| {
        let before = &path[..i];
        match key(path.get(i)) {
            Some("input_schema") => true,
            Some("parameters") => has_key(before, &["tools", "functions", "function"]),
            Some("schema") => matches!(
                before.iter().rev().find_map(|s| key(Some(s))),
                Some("json_schema" | "format" | "output_format")
            ),
            _ => false,
        }
    })
}

/// Walks a path below a schema's root, keyword by keyword: only `description` and `title`
/// values are content.
fn schema_value_is_content(mut rest: &[Seg]) -> bool {
    loop {
        let (kw, tail) = match rest {
            [] => return false,
            [Seg::Index(_), tail @ ..] => {
                rest = tail;
                continue;
            }
            [Seg::Key(kw), tail @ ..] => (kw.as_str(), tail),
        };
        rest = if SCHEMA_MAPS.contains(&kw) {
            tail.get(1..).unwrap_or_default() // skip the property name
        } else if SUBSCHEMA.contains(&kw) {
            tail
        } else {
            return matches!(kw, "description" | "title") && tail.is_empty();
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Direction::{Request, Response};
    use Endpoint::*;
    use Provider::{Anthropic, Generic, OpenAi};

    /// `a.0.b` -> [Key(a), Index(0), Key(b)]
    fn p(s: &str) -> Vec<Seg> {
        if s.is_empty() {
            return Vec::new();
        }
        s.split('.')
            .map(|t| match t.parse() {
                Ok(i) => Seg::Index(i),
                Err(_) => Seg::Key(t.to_string()),
            })
            .collect()
    }

    fn check(provider: Provider, endpoint: Endpoint, dir: Direction, yes: &[&str], no: &[&str]) {
        for path in yes {
            assert!(
                provider.is_content(endpoint, dir, &p(path)),
                "{provider:?} {endpoint:?} {dir:?}: {path} should be content"
            );
        }
        for path in no {
            assert!(
                !provider.is_content(endpoint, dir, &p(path)),
                "{provider:?} {endpoint:?} {dir:?}: {path} should be structure"
            );
        }
    }

    #[test]
    fn openai_chat_request() {
        check(
            OpenAi,
            ChatCompletions,
            Request,
            &[
                "messages.0.content",
                "messages.1.content.0.text",
                "messages.1.content.1.image_url.url",
                "messages.1.content.2.file.filename",
                "messages.1.content.2.file.file_data",
                "messages.2.tool_calls.0.function.arguments",
                "messages.0.name",
                "messages.2.refusal",
                "tools.0.function.description",
                "tools.0.function.parameters.description",
                "tools.0.function.parameters.properties.email.description",
                "tools.0.function.parameters.properties.to.items.description",
                "tools.0.function.parameters.properties.x.anyOf.0.description",
                "tools.0.function.parameters.$defs.addr.properties.street.title",
                "tools.0.function.parameters.properties.arguments.description",
                "user",
                "safety_identifier",
                "prompt_cache_key",
                "stop",
                "stop.0",
                "metadata.user_id",
                "metadata.order_id",
                "prediction.content",
                "web_search_options.user_location.approximate.city",
                "response_format.json_schema.description",
                "response_format.json_schema.schema.properties.a.description",
            ],
            &[
                "model",
                "messages.0.role",
                "messages.1.content.0.type",
                "messages.1.content.1.image_url.detail",
                "messages.1.content.2.file.file_id",
                "messages.1.content.3.input_audio.format",
                "messages.2.tool_calls.0.id",
                "messages.2.tool_calls.0.type",
                "messages.2.tool_calls.0.function.name",
                "messages.3.tool_call_id",
                "messages.2.audio.id",
                "tools.0.type",
                "tools.0.function.name",
                "tools.0.function.parameters.type",
                "tools.0.function.parameters.required.0",
                "tools.0.function.parameters.properties.email.type",
                "tools.0.function.parameters.properties.email.format",
                "tools.0.function.parameters.properties.unit.enum.1",
                "tools.0.function.parameters.properties.description.type",
                "tools.0.function.parameters.properties.x.anyOf.0.type",
                "tools.0.function.parameters.properties.metadata.type",
                "tools.0.function.parameters.properties.metadata.properties.a.enum.0",
                "functions.0.name",
                "function_call",
                "tool_choice",
                "tool_choice.type",
                "tool_choice.function.name",
                "response_format.type",
                "response_format.json_schema.schema.type",
                "response_format.json_schema.schema.properties.a.pattern",
                "reasoning_effort",
                "service_tier",
                "modalities.0",
                "audio.voice",
                "audio.format",
                "stream_options.x_id",
                "previous_response_id",
            ],
        );
    }

    #[test]
    fn openai_chat_response() {
        check(
            OpenAi,
            ChatCompletions,
            Response,
            &[
                "choices.0.message.content",
                "choices.0.message.refusal",
                "choices.0.message.tool_calls.0.function.arguments",
                "choices.0.logprobs.content.0.token",
                // stream chunks
                "choices.0.delta.content",
                "choices.0.delta.tool_calls.0.function.arguments",
            ],
            &[
                "id",
                "object",
                "created",
                "model",
                "system_fingerprint",
                "service_tier",
                "choices.0.finish_reason",
                "choices.0.message.role",
                "choices.0.message.tool_calls.0.id",
                "choices.0.message.tool_calls.0.type",
                "choices.0.message.tool_calls.0.function.name",
                "choices.0.delta.role",
                "choices.0.delta.tool_calls.0.function.name",
                "usage.completion_tokens_details.something",
                "obfuscation",
            ],
        );
    }

    #[test]
    fn openai_responses() {
        check(
            OpenAi,
            Responses,
            Request,
            &[
                "input",
                "instructions",
                "input.0.content",
                "input.0.content.0.text",
                "input.0.content.1.image_url",
                "input.1.output",
                "input.2.arguments",
                "input.3.summary.0.text",
                "tools.0.description",
                "tools.0.parameters.properties.q.description",
                "text.format.schema.properties.a.description",
                "prompt.variables.customer",
                "user",
            ],
            &[
                "model",
                "input.0.role",
                "input.0.type",
                "input.0.content.0.type",
                "input.0.content.1.detail",
                "input.0.content.2.file_id",
                "input.1.call_id",
                "input.2.name",
                "input.2.id",
                "input.3.encrypted_content",
                "tools.0.name",
                "tools.0.type",
                "tools.0.parameters.type",
                "tool_choice.name",
                "text.format.type",
                "text.format.schema.type",
                "reasoning.effort",
                "include.0",
                "previous_response_id",
                "prompt.id",
            ],
        );
        check(
            OpenAi,
            Responses,
            Response,
            &[
                "output.0.content.0.text",
                "output.0.content.0.annotations.0.url",
                "output.1.arguments",
                "output_text",
                "instructions",
                // stream events
                "delta",
                "text",
                "arguments",
                "item.arguments",
                "part.text",
                "response.output.0.content.0.text",
            ],
            &[
                "id",
                "object",
                "model",
                "output.0.id",
                "output.0.type",
                "output.0.role",
                "output.0.content.0.type",
                "output.1.name",
                "output.1.call_id",
                "usage.input_tokens_details.x",
                "item_id",
                "item.name",
                "item.id",
                "response.id",
                "response.usage.total",
            ],
        );
    }

    #[test]
    fn openai_completions_and_embeddings() {
        check(
            OpenAi,
            Completions,
            Request,
            &["prompt", "prompt.0", "prompt.3", "suffix", "user"],
            &["model"],
        );
        check(
            OpenAi,
            Completions,
            Response,
            &["choices.0.text", "choices.0.logprobs.tokens.0"],
            &["id", "model", "choices.0.finish_reason"],
        );
        check(
            OpenAi,
            Embeddings,
            Request,
            &["input", "input.0", "input.7", "user"],
            &["model", "encoding_format"],
        );
        check(
            OpenAi,
            Embeddings,
            Response,
            &[],
            &["object", "data.0.object", "data.0.embedding", "model"],
        );
        check(
            OpenAi,
            FineTuning,
            Request,
            &["suffix", "metadata.team"],
            &["training_file", "validation_file", "model"],
        );
        check(
            OpenAi,
            Files,
            Response,
            &["filename", "status", "status_details"],
            &["id", "purpose"],
        );
    }

    #[test]
    fn anthropic_messages_request() {
        check(
            Anthropic,
            Messages,
            Request,
            &[
                "system",
                "system.0.text",
                "messages.0.content",
                "messages.0.content.0.text",
                "messages.1.content.0.input.query",
                "messages.1.content.0.input.id",
                "messages.1.content.0.input.type",
                "messages.1.content.0.input.to.0.email",
                "messages.1.content.0.input.tools.0.parameters.type",
                "messages.2.content.0.content",
                "messages.2.content.0.content.0.text",
                "messages.0.content.1.source.data",
                "messages.0.content.1.source.url",
                "messages.0.content.2.title",
                "messages.0.content.2.context",
                "messages.3.content.0.thinking",
                "metadata.user_id",
                "stop_sequences.0",
                "tools.0.description",
                "tools.0.input_schema.properties.city.description",
                "mcp_servers.0.authorization_token",
            ],
            &[
                "model",
                "messages.0.role",
                "messages.0.content.0.type",
                "messages.0.content.0.cache_control.type",
                "messages.1.content.0.id",
                "messages.1.content.0.name",
                "messages.2.content.0.tool_use_id",
                "messages.0.content.1.source.type",
                "messages.0.content.1.source.media_type",
                "messages.3.content.0.signature",
                "tools.0.name",
                "tools.0.type",
                "tools.0.input_schema.type",
                "tools.0.input_schema.properties.city.type",
                "tools.0.input_schema.required.0",
                "tool_choice.type",
                "tool_choice.name",
                "thinking.type",
                "service_tier",
            ],
        );
    }

    #[test]
    fn anthropic_messages_response() {
        check(
            Anthropic,
            Messages,
            Response,
            &[
                "content.0.text",
                "content.1.input.city",
                "content.1.input.nested.0.deep",
                "content.0.citations.0.cited_text",
                "stop_sequence",
                // stream events
                "delta.text",
                "delta.partial_json",
                "delta.thinking",
                "content_block.text",
                "content_block.input.x",
                "error.message",
            ],
            &[
                "id",
                "type",
                "role",
                "model",
                "stop_reason",
                "content.0.type",
                "content.1.id",
                "content.1.name",
                "usage.service_tier",
                "delta.type",
                "delta.stop_reason",
                "delta.signature",
                "message.id",
                "message.model",
                "content_block.type",
                "content_block.id",
                "content_block.name",
                "error.type",
            ],
        );
    }

    #[test]
    fn generic_fallback() {
        for dir in [Request, Response] {
            check(
                Generic,
                Other,
                dir,
                &[
                    "",
                    "0",
                    "prompt",
                    "text",
                    "data.rows.3.name",
                    "name",
                    "patient.notes",
                    "customer.email",
                    "user",
                    "user_id",
                    "items.0.input.0.name",
                    "content.0.name",
                    "detail",
                    "parameters.name",
                    "schema.owner",
                ],
                &[
                    "model",
                    "role",
                    "type",
                    "id",
                    "session_id",
                    "object",
                    "finish_reason",
                    "messages.0.role",
                    "tools.0.function.name",
                    "tool_calls.0.function.name",
                    "tools.0.name",
                    "tool_choice",
                    "image.detail",
                ],
            );
        }
        // Usage counters only mean something in responses.
        assert!(Generic.is_content(Other, Request, &p("usage.note")));
        assert!(!Generic.is_content(Other, Response, &p("usage.note")));
        // Unknown endpoints of known providers fall back to the same rule.
        check(
            OpenAi,
            Other,
            Request,
            &["anything.deep.0.text", "file"],
            &["model", "voice"],
        );
    }
}
