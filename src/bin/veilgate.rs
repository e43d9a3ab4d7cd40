//! The `veilgate` command.
#![forbid(unsafe_code)]

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand, ValueEnum};
use veilgate::engine::{Action, Engine, Error, Format, Key, Redactor, Session};

/// mimalloc rather than the system allocator: under load the sidecar's two workers
/// allocate and free each other's request buffers, and glibc's arena locks and
/// consolidation then cost it about a fifth of its requests/s (benches/README.md).
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "veilgate",
    version,
    about = "Privacy middleware for AI gateways"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the sidecar proxy (built-in defaults without --config).
    #[cfg(feature = "sidecar")]
    Proxy(ProxyArgs),
    /// Check a configuration file.
    #[cfg(feature = "sidecar")]
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Read stdin, write it redacted to stdout (JSON keeps its structure, SSE its framing).
    Redact(RedactArgs),
    /// Gateway keys: mint one, or hash one read from stdin (configs store only hashes).
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Inspect and check filter definitions.
    Filters {
        #[command(subcommand)]
        command: FiltersCommand,
    },
}

#[cfg(feature = "sidecar")]
#[derive(clap::Args)]
struct ProxyArgs {
    /// Configuration file (TOML); see examples/veilgate.toml.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Listen address, overriding the file (default 127.0.0.1:8080).
    #[arg(long, value_name = "HOST:PORT")]
    listen: Option<std::net::SocketAddr>,
    /// Admin listen address (/healthz, /readyz, /metrics), overriding the file.
    #[arg(long, value_name = "HOST:PORT")]
    admin_listen: Option<std::net::SocketAddr>,
    /// Base URL of the default upstream, overriding the file.
    #[arg(long, value_name = "URL")]
    upstream: Option<String>,
}

#[cfg(feature = "sidecar")]
#[derive(Subcommand)]
enum ConfigCommand {
    /// Parse and validate FILE; errors name the line, the key and why.
    Check { file: PathBuf },
}

#[derive(clap::Args)]
struct RedactArgs {
    /// Input kind; `auto` looks at the first bytes.
    #[arg(long, value_enum, default_value_t = FormatArg::Auto)]
    format: FormatArg,
    /// Action for every detection (default: each filter's own action).
    #[arg(long, value_enum)]
    action: Option<ActionArg>,
    /// Print detections to stderr as JSON lines (entity, filter, byte range), never values.
    #[arg(long)]
    spans: bool,
    /// With --spans, include the detected values (for debugging your own data only).
    #[arg(long, requires = "spans")]
    show_values: bool,
    /// Extra filter files or directories, added to the built-in filters.
    #[arg(long = "filters", value_name = "PATH")]
    filters: Vec<PathBuf>,
    /// File holding the key for hashes and pseudonyms (else $VEILGATE_KEY, else random).
    #[arg(long, value_name = "FILE")]
    key_file: Option<PathBuf>,
    /// Tenant mixed into pseudonyms.
    #[arg(long, default_value = "default")]
    tenant: String,
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Print a new gateway key (shown once) and the SHA-256 hash to put in the config.
    New,
    /// Read a key from stdin, print its SHA-256 hash.
    Hash,
}

#[derive(Subcommand)]
enum FiltersCommand {
    /// Check filters: ids unique, patterns bounded, examples match, negative examples don't.
    /// Without DIR checks the built-in filters; with DIR checks DIR together with them.
    Check { dir: Option<PathBuf> },
    /// Print id, entity, validator and action of every filter.
    List {
        /// Extra filter files or directories.
        #[arg(long = "filters", value_name = "PATH")]
        filters: Vec<PathBuf>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum FormatArg {
    Auto,
    Json,
    Sse,
    Text,
}

#[derive(Clone, Copy, ValueEnum)]
enum ActionArg {
    Redact,
    Mask,
    Hash,
    Pseudonymize,
    Block,
}

fn main() -> ExitCode {
    // A panic message may quote the data being processed (a slice, a parsed value): print
    // where it happened, never what it said.
    std::panic::set_hook(Box::new(|info| {
        let at = info
            .location()
            .map_or_else(String::new, |l| format!(" at {}:{}", l.file(), l.line()));
        eprintln!("veilgate: internal error{at} (message withheld: it may quote request data)");
    }));
    let cli = Cli::parse();
    let result = match cli.command {
        #[cfg(feature = "sidecar")]
        Command::Proxy(args) => proxy(args),
        #[cfg(feature = "sidecar")]
        Command::Config {
            command: ConfigCommand::Check { file },
        } => config_check(&file),
        Command::Redact(args) => redact(args),
        Command::Keys {
            command: KeysCommand::New,
        } => keys_new(),
        Command::Keys {
            command: KeysCommand::Hash,
        } => keys_hash(),
        Command::Filters {
            command: FiltersCommand::Check { dir },
        } => check(dir),
        Command::Filters {
            command: FiltersCommand::List { filters },
        } => list(&filters),
    };
    match result {
        Ok(code) => code,
        Err(message) => {
            eprintln!("veilgate: {message}");
            ExitCode::from(2)
        }
    }
}

fn engine(paths: &[PathBuf]) -> Result<Engine, String> {
    let mut b = Engine::builder().builtin();
    for p in paths {
        b = b.path(p).map_err(|e| e.to_string())?;
    }
    b.build().map_err(|e| e.to_string())
}

fn key(path: Option<&PathBuf>) -> Result<Key, String> {
    if let Some(p) = path {
        let bytes = std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()))?;
        return Ok(Key::new(bytes.trim_ascii()));
    }
    match std::env::var("VEILGATE_KEY") {
        Ok(k) if !k.is_empty() => Ok(Key::new(k.as_bytes())),
        _ => Ok(Key::random()),
    }
}

