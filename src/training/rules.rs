//! The rules themselves, without http plumbing: which paths are training endpoints, the
//! `purpose` of a multipart upload, and setting a flag in a JSON body while keeping every
//! other byte.

use serde_json::Value;

/// The API path of a request: from its `/v1` on (`/openai/v1/files` -> `/v1/files`;
/// Azure's `/openai/files` -> `/v1/files`; `/files`, sent to a base URL that ends in
/// `/v1`, -> `/v1/files`), without query and trailing slash.
pub(crate) fn api_path(path: &str) -> String {
    let path = path.split(['?', '#']).next().unwrap_or_default();
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let rest: &[&str] = if let Some(i) = segs.iter().position(|s| *s == "v1") {
        &segs[i + 1..]
    } else if let Some(i) = segs
        .iter()
        .position(|s| *s == "deployments")
        .filter(|i| i + 1 < segs.len())
    {
        &segs[i + 2..]
    } else if segs.first() == Some(&"openai") {
        &segs[1..]
    } else {
        // No `/v1` in the client's path: the upstream's base URL carries it
        // (`base_url = "https://api.openai.com/v1"`, clients call `/fine_tuning/jobs`).
        &segs[..]
    };
    format!("/v1/{}", rest.join("/"))
}

/// Paths that create fine-tuning jobs: refused whatever the configuration says.
pub(crate) const FINE_TUNING: [&str; 2] = ["/v1/fine_tuning/jobs", "/v1/fine-tunes"];

/// Default extra training endpoints: evals, feedback, dataset uploads.
pub(crate) const DEFAULT_REFUSED: [&str; 3] = ["/v1/evals", "/v1/feedback", "/v1/datasets"];

/// `path` is `prefix` or below it (segment-wise: `/v1/evals` covers `/v1/evals/x`,
/// not `/v1/evalsx`).
pub(crate) fn under(path: &str, prefix: &str) -> bool {
    let prefix = prefix.trim_end_matches('/');
    path == prefix || (path.starts_with(prefix) && path.as_bytes().get(prefix.len()) == Some(&b'/'))
}

/// What a scan of a (possibly partial) multipart body found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Field {
    Found(String),
    /// The body is complete (closing delimiter seen) and has no such field.
    Absent,
    /// More bytes are needed.
    Incomplete,
}

/// The boundary of a `multipart/form-data` content type.
pub(crate) fn boundary(content_type: &str) -> Option<String> {
    let mut parts = content_type.split(';');
    let essence = parts.next()?.trim();
    if !essence.eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    parts.find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| v.trim().trim_matches('"').to_string())
            .filter(|b| !b.is_empty() && b.len() <= 200)
    })
}

/// The value of the form field `name` in a multipart body (or its first bytes).
pub(crate) fn multipart_field(body: &[u8], boundary: &str, name: &str) -> Field {
    let delim = format!("--{boundary}");
    let d = delim.as_bytes();
    let find = |hay: &[u8], needle: &[u8], from: usize| {
        memchr::memmem::find(&hay[from.min(hay.len())..], needle).map(|i| i + from)
    };
    // The first delimiter (a preamble may precede it).
    let Some(mut at) = find(body, d, 0) else {
        return Field::Incomplete;
    };
    loop {
        let after = at + d.len();
        if body.len() < after + 2 {
            return Field::Incomplete;
        }
        if &body[after..after + 2] == b"--" {
            return Field::Absent;
        }
        // Part headers end at an empty line.
        let Some(h_end) = find(body, b"\r\n\r\n", after) else {
            return Field::Incomplete;
        };
        let headers = String::from_utf8_lossy(&body[after..h_end]);
        let content = h_end + 4;
        let mut end_delim = Vec::with_capacity(d.len() + 2);
        end_delim.extend_from_slice(b"\r\n");
        end_delim.extend_from_slice(d);
        let is_it = headers.lines().any(|l| {
            let Some((k, v)) = l.split_once(':') else {
                return false;
            };
            k.trim().eq_ignore_ascii_case("content-disposition")
                && v.split(';').any(|p| {
                    p.split_once('=').is_some_and(|(pk, pv)| {
                        pk.trim().eq_ignore_ascii_case("name")
                            && pv.trim().trim_matches('"') == name
                    })
                })
        });
        let Some(next) = find(body, &end_delim, content) else {
            return Field::Incomplete;
        };
        if is_it {
            return Field::Found(
                String::from_utf8_lossy(&body[content..next])
                    .trim()
                    .to_string(),
            );
        }
        at = next + 2;
    }
}

