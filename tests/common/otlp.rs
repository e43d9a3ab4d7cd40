//! An in-process OTLP/HTTP receiver for tests: a hyper server on `127.0.0.1:0` taking
//! `POST /v1/traces`, `/v1/logs` and `/v1/metrics` as `application/x-protobuf`, answering
//! 200 with an empty protobuf message, decoding every request with `opentelemetry-proto`
//! into flat [`Record`]s, and keeping the raw request bytes for leak checks.
//!
//! ```ignore
//! let otlp = OtlpReceiver::start().await;
//! // run the exporter with OTEL_EXPORTER_OTLP_ENDPOINT=otlp.endpoint(), then:
//! otlp.wait_for(Duration::from_secs(60), |r| r.iter().any(|r| r.kind == Kind::Span)).await;
//! assert!(otlp.records().iter().all(|r| r.attr("retention.class").is_some()));
//! ```

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use prost::Message;

/// What a record is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Span,
    /// An event attached to a span.
    SpanEvent,
    Log,
    /// One data point of a metric.
    Metric,
}

/// One span, span event, log record or metric data point, flattened.
#[derive(Debug, Clone)]
pub struct Record {
    pub kind: Kind,
    /// Span or span event name, log event name, metric name.
    pub name: String,
    /// Log body (empty for the others).
    pub body: String,
    /// Attributes, every value as text (ints and doubles formatted, arrays as JSON-ish).
    pub attributes: BTreeMap<String, String>,
    /// Resource attributes of the batch it came in.
    pub resource: BTreeMap<String, String>,
    /// Instrumentation scope name.
    pub scope: String,
}

impl Record {
    pub fn attr(&self, key: &str) -> Option<&str> {
        self.attributes.get(key).map(String::as_str)
    }
}

/// One export request as received.
#[derive(Debug, Clone)]
pub struct Payload {
    /// `/v1/traces`, `/v1/logs` or `/v1/metrics`.
    pub path: String,
    pub content_type: String,
    /// Whether it came gzip-compressed.
    pub gzip: bool,
    /// The protobuf bytes (decompressed).
    pub body: Bytes,
}

#[derive(Debug, Default)]
struct Received {
    payloads: Vec<Payload>,
    records: Vec<Record>,
    /// Requests refused (wrong path, method or content type, undecodable body).
    errors: Vec<String>,
}

/// The running receiver. Dropping it stops accepting connections.
pub struct OtlpReceiver {
    addr: SocketAddr,
    received: Arc<Mutex<Received>>,
    accept: tokio::task::JoinHandle<()>,
}

