//! Telemetry out of the `veilgate` binary. The library only emits `tracing` spans and
//! events (conventions in `veilgate::telemetry`); this module owns where they go:
//!
//! - **OTLP** (feature `otel`), when the standard variables name a collector
//!   (`OTEL_EXPORTER_OTLP_ENDPOINT`, or `OTEL_EXPORTER_OTLP_{TRACES,LOGS,METRICS}_ENDPOINT`
//!   for one signal): spans through `tracing-opentelemetry`, events as log records
//!   through the appender bridge, and `veilgate::metrics` events as OpenTelemetry
//!   metrics, all over HTTP/protobuf. The SDK reads the other variables itself
//!   (`OTEL_SERVICE_NAME`, default `veilgate`; `OTEL_RESOURCE_ATTRIBUTES`;
//!   `OTEL_EXPORTER_OTLP_HEADERS`; `..._COMPRESSION=gzip`; `OTEL_BSP_*`, `OTEL_BLRP_*`,
//!   `OTEL_METRIC_EXPORT_INTERVAL`; `OTEL_TRACES_SAMPLER`); the HTTP client here honours
//!   `OTEL_EXPORTER_OTLP[_SIGNAL]_TIMEOUT` and `..._CERTIFICATE`. `OTEL_SDK_DISABLED=true`
//!   turns OTLP off; `OTEL_{TRACES,LOGS,METRICS}_EXPORTER=none` turns one signal off.
//! - **JSON lines on stdout** when logs do not go to a collector: one object per record,
//!   its fields flat (`retention.class`, `retention.days`, ... beside `message`).
//!
//! Only `veilgate*` targets are exported or printed: records of other crates carry no
//! retention class. Their warnings (an OTLP export that failed, say) go to stderr as
//! plain text. Metric events are never printed as log lines.
//!
//! `VEILGATE_LOG` (debug, info, warn, error) sets the level; the record targets
//! (`veilgate::access`, `::security`, `::billing`, the `veilgate::retention` request
//! span) stay on at `info` whatever it says: they are records, not diagnostics.

use std::io::IsTerminal as _;

use tracing::Level;
use tracing::level_filters::LevelFilter;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{Layer, Registry};

/// Targets of records that are kept at `info` even when `VEILGATE_LOG` asks for less.
pub const RECORD_TARGETS: [&str; 4] = [
    "veilgate::access",
    "veilgate::security",
    "veilgate::billing",
    "veilgate::retention",
];

/// Target of metric events (turned into OpenTelemetry metrics, never printed).
pub const METRICS_TARGET: &str = "veilgate::metrics";

type BoxedLayer = Box<dyn Layer<Registry> + Send + Sync>;

/// Keeps the telemetry pipeline alive; dropping it flushes what is buffered and shuts the
/// exporters down (bounded by the SDK's own timeouts). Drop it after the server has
/// drained, outside any async context.
#[must_use = "dropping the guard flushes and stops the exporters"]
#[derive(Debug)]
pub struct Guard {
    #[cfg(feature = "otel")]
    otlp: Option<otlp::Providers>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        #[cfg(feature = "otel")]
        if let Some(p) = self.otlp.take() {
            p.shutdown();
        }
    }
}

/// The level `VEILGATE_LOG` asks for (`info` when unset or unknown).
pub fn level_from_env() -> Level {
    match std::env::var("VEILGATE_LOG").as_deref() {
        Ok("debug") => Level::DEBUG,
        Ok("warn") => Level::WARN,
        Ok("error") => Level::ERROR,
        _ => Level::INFO,
    }
}

/// Which `veilgate*` records go out, at `level`: everything but metric events, with the
/// record targets kept at `info` at least.
pub fn record_filter(level: Level) -> Targets {
    let level = LevelFilter::from_level(level);
    RECORD_TARGETS
        .iter()
        .fold(Targets::new().with_target("veilgate", level), |t, r| {
            t.with_target(*r, level.max(LevelFilter::INFO))
        })
        .with_target(METRICS_TARGET, LevelFilter::OFF)
}