/// Why a flag could not be set.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct NotAnObject;

/// Sets `value` at `pointer` in the JSON document `body`, creating objects on the way;
/// bytes outside the edited value are kept. The body must be valid JSON (the caller
/// checked it once, e.g. with `serde_json::from_slice::<IgnoredAny>`: the walk below
/// trusts the structure) and an object.
pub(crate) fn set_pointer(
    body: &[u8],
    pointer: &str,
    value: &Value,
) -> Result<Vec<u8>, NotAnObject> {
    if body.get(skip_ws(body, 0)) != Some(&b'{') {
        return Err(NotAnObject);
    }
    let keys: Vec<&str> = pointer.split('/').skip(1).collect();
    if keys.is_empty() || keys.iter().any(|k| k.is_empty()) {
        return Err(NotAnObject);
    }
    let start = skip_ws(body, 0);
    let mut out = Vec::with_capacity(body.len() + 64);
    out.extend_from_slice(&body[..start]);
    let end = set_in_object(body, start, &keys, value, &mut out)?;
    out.extend_from_slice(&body[end..]);
    Ok(out)
}

/// Writes the value at `body[start..]`, an object, with `keys` set to `value` into
/// `out`, and returns where that value ends. One walk: every member value is skipped
/// once, or edited in place. A value that is not an object is replaced by one holding
/// just the flag.
fn set_in_object(
    body: &[u8],
    start: usize,
    keys: &[&str],
    value: &Value,
    out: &mut Vec<u8>,
) -> Result<usize, NotAnObject> {
    let (key, rest) = (keys[0], &keys[1..]);
    if body.get(start) != Some(&b'{') {
        out.extend_from_slice(nested(keys, value).as_bytes());
        return skip_value(body, start).ok_or(NotAnObject);
    }
    // Walk the members; every member named `key` gets the new value (a duplicate key
    // must not keep an old one).
    let mut i = skip_ws(body, start + 1);
    let mut copied = start;
    let mut found = false;
    let mut members = 0;
    while body.get(i).ok_or(NotAnObject)? != &b'}' {
        let k_start = i;
        let k_end = skip_value(body, k_start).ok_or(NotAnObject)?;
        let colon = skip_ws(body, k_end);
        let v_start = skip_ws(body, colon + 1);
        members += 1;
        let v_end = if key_is(&body[k_start..k_end], key)? {
            found = true;
            out.extend_from_slice(&body[copied..v_start]);
            let v_end = if rest.is_empty() {
                out.extend_from_slice(value.to_string().as_bytes());
                skip_value(body, v_start).ok_or(NotAnObject)?
            } else {
                set_in_object(body, v_start, rest, value, out)?
            };
            copied = v_end;
            v_end
        } else {
            skip_value(body, v_start).ok_or(NotAnObject)?
        };
        i = skip_ws(body, v_end);
        if body.get(i) == Some(&b',') {
            i = skip_ws(body, i + 1);
        }
    }
    let (close, end) = (i, i + 1);
    if found {
        out.extend_from_slice(&body[copied..end]);
        return Ok(end);
    }
    // Insert before the closing brace, after the last member.
    let mut before = close;
    while before > copied && body[before - 1].is_ascii_whitespace() {
        before -= 1;
    }
    out.extend_from_slice(&body[copied..before]);
    if members > 0 {
        out.push(b',');
    }
    out.extend_from_slice(Value::from(key).to_string().as_bytes());
    out.push(b':');
    if rest.is_empty() {
        out.extend_from_slice(value.to_string().as_bytes());
    } else {
        out.extend_from_slice(nested(rest, value).as_bytes());
    }
    out.extend_from_slice(&body[before..end]);
    Ok(end)
}