impl OtlpReceiver {
    pub async fn start() -> OtlpReceiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the OTLP receiver");
        let addr = listener.local_addr().unwrap();
        let received = Arc::new(Mutex::new(Received::default()));
        let rec = received.clone();
        let accept = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let rec = rec.clone();
                let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                    let rec = rec.clone();
                    async move { Ok::<_, Infallible>(serve(req, &rec).await) }
                });
                tokio::spawn(async move {
                    let _ = auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        OtlpReceiver {
            addr,
            received,
            accept,
        }
    }

    /// `http://127.0.0.1:PORT`, for `OTEL_EXPORTER_OTLP_ENDPOINT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn records(&self) -> Vec<Record> {
        self.received.lock().unwrap().records.clone()
    }

    pub fn payloads(&self) -> Vec<Payload> {
        self.received.lock().unwrap().payloads.clone()
    }

    /// Requests the receiver refused, with why.
    pub fn errors(&self) -> Vec<String> {
        self.received.lock().unwrap().errors.clone()
    }

    /// Polls until `done` holds for the records so far, or `cap` passes; returns whether
    /// it held.
    pub async fn wait_for(&self, cap: Duration, done: impl Fn(&[Record]) -> bool) -> bool {
        let start = Instant::now();
        loop {
            if done(&self.received.lock().unwrap().records) {
                return true;
            }
            if start.elapsed() > cap {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for OtlpReceiver {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

async fn serve(req: Request<Incoming>, received: &Mutex<Received>) -> Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_string();
    let content_type = parts
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let body = body
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    let gzip = parts
        .headers
        .get(http::header::CONTENT_ENCODING)
        .is_some_and(|v| v.as_bytes() == b"gzip");
    let refuse = |status: StatusCode, why: String| {
        received.lock().unwrap().errors.push(why);
        Response::builder()
            .status(status)
            .body(Full::new(Bytes::new()))
            .unwrap()
    };
    if parts.method != http::Method::POST {
        return refuse(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("{} {path}", parts.method),
        );
    }
    if content_type != "application/x-protobuf" {
        return refuse(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("{path}: content-type {content_type:?}"),
        );
    }
    // `OTEL_EXPORTER_OTLP_COMPRESSION=gzip`: decompressed first (leak checks need the
    // plain bytes).
    let body = if gzip {
        use std::io::Read as _;
        let mut out = Vec::new();
        if let Err(e) = flate2::read::GzDecoder::new(&body[..]).read_to_end(&mut out) {
            return refuse(StatusCode::BAD_REQUEST, format!("{path}: gzip: {e}"));
        }
        Bytes::from(out)
    } else {
        body
    };
    let records = match path.as_str() {
        "/v1/traces" => ExportTraceServiceRequest::decode(body.clone()).map(traces),
        "/v1/logs" => ExportLogsServiceRequest::decode(body.clone()).map(logs),
        "/v1/metrics" => ExportMetricsServiceRequest::decode(body.clone()).map(metrics),
        _ => return refuse(StatusCode::NOT_FOUND, format!("POST {path}")),
    };
    let records = match records {
        Ok(r) => r,
        Err(e) => return refuse(StatusCode::BAD_REQUEST, format!("{path}: {e}")),
    };
    {
        let mut r = received.lock().unwrap();
        r.payloads.push(Payload {
            path,
            content_type,
            gzip,
            body,
        });
        r.records.extend(records);
    }
    // Export*ServiceResponse with no partial_success field: zero bytes of protobuf.
    Response::builder()
        .status(StatusCode::OK)
        .header(http::header::CONTENT_TYPE, "application/x-protobuf")
        .body(Full::new(Bytes::new()))
        .unwrap()
}

/// A value as text: strings as they are, numbers formatted, the rest debug-printed.
pub fn value_text(v: &AnyValue) -> String {
    match &v.value {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::DoubleValue(d)) => d.to_string(),
        Some(any_value::Value::BytesValue(b)) => String::from_utf8_lossy(b).into_owned(),
        Some(any_value::Value::ArrayValue(a)) => {
            let items: Vec<String> = a.values.iter().map(value_text).collect();
            format!("[{}]", items.join(","))
        }
        Some(any_value::Value::KvlistValue(kv)) => format!("{:?}", attrs(&kv.values)),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

fn attrs(kvs: &[KeyValue]) -> BTreeMap<String, String> {
    kvs.iter()
        .map(|kv| {
            let v = kv.value.as_ref().map(value_text).unwrap_or_default();
            (kv.key.clone(), v)
        })
        .collect()
}

fn traces(req: ExportTraceServiceRequest) -> Vec<Record> {
    let mut out = Vec::new();
    for rs in req.resource_spans {
        let resource = attrs(&rs.resource.map(|r| r.attributes).unwrap_or_default());
        for ss in rs.scope_spans {
            let scope = ss.scope.map(|s| s.name).unwrap_or_default();
            for span in ss.spans {
                for ev in &span.events {
                    out.push(Record {
                        kind: Kind::SpanEvent,
                        name: ev.name.clone(),
                        body: String::new(),
                        attributes: attrs(&ev.attributes),
                        resource: resource.clone(),
                        scope: scope.clone(),
                    });
                }
                out.push(Record {
                    kind: Kind::Span,
                    name: span.name,
                    body: String::new(),
                    attributes: attrs(&span.attributes),
                    resource: resource.clone(),
                    scope: scope.clone(),
                });
            }
        }
    }
    out
}

fn logs(req: ExportLogsServiceRequest) -> Vec<Record> {
    let mut out = Vec::new();
    for rl in req.resource_logs {
        let resource = attrs(&rl.resource.map(|r| r.attributes).unwrap_or_default());
        for sl in rl.scope_logs {
            let scope = sl.scope.map(|s| s.name).unwrap_or_default();
            for log in sl.log_records {
                out.push(Record {
                    kind: Kind::Log,
                    name: log.event_name,
                    body: log.body.as_ref().map(value_text).unwrap_or_default(),
                    attributes: attrs(&log.attributes),
                    resource: resource.clone(),
                    scope: scope.clone(),
                });
            }
        }
    }
    out
}

fn metrics(req: ExportMetricsServiceRequest) -> Vec<Record> {
    let mut out = Vec::new();
    for rm in req.resource_metrics {
        let resource = attrs(&rm.resource.map(|r| r.attributes).unwrap_or_default());
        for sm in rm.scope_metrics {
            let scope = sm.scope.map(|s| s.name).unwrap_or_default();
            for m in sm.metrics {
                let points: Vec<Vec<KeyValue>> = match m.data {
                    Some(Data::Sum(s)) => s.data_points.into_iter().map(|p| p.attributes).collect(),
                    Some(Data::Gauge(g)) => {
                        g.data_points.into_iter().map(|p| p.attributes).collect()
                    }
                    Some(Data::Histogram(h)) => {
                        h.data_points.into_iter().map(|p| p.attributes).collect()
                    }
                    Some(Data::ExponentialHistogram(h)) => {
                        h.data_points.into_iter().map(|p| p.attributes).collect()
                    }
                    Some(Data::Summary(s)) => {
                        s.data_points.into_iter().map(|p| p.attributes).collect()
                    }
                    None => Vec::new(),
                };
                for p in points {
                    out.push(Record {
                        kind: Kind::Metric,
                        name: m.name.clone(),
                        body: String::new(),
                        attributes: attrs(&p),
                        resource: resource.clone(),
                        scope: scope.clone(),
                    });
                }
            }
        }
    }
    out
}