/// Installs the global subscriber: OTLP where configured, JSON lines on stdout for logs
/// otherwise, other crates' warnings on stderr.
pub fn init(level: Level) -> Result<Guard, String> {
    let mut layers: Vec<BoxedLayer> = Vec::new();
    // Other crates (hyper, the OpenTelemetry SDK's own diagnostics): warnings, as text.
    layers.push(
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(std::io::stderr().is_terminal())
            .with_filter(
                Targets::new()
                    .with_default(LevelFilter::WARN)
                    .with_target("veilgate", LevelFilter::OFF),
            )
            .boxed(),
    );

    #[cfg(feature = "otel")]
    let otlp = otlp::Providers::from_env()?;
    #[cfg(feature = "otel")]
    let logs_to_otlp = otlp.as_ref().is_some_and(|p| p.logs.is_some());
    #[cfg(not(feature = "otel"))]
    let logs_to_otlp = false;
    #[cfg(not(feature = "otel"))]
    if configured_endpoint().is_some() && !sdk_disabled() {
        eprintln!("veilgate: built without the `otel` feature: OTEL_* variables are ignored");
    }

    #[cfg(feature = "otel")]
    if let Some(p) = &otlp {
        p.layers(level, &mut layers);
    }
    if !logs_to_otlp && !signal_off("LOGS") {
        layers.push(
            tracing_subscriber::fmt::layer()
                .json()
                .flatten_event(true)
                .with_current_span(false)
                .with_span_list(false)
                .with_writer(std::io::stdout)
                .with_filter(record_filter(level))
                .boxed(),
        );
    }
    tracing_subscriber::registry()
        .with(layers)
        .try_init()
        .map_err(|e| format!("installing the log subscriber: {e}"))?;
    Ok(Guard {
        #[cfg(feature = "otel")]
        otlp,
    })
}

/// `OTEL_SDK_DISABLED=true`.
fn sdk_disabled() -> bool {
    std::env::var("OTEL_SDK_DISABLED").is_ok_and(|v| v.trim().eq_ignore_ascii_case("true"))
}

/// `OTEL_{SIGNAL}_EXPORTER=none`.
fn signal_off(signal: &str) -> bool {
    std::env::var(format!("OTEL_{signal}_EXPORTER")).is_ok_and(|v| v.trim() == "none")
}

/// The collector endpoint configured for `signal` (`TRACES`, `LOGS`, `METRICS`), if any.
fn signal_endpoint(signal: &str) -> Option<String> {
    let set = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    set(&format!("OTEL_EXPORTER_OTLP_{signal}_ENDPOINT"))
        .or_else(|| set("OTEL_EXPORTER_OTLP_ENDPOINT"))
}

#[cfg(not(feature = "otel"))]
fn configured_endpoint() -> Option<String> {
    ["TRACES", "LOGS", "METRICS"]
        .into_iter()
        .find_map(signal_endpoint)
}

#[cfg(feature = "otel")]
mod otlp {
    use std::future::Future;
    use std::pin::Pin;
    use std::time::Duration;

    use bytes::Bytes;
    use http::{Request, Response};
    use http_body_util::{BodyExt as _, Full, Limited};
    use hyper_util::client::legacy::Client;
    use hyper_util::client::legacy::connect::HttpConnector;
    use hyper_util::rt::TokioExecutor;
    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry::{Key, KeyValue};
    use opentelemetry_http::{HttpClient, HttpError};
    use opentelemetry_otlp::WithHttpConfig as _;
    use opentelemetry_sdk::Resource;
    use opentelemetry_sdk::logs::SdkLoggerProvider;
    use opentelemetry_sdk::metrics::SdkMeterProvider;
    use opentelemetry_sdk::trace::SdkTracerProvider;
    use tracing::Level;
    use tracing_subscriber::Layer as _;
    use tracing_subscriber::filter::{FilterExt as _, Targets, filter_fn};

    use super::{BoxedLayer, METRICS_TARGET, record_filter, sdk_disabled, signal_endpoint};

    /// The providers of the configured signals, and the runtime their HTTP client uses.
    pub(super) struct Providers {
        traces: Option<SdkTracerProvider>,
        pub(super) logs: Option<SdkLoggerProvider>,
        metrics: Option<SdkMeterProvider>,
        /// One worker thread for exports: the SDK's batch threads are not Tokio threads,
        /// and a runtime of our own outlives the server's, so the last flush still works.
        runtime: tokio::runtime::Runtime,
    }