/// Whether the JSON string `raw` (quotes included) is `key`. Keys without escapes, the
/// usual case, are compared as bytes; others are decoded first.
fn key_is(raw: &[u8], key: &str) -> Result<bool, NotAnObject> {
    let inner = raw.get(1..raw.len().saturating_sub(1)).ok_or(NotAnObject)?;
    if memchr::memchr(b'\\', inner).is_none() {
        return Ok(inner == key.as_bytes());
    }
    let name: String = serde_json::from_slice(raw).map_err(|_| NotAnObject)?;
    Ok(name == key)
}

/// `{"a":{"b":value}}` for keys `a`, `b`.
fn nested(keys: &[&str], value: &Value) -> String {
    let mut v = value.clone();
    for k in keys.iter().rev() {
        let mut m = serde_json::Map::new();
        m.insert((*k).to_string(), v);
        v = Value::Object(m);
    }
    v.to_string()
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && b[i].is_ascii_whitespace() {
        i += 1;
    }
    i
}

/// The end of the JSON value starting at `i` (the document is known to be valid).
fn skip_value(b: &[u8], i: usize) -> Option<usize> {
    match *b.get(i)? {
        b'"' => {
            // Jump from one quote or backslash to the next: chat bodies are mostly text.
            let mut j = i + 1;
            loop {
                j += memchr::memchr2(b'"', b'\\', b.get(j..)?)?;
                if b[j] == b'"' {
                    return Some(j + 1);
                }
                j += 2;
            }
        }
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut j = i;
            while j < b.len() {
                match b[j] {
                    b'"' => {
                        j = skip_value(b, j)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(j + 1);
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
            None
        }
        _ => {
            let mut j = i;
            while j < b.len() && !matches!(b[j], b',' | b'}' | b']') && !b[j].is_ascii_whitespace()
            {
                j += 1;
            }
            Some(j)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(body: &str, p: &str, v: Value) -> String {
        String::from_utf8(set_pointer(body.as_bytes(), p, &v).unwrap()).unwrap()
    }

    #[test]
    fn flags_are_set_keeping_other_bytes() {
        assert_eq!(
            set(
                r#"{"model":"m", "store" : true ,"x":1}"#,
                "/store",
                false.into()
            ),
            r#"{"model":"m", "store" : false ,"x":1}"#
        );
        assert_eq!(
            set(r#"{"a":1}"#, "/store", false.into()),
            r#"{"a":1,"store":false}"#
        );
        assert_eq!(set("{ }", "/store", false.into()), r#"{"store":false }"#);
        assert_eq!(
            set("{\n  \"a\": \"}\"\n}\n", "/store", false.into()),
            "{\n  \"a\": \"}\",\"store\":false\n}\n"
        );
        assert_eq!(
            set(r#"{"store":true,"store":true}"#, "/store", false.into()),
            r#"{"store":false,"store":false}"#
        );
        assert_eq!(
            set(r#"{"m":1}"#, "/provider/data_collection", "deny".into()),
            r#"{"m":1,"provider":{"data_collection":"deny"}}"#
        );
        assert_eq!(
            set(
                r#"{"provider":{"order":["a"],"data_collection":"allow"}}"#,
                "/provider/data_collection",
                "deny".into()
            ),
            r#"{"provider":{"order":["a"],"data_collection":"deny"}}"#
        );
        assert_eq!(
            set(
                r#"{"provider":{"order":["a\"}"]}}"#,
                "/provider/data_collection",
                "deny".into()
            ),
            r#"{"provider":{"order":["a\"}"],"data_collection":"deny"}}"#
        );
        assert_eq!(
            set(
                r#"{"provider":"x"}"#,
                "/provider/data_collection",
                "deny".into()
            ),
            r#"{"provider":{"data_collection":"deny"}}"#
        );
        for bad in ["[1]", "\"s\"", "{", "nope", ""] {
            assert!(
                set_pointer(bad.as_bytes(), "/store", &false.into()).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn escaped_keys_are_matched_by_their_decoded_name() {
        // `st\u006fre` is `store`: an escaped duplicate must not keep `true`.
        assert_eq!(
            set(r#"{"st\u006fre":true,"x":"\"}"}"#, "/store", false.into()),
            r#"{"st\u006fre":false,"x":"\"}"}"#
        );
        assert_eq!(
            set(r#"{"stor\"e":true}"#, "/store", false.into()),
            r#"{"stor\"e":true,"store":false}"#
        );
        assert_eq!(
            set(
                "{ \"provider\" : { \"a\" : [ {} ] } , \"z\" : null }\n",
                "/provider/data_collection",
                "deny".into()
            ),
            "{ \"provider\" : { \"a\" : [ {} ],\"data_collection\":\"deny\" } , \"z\" : null }\n"
        );
    }

    #[test]
    fn rewritten_bodies_stay_valid_json() {
        let v: Value = serde_json::from_str(&set(
            r#"{"a":[{"b":"c"}],"provider":{"x":{"y":[1,2]}}}"#,
            "/provider/data_collection",
            "deny".into(),
        ))
        .unwrap();
        assert_eq!(v["provider"]["data_collection"], "deny");
        assert_eq!(v["provider"]["x"]["y"][1], 2);
    }

    #[test]
    fn api_paths_and_prefixes() {
        assert_eq!(api_path("/openai/v1/files?x=1"), "/v1/files");
        assert_eq!(api_path("/openai/fine_tuning/jobs"), "/v1/fine_tuning/jobs");
        assert_eq!(
            api_path("/openai/deployments/d/chat/completions"),
            "/v1/chat/completions"
        );
        assert_eq!(api_path("/v1/fine_tuning/jobs/"), "/v1/fine_tuning/jobs");
        assert_eq!(api_path("/other"), "/v1/other");
        assert_eq!(api_path("/fine_tuning/jobs"), "/v1/fine_tuning/jobs");
        assert_eq!(api_path("/files"), "/v1/files");
        assert!(under("/v1/evals/e1/runs", "/v1/evals"));
        assert!(under("/v1/evals", "/v1/evals/"));
        assert!(!under("/v1/evalsx", "/v1/evals"));
    }

    #[test]
    fn multipart_purpose_is_found_in_part_or_whole_bodies() {
        let body = "--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.jsonl\"\r\nContent-Type: application/jsonl\r\n\r\n{\"a\":1}\r\n--XyZ\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nfine-tune\r\n--XyZ--\r\n";
        let b = boundary("multipart/form-data; boundary=XyZ").unwrap();
        assert_eq!(
            multipart_field(body.as_bytes(), &b, "purpose"),
            Field::Found("fine-tune".into())
        );
        for cut in 0..body.len() - 12 {
            let f = multipart_field(&body.as_bytes()[..cut], &b, "purpose");
            assert!(
                f == Field::Incomplete || f == Field::Found("fine-tune".into()),
                "{cut}: {f:?}"
            );
        }
        let none = "--XyZ\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nx\r\n--XyZ--\r\n";
        assert_eq!(
            multipart_field(none.as_bytes(), &b, "purpose"),
            Field::Absent
        );
        assert_eq!(
            boundary("multipart/form-data; boundary=\"a b\"").as_deref(),
            Some("a b")
        );
        assert_eq!(boundary("application/json"), None);
    }
}
