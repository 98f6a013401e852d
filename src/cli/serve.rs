//! `coi-agent serve` (the daemon, [`crate::agent::run`]) and `coi-agent check-config`, with the
//! logging set-up: human text on a terminal, JSON lines with `--log-format json`, and plain
//! lines without timestamps when systemd's journal takes standard error.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use crate::config::Config;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One line per event for people (no timestamps under systemd: the journal adds them).
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Which configuration `serve` runs ([`super::load_config`]); the embedded default gets its
/// demonstration operators.
fn resolve(config: Option<&Path>, err: &mut dyn Write) -> anyhow::Result<Config> {
    let (config, embedded) = super::resolve_config(config, err)?;
    if embedded {
        seed_demo_operators(&config, err)?;
    }
    Ok(config)
}

/// The demonstration's operators, one per role, so its screens can be tried at once. Added
/// only to the demonstration's own journal, and only when it has no operators.
const DEMO_OPERATORS: [(&str, &str, crate::operators::Role, &str); 3] = [
    (
        "nurse",
        "Demo Nurse",
        crate::operators::Role::Nurse,
        "111111",
    ),
    ("tech", "Demo Tech", crate::operators::Role::Tech, "222222"),
    (
        "admin",
        "Demo Admin",
        crate::operators::Role::Admin,
        "333333",
    ),
];

fn seed_demo_operators(config: &Config, err: &mut dyn Write) -> anyhow::Result<()> {
    let mut journal = crate::journal::Journal::open(&config.journal)?;
    if journal.operators()?.is_empty() {
        for (id, name, role, pin) in DEMO_OPERATORS {
            let hash = crate::operators::hash_pin(pin)
                .map_err(|e| anyhow::anyhow!("demo operator {id}: {e}"))?;
            let _ = journal.add_operator(id, name, role, &hash, Some("demo"))?;
        }
    }
    writeln!(
        err,
        "coi-agent: screens at http://{}/ — demonstration sign-ins: {}",
        config.api.listen,
        DEMO_OPERATORS
            .iter()
            .map(|(id, _, role, pin)| format!("{id} / {pin} ({})", role.as_str()))
            .collect::<Vec<_>>()
            .join(", ")
    )?;
    Ok(())
}

pub(super) fn serve(
    config: Option<&Path>,
    log_format: LogFormat,
    err: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    init_logging(log_format);
    let config = resolve(config, err)?;
    let runtime = super::runtime()?;
    runtime.block_on(async {
        use tokio::signal::unix::{SignalKind, signal};
        let mut sigterm = signal(SignalKind::terminate())?;
        let mut sigint = signal(SignalKind::interrupt())?;
        let shutdown = async move {
            tokio::select! {
                _ = sigterm.recv() => tracing::info!("SIGTERM"),
                _ = sigint.recv() => tracing::info!("SIGINT"),
            }
        };
        crate::agent::run(config, shutdown).await
    })?;
    // Blocking readers (standard input, serial ports) are not waited for.
    runtime.shutdown_background();
    Ok(ExitCode::SUCCESS)
}

/// `check-config`: loads and resolves the configuration without starting anything.
pub(super) fn check_config(
    config: Option<&Path>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let system = Path::new(super::DEFAULT_CONFIG);
    let (shown, loaded) = match config {
        Some(path) => (path.display().to_string(), Config::load(path)),
        None if system.try_exists().unwrap_or(true) => {
            (system.display().to_string(), Config::load(system))
        }
        // The embedded default, as `serve` would run it.
        None => {
            let (config, _) = super::resolve_config(None, err)?;
            (config.origin.clone(), Ok(config))
        }
    };
    let problems = match loaded {
        Ok(config) => crate::config::check(&config),
        Err(crate::config::ConfigError::Problems { path, problems }) => problems
            .into_iter()
            .map(|problem| format!("{path}: {problem}"))
            .collect(),
        Err(problem) => vec![problem.to_string()],
    };
    if problems.is_empty() {
        writeln!(out, "{shown}: ok")?;
        return Ok(ExitCode::SUCCESS);
    }
    for problem in &problems {
        writeln!(err, "coi-agent: {problem}")?;
    }
    writeln!(out, "{shown}: {} problem(s)", problems.len())?;
    Ok(ExitCode::FAILURE)
}

fn init_logging(format: LogFormat) {
    use tracing_subscriber::fmt;
    let under_journald = std::env::var_os("JOURNAL_STREAM").is_some();
    let level = match std::env::var("COI_AGENT_LOG").as_deref() {
        Ok("debug") => tracing::Level::DEBUG,
        Ok("warn") => tracing::Level::WARN,
        Ok("error") => tracing::Level::ERROR,
        _ => tracing::Level::INFO,
    };
    let builder = fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .with_target(false);
    let res = match (format, under_journald) {
        (LogFormat::Json, _) => builder.json().flatten_event(true).try_init(),
        (LogFormat::Text, true) => builder.without_time().with_ansi(false).try_init(),
        (LogFormat::Text, false) => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init(),
    };
    // Already set (a test calling twice): keep the first.
    let _ = res;
}