fn redact(args: RedactArgs) -> Result<ExitCode, String> {
    let engine = Arc::new(engine(&args.filters)?);
    let mut redactor = Redactor::new(engine)
        .with_key(key(args.key_file.as_ref())?)
        .with_tenant(&args.tenant);
    if let Some(a) = args.action {
        redactor = redactor.with_action(match a {
            ActionArg::Redact => Action::Redact,
            ActionArg::Mask => Action::Mask,
            ActionArg::Hash => Action::Hash,
            ActionArg::Pseudonymize => Action::Pseudonymize,
            ActionArg::Block => Action::Block,
        });
    }
    let format = match args.format {
        FormatArg::Auto => Format::Auto,
        FormatArg::Json => Format::Json,
        FormatArg::Sse => Format::Sse,
        FormatArg::Text => Format::Text,
    };
    let mut input = Vec::new();
    std::io::stdin()
        .read_to_end(&mut input)
        .map_err(|e| format!("reading stdin: {e}"))?;
    let mut session = if args.spans {
        Session::recording(args.show_values)
    } else {
        Session::default()
    };
    // The whole output is built before anything is written: bad input writes nothing.
    let out = match veilgate::engine::redact_bytes_with(&redactor, &input, format, &mut session) {
        Ok(out) => out,
        Err(e @ Error::Blocked { .. }) => {
            eprintln!("veilgate: {e}");
            return Ok(ExitCode::from(3));
        }
        Err(e) => return Err(e.to_string()),
    };
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(&out)
        .and_then(|()| stdout.flush())
        .map_err(|e| format!("writing stdout: {e}"))?;
    if let Some(spans) = &session.spans {
        let mut stderr = std::io::stderr().lock();
        for s in spans {
            let mut line = serde_json::json!({
                "entity": &*s.entity,
                "filter": &*s.filter,
                "action": s.action.as_str(),
                "start": s.start,
                "end": s.end,
            });
            if let Some(v) = &s.value {
                line["value"] = v.as_str().into();
            }
            let _ = writeln!(stderr, "{line}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn check(dir: Option<PathBuf>) -> Result<ExitCode, String> {
    let engine = engine(dir.as_slice())?;
    let only = dir.as_ref().map(|d| d.display().to_string());
    let mut failures = 0;
    let mut checked = 0;
    for f in engine.filters() {
        if only
            .as_ref()
            .is_some_and(|d| !f.source.starts_with(d.as_str()))
        {
            continue;
        }
        checked += 1;
        for problem in veilgate::engine::check_filter(&engine, f) {
            failures += 1;
            println!("FAIL {} ({}): {problem}", f.id, f.source);
        }
    }
    println!("{checked} filters checked, {failures} problems");
    Ok(if failures == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn list(paths: &[PathBuf]) -> Result<ExitCode, String> {
    let engine = engine(paths)?;
    println!(
        "{:<32} {:<16} {:<16} {:<12} max_len",
        "id", "entity", "validator", "action"
    );
    for f in engine.filters() {
        println!(
            "{:<32} {:<16} {:<16} {:<12} {}",
            f.id,
            f.entity,
            f.validator_name().unwrap_or("-"),
            f.action,
            f.max_len
        );
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(feature = "sidecar")]
fn proxy(args: ProxyArgs) -> Result<ExitCode, String> {
    // Installed first, dropped last: after the runtime below has drained and stopped,
    // dropping the guard flushes what the exporters still hold.
    let telemetry =
        veilgate::sidecar::telemetry::init(veilgate::sidecar::telemetry::level_from_env())?;
    let overrides = veilgate::sidecar::Overrides {
        listen: args.listen,
        admin_listen: args.admin_listen,
        upstream: args.upstream,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("starting the runtime: {e}"))?;
    let result = rt.block_on(veilgate::sidecar::run(args.config, overrides));
    drop(rt);
    drop(telemetry);
    result?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(feature = "sidecar")]
fn config_check(file: &std::path::Path) -> Result<ExitCode, String> {
    match veilgate::sidecar::Config::load(file) {
        Ok(c) => {
            println!(
                "{}: ok ({} upstreams, {} routes, listen {})",
                file.display(),
                c.upstreams.len(),
                c.routes.len(),
                c.listen
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            println!("{e}");
            Ok(ExitCode::FAILURE)
        }
    }
}

fn keys_new() -> Result<ExitCode, String> {
    let (key, hash) =
        veilgate::api_key::mint().map_err(|e| format!("reading random bytes: {e}"))?;
    println!("key:    {key}");
    println!("sha256: {hash}");
    eprintln!(
        "The key is shown only now: give it to the client; put only the sha256 in the config."
    );
    Ok(ExitCode::SUCCESS)
}

fn keys_hash() -> Result<ExitCode, String> {
    let mut key = String::new();
    std::io::stdin()
        .read_to_string(&mut key)
        .map_err(|e| format!("reading stdin: {e}"))?;
    if key.trim().is_empty() {
        return Err("no key on stdin".into());
    }
    println!("{}", veilgate::api_key::hash(&key));
    Ok(ExitCode::SUCCESS)
}