    impl std::fmt::Debug for Providers {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("Providers")
                .field("traces", &self.traces.is_some())
                .field("logs", &self.logs.is_some())
                .field("metrics", &self.metrics.is_some())
                .finish()
        }
    }

    impl Providers {
        /// Builds the providers of the signals the environment configures; `None` when it
        /// configures none.
        pub(super) fn from_env() -> Result<Option<Providers>, String> {
            if sdk_disabled() {
                return Ok(None);
            }
            let on = |s: &str| signal_endpoint(s).is_some() && !super::signal_off(s);
            let (traces, logs, metrics) = (on("TRACES"), on("LOGS"), on("METRICS"));
            if !(traces || logs || metrics) {
                return Ok(None);
            }
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("veilgate-otlp")
                .enable_all()
                .build()
                .map_err(|e| format!("starting the OTLP export runtime: {e}"))?;
            let resource = resource();
            let err = |signal: &str, e: &dyn std::fmt::Display| format!("OTLP {signal}: {e}");
            let traces = if traces {
                let exporter = opentelemetry_otlp::SpanExporter::builder()
                    .with_http()
                    .with_http_client(OtlpClient::new(&runtime, "TRACES")?)
                    .build()
                    .map_err(|e| err("traces", &e))?;
                Some(
                    SdkTracerProvider::builder()
                        .with_resource(resource.clone())
                        .with_batch_exporter(exporter)
                        .build(),
                )
            } else {
                None
            };
            let logs = if logs {
                let exporter = opentelemetry_otlp::LogExporter::builder()
                    .with_http()
                    .with_http_client(OtlpClient::new(&runtime, "LOGS")?)
                    .build()
                    .map_err(|e| err("logs", &e))?;
                Some(
                    SdkLoggerProvider::builder()
                        .with_resource(resource.clone())
                        .with_batch_exporter(exporter)
                        .build(),
                )
            } else {
                None
            };
            let metrics = if metrics {
                let exporter = opentelemetry_otlp::MetricExporter::builder()
                    .with_http()
                    .with_http_client(OtlpClient::new(&runtime, "METRICS")?)
                    .build()
                    .map_err(|e| err("metrics", &e))?;
                Some(
                    SdkMeterProvider::builder()
                        .with_resource(resource)
                        .with_periodic_exporter(exporter)
                        .build(),
                )
            } else {
                None
            };
            Ok(Some(Providers {
                traces,
                logs,
                metrics,
                runtime,
            }))
        }

        /// The subscriber layers feeding these providers.
        pub(super) fn layers(&self, level: Level, layers: &mut Vec<BoxedLayer>) {
            if let Some(tp) = &self.traces {
                // Spans only: events go out once, as log records (correlated by trace
                // id), not a second time as span events.
                let spans = record_filter(level).and(filter_fn(|m| m.is_span()));
                layers.push(
                    tracing_opentelemetry::layer()
                        .with_tracer(tp.tracer("veilgate"))
                        .with_threads(false)
                        .with_filter(spans)
                        .boxed(),
                );
            }
            if let Some(lp) = &self.logs {
                layers.push(
                    opentelemetry_appender_tracing::layer::OpenTelemetryTracingBridge::new(lp)
                        .with_filter(record_filter(level))
                        .boxed(),
                );
            }
            if let Some(mp) = &self.metrics {
                let metrics = || Targets::new().with_target(METRICS_TARGET, Level::TRACE);
                layers.push(
                    tracing_opentelemetry::MetricsLayer::new(mp.clone())
                        .with_filter(metrics())
                        .boxed(),
                );
                // The metrics layer itself only answers for callsites with metric fields,
                // and the library asks `tracing::enabled!(target: "veilgate::metrics", ..)`
                // before it computes an exchange's records: with metrics the only signal,
                // this layer says yes for the target explicitly, whatever the nesting of
                // per-layer filters above makes of it (tested: metrics_alone_still_come_out).
                layers.push(
                    tracing_subscriber::layer::Identity::new()
                        .with_filter(metrics())
                        .boxed(),
                );
            }
        }

        /// Flushes and shuts down every provider, then the export runtime. The three
        /// flush at once: a collector that does not answer costs one export timeout, not
        /// three, before the process exits.
        pub(super) fn shutdown(self) {
            let report = |signal: &str, r: opentelemetry_sdk::error::OTelSdkResult| {
                if let Err(e) = r {
                    eprintln!("veilgate: flushing {signal}: {e}");
                }
            };
            std::thread::scope(|s| {
                if let Some(tp) = &self.traces {
                    s.spawn(move || report("traces", tp.shutdown()));
                }
                if let Some(lp) = &self.logs {
                    s.spawn(move || report("logs", lp.shutdown()));
                }
                if let Some(mp) = &self.metrics {
                    s.spawn(move || report("metrics", mp.shutdown()));
                }
            });
            self.runtime.shutdown_background();
        }
    }

    /// The SDK's resource detectors (`OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`),
    /// with `veilgate` as the service name and the crate version when they name none.
    fn resource() -> Resource {
        let detected = Resource::builder().build();
        let has = |k: &'static str| detected.get(&Key::from_static_str(k)).is_some();
        let unnamed = detected
            .get(&Key::from_static_str("service.name"))
            .is_none_or(|v| v.as_str().starts_with("unknown_service"));
        let mut b = Resource::builder();
        if unnamed {
            b = b.with_service_name("veilgate");
        }
        if !has("service.version") {
            b = b.with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")));
        }
        b.build()
    }

    type Connector = hyper_rustls::HttpsConnector<HttpConnector>;

    /// OTLP/HTTP over the hyper-util client the sidecar already uses (rustls, webpki
    /// roots plus `OTEL_EXPORTER_OTLP[_SIGNAL]_CERTIFICATE`). Requests run on the export
    /// runtime; the SDK's batch threads only wait for them.
    #[derive(Debug, Clone)]
    struct OtlpClient {
        runtime: tokio::runtime::Handle,
        client: Client<Connector, Full<Bytes>>,
        timeout: Duration,
    }

    /// Largest collector answer read (they are empty or a few bytes of partial success).
    const MAX_RESPONSE: usize = 1 << 20;

    impl OtlpClient {
        fn new(runtime: &tokio::runtime::Runtime, signal: &str) -> Result<OtlpClient, String> {
            let var = |name: &str| {
                std::env::var(format!("OTEL_EXPORTER_OTLP_{signal}_{name}"))
                    .or_else(|_| std::env::var(format!("OTEL_EXPORTER_OTLP_{name}")))
                    .ok()
                    .filter(|v| !v.trim().is_empty())
            };
            let timeout = var("TIMEOUT")
                .and_then(|v| v.trim().parse().ok())
                .map_or(Duration::from_secs(10), Duration::from_millis);
            let ca = var("CERTIFICATE").map(std::path::PathBuf::from);
            let connector = crate::sidecar::proxy::https_connector(ca.as_deref(), timeout, false)?;
            // Built inside the runtime: the pool's background tasks belong to it.
            let _entered = runtime.enter();
            let client = Client::builder(TokioExecutor::new()).build(connector);
            Ok(OtlpClient {
                runtime: runtime.handle().clone(),
                client,
                timeout,
            })
        }
    }

    impl HttpClient for OtlpClient {
        // `HttpClient` is an `async_trait`; this is the signature it expands to.
        fn send_bytes<'life0, 'async_trait>(
            &'life0 self,
            request: Request<Bytes>,
        ) -> Pin<Box<dyn Future<Output = Result<Response<Bytes>, HttpError>> + Send + 'async_trait>>
        where
            'life0: 'async_trait,
            Self: 'async_trait,
        {
            let (client, timeout) = (self.client.clone(), self.timeout);
            let task = self.runtime.spawn(async move {
                let (parts, body) = request.into_parts();
                let call = async {
                    let resp = client
                        .request(Request::from_parts(parts, Full::new(body)))
                        .await?;
                    let (parts, body) = resp.into_parts();
                    let body = Limited::new(body, MAX_RESPONSE).collect().await?;
                    Ok::<_, HttpError>(Response::from_parts(parts, body.to_bytes()))
                };
                match tokio::time::timeout(timeout, call).await {
                    Ok(r) => r,
                    Err(_) => Err(format!("no answer within {timeout:?}").into()),
                }
            });
            Box::pin(async move {
                match task.await {
                    Ok(r) => r,
                    Err(e) => Err(Box::new(e) as HttpError),
                }
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_pass_metric_events_and_other_crates_do_not() {
        let f = record_filter(Level::WARN);
        // Records stay on at info whatever the level...
        for t in RECORD_TARGETS {
            assert!(f.would_enable(t, &Level::INFO), "{t}");
            assert!(!f.would_enable(t, &Level::DEBUG), "{t}");
        }
        // ...operational messages follow it...
        assert!(f.would_enable("veilgate::ops", &Level::WARN));
        assert!(!f.would_enable("veilgate::ops", &Level::INFO));
        // ...metric events and other crates never go out as records.
        assert!(!f.would_enable(METRICS_TARGET, &Level::ERROR));
        assert!(!f.would_enable("hyper::proto::h1", &Level::ERROR));
        assert!(!f.would_enable("opentelemetry_sdk", &Level::ERROR));

        let f = record_filter(Level::DEBUG);
        assert!(f.would_enable("veilgate::ops", &Level::DEBUG));
        assert!(f.would_enable("veilgate::access", &Level::DEBUG));
        assert!(!f.would_enable(METRICS_TARGET, &Level::INFO));
    }
}
