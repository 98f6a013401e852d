//! The configuration file (TOML), read into plain data before anything is opened. Paths are
//! relative to the file's directory unless absolute, so a configuration and its data can move
//! together.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// The embedded default: file order source, journal beside the configuration.
pub const DEFAULT: &str = include_str!("../config/default.toml");

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Where it came from, for messages: the file as given, or the embedded default's directory.
    pub origin: String,
    pub site_id: String,
    pub workstation: String,
    pub journal: PathBuf,
    pub orders: OrderSourceConfig,
    pub central: Option<CentralConfig>,
    pub printers: Vec<PrinterConfig>,
    pub scanners: Vec<ScannerConfig>,
    pub api: ApiConfig,
    /// How often `serve` syncs orders from their source.
    pub refresh: Duration,
    /// How long a scan that carried one identifier waits for the other from the same source
    /// (docs/decisions.md, "Two identifiers").
    pub pair_window: Duration,
    /// How old orders from the central service may be for a receipt or a first label
    /// (`[orders] max_age_secs`, default an hour); `None` for a file source.
    pub order_max_age: Option<Duration>,
    /// The largest order list read, file or central answer (`[orders] max_mib`, default 64).
    pub order_max_bytes: u64,
    /// The screens (`[ui]`): how long a signed-in operator may be idle before being signed
    /// out (`idle_minutes`, default 15).
    pub ui_idle: Duration,
    /// The scanner profiles: the built-in ones with a site's `scanners.d/*.toml` beside the
    /// configuration merged over them (`coi-agent devices` recognises scanners by these).
    pub scanner_profiles: Vec<crate::scanner::profiles::ScannerProfile>,
}

/// A scanner `serve` reads, and the step its scans are judged by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScannerConfig {
    pub name: String,
    /// As written, for messages.
    pub source: String,
    /// The source, parsed once when the configuration is read.
    pub spec: crate::scanner::source::ScannerSpec,
    pub step: crate::reconcile::Step,
}

/// The local JSON API that `serve` offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiConfig {
    /// Loopback unless the site says otherwise.
    pub listen: std::net::SocketAddr,
    /// The bearer token every `/api/` request must carry; created (mode 0600) at first start.
    pub token_file: PathBuf,
}

/// The API's port unless `[api] listen` says otherwise: away from IPP (631), raw printing
/// (9100/9101), Zebra Browser Print (9100-9101, 9443), QZ Tray (8181-8485) and DYMO (41951).
pub const DEFAULT_API_PORT: u16 = 7370;

/// A printer the workstation uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrinterConfig {
    pub name: String,
    /// As written (a relative spool directory made absolute), for messages.
    pub uri_text: String,
    /// As `coi-agent print --printer` takes it.
    pub uri: crate::printer::transport::PrinterUri,
    /// Its model from drivers/printers.toml.
    pub profile: Option<crate::printer::profiles::PrinterProfile>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrderSourceConfig {
    File(PathBuf),
    Central,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CentralConfig {
    pub url: String,
    pub token_file: PathBuf,
    pub timeout: Duration,
    /// What a first bag label does when central cannot be asked who holds the bag.
    pub offline: Offline,
}

/// `[central] offline`: when central cannot arbitrate a first bag label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offline {
    /// Print, decided by this workstation's journal alone, and say so in the event.
    Local,
    /// Print nothing until central answers.
    Refuse,
}

/// Why a configuration is unusable.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("read {path}: {cause}")]
    Read { path: String, cause: std::io::Error },
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
    /// Every problem found once the file was read as TOML.
    #[error("{path}: {}", problems.join("; "))]
    Problems { path: String, problems: Vec<String> },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    site: SiteSection,
    journal: JournalSection,
    orders: OrdersSection,
    central: Option<CentralSection>,
    #[serde(default)]
    printers: Vec<PrinterSection>,
    #[serde(default)]
    scanners: Vec<ScannerSection>,
    api: Option<ApiSection>,
    scanning: Option<ScanningSection>,
    ui: Option<UiSection>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UiSection {
    idle_minutes: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScanningSection {
    pair_window_secs: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScannerSection {
    name: String,
    source: String,
    step: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ApiSection {
    listen: Option<String>,
    token_file: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PrinterSection {
    name: String,
    uri: String,
    profile: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SiteSection {
    id: String,
    workstation: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct JournalSection {
    path: PathBuf,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OrdersSection {
    source: String,
    file: Option<PathBuf>,
    refresh_secs: Option<u64>,
    max_age_secs: Option<u64>,
    max_mib: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CentralSection {
    url: String,
    token_file: PathBuf,
    timeout_secs: Option<u64>,
    offline: Option<String>,
}

impl Config {
    /// Reads a configuration file.
    ///
    /// # Errors
    /// The file cannot be read, is not valid TOML, has an unknown key (a misspelling must not be
    /// silently ignored), or misses what its order source needs.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            cause: source,
        })?;
        // Relative paths in the file are relative to its directory, made absolute here so a
        // relative --config (or a spool directory) resolves the same wherever it is used.
        let parent = path.parent().filter(|p| !p.as_os_str().is_empty());
        let base = match parent {
            Some(dir) if dir.is_absolute() => dir.to_owned(),
            Some(dir) => std::env::current_dir()
                .map(|cwd| cwd.join(dir))
                .unwrap_or_else(|_| dir.to_owned()),
            None => std::env::current_dir().unwrap_or_else(|_| PathBuf::from(".")),
        };
        Config::parse(&text, &base, &path.display().to_string())
    }

    /// Parses configuration text whose relative paths are relative to `base`.
    ///
    /// # Errors
    /// See [`Config::load`].
    pub fn parse(text: &str, base: &Path, shown: &str) -> Result<Config, ConfigError> {
        let invalid = |message: String| ConfigError::Invalid {
            path: shown.to_owned(),
            message,
        };
        // TOML syntax and unknown keys stop here (the error names the line); every problem
        // after that is collected, so site IT sees them all at once.
        let file: File = toml::Deserializer::parse(text)
            .map_err(|e| invalid(toml_problem(text, "", &e)))
            .and_then(|de| {
                serde_path_to_error::deserialize(de).map_err(|e| {
                    let key = e.path().to_string();
                    invalid(toml_problem(text, &key, e.inner()))
                })
            })?;
        let mut problems = Vec::new();
        if file.site.id.trim().is_empty() {
            problems.push("site.id is empty".to_owned());
        }
        let resolve = |p: &Path| {
            if p.is_absolute() {
                p.to_owned()
            } else {
                base.join(p)
            }
        };
        let orders = match (file.orders.source.as_str(), &file.orders.file) {
            ("file", Some(path)) => Some(OrderSourceConfig::File(resolve(path))),
            ("file", None) => {
                problems.push("orders.source = \"file\" needs orders.file".to_owned());
                None
            }
            ("central", _) => Some(OrderSourceConfig::Central),
            (other, _) => {
                problems.push(format!(
                    "orders.source {other:?} is not \"file\" or \"central\""
                ));
                None
            }
        };
        let central = file.central.map(|c| CentralConfig {
            url: c.url,
            token_file: resolve(&c.token_file),
            timeout: Duration::from_secs(c.timeout_secs.unwrap_or(10).clamp(1, 300)),
            offline: match c.offline.as_deref() {
                None | Some("local") => Offline::Local,
                Some("refuse") => Offline::Refuse,
                Some(other) => {
                    problems.push(format!(
                        "central.offline {other:?}: \"local\" or \"refuse\""
                    ));
                    Offline::Local
                }
            },
        });
        if orders == Some(OrderSourceConfig::Central) && central.is_none() {
            problems.push("orders.source = \"central\" needs a [central] section".to_owned());
        }
        let mut printers = Vec::with_capacity(file.printers.len());
        let known = site_profiles(
            base,
            "printers.d",
            crate::printer::profiles::EMBEDDED,
            crate::printer::profiles::parse,
            |a, b| a.model == b.model,
            &mut problems,
        )
        .map_err(invalid)?;
        let scanner_profiles = site_profiles(
            base,
            "scanners.d",
            crate::scanner::profiles::EMBEDDED,
            crate::scanner::profiles::parse,
            |a, b| a.name == b.name,
            &mut problems,
        )
        .map_err(invalid)?;
        for printer in file.printers {
            let uri = match printer.uri.strip_prefix("spool://") {
                Some(dir) if !dir.starts_with('/') => {
                    format!("spool://{}", resolve(Path::new(dir)).display())
                }
                _ => printer.uri,
            };
            if printers
                .iter()
                .any(|p: &PrinterConfig| p.name == printer.name)
            {
                problems.push(format!("printer {:?} is named twice", printer.name));
            }
            let parsed = crate::printer::transport::PrinterUri::parse(&uri)
                .map_err(|e| problems.push(format!("printer {:?}: {e}", printer.name)));
            // A misspelt model must not silently lose the printer's resolution.
            let profile = match &printer.profile {
                None => Ok(None),
                Some(model) => match crate::printer::profiles::by_model(&known, model) {
                    Some(profile) => Ok(Some(profile.clone())),
                    None => {
                        let models: Vec<&str> = known.iter().map(|p| p.model.as_str()).collect();
                        problems.push(format!(
                            "printer {:?}: unknown profile {model:?} (built-in and printers.d/ have: {})",
                            printer.name,
                            models.join(", ")
                        ));
                        Err(())
                    }
                },
            };
            if let (Ok(parsed), Ok(profile)) = (parsed, profile) {
                printers.push(PrinterConfig {
                    name: printer.name,
                    uri_text: uri,
                    uri: parsed,
                    profile,
                });
            }
        }
        let mut scanners: Vec<ScannerConfig> = Vec::with_capacity(file.scanners.len());
        let mut names = std::collections::HashSet::new();
        for scanner in file.scanners {
            if !names.insert(scanner.name.clone()) {
                problems.push(format!("scanner {:?} is named twice", scanner.name));
            }
            let spec = crate::scanner::source::ScannerSpec::parse(&scanner.source)
                .map_err(|e| problems.push(format!("scanner {:?}: source: {e}", scanner.name)));
            let step = crate::reconcile::Step::parse(&scanner.step);
            if step.is_none() {
                problems.push(format!(
                    "scanner {:?}: step {:?} is not \"receipt\" or \"verify\"",
                    scanner.name, scanner.step
                ));
            }
            if let (Ok(spec), Some(step)) = (spec, step) {
                scanners.push(ScannerConfig {
                    name: scanner.name,
                    source: scanner.source,
                    spec,
                    step,
                });
            }
        }
        let api = file.api.unwrap_or(ApiSection {
            listen: None,
            token_file: None,
        });
        let default_listen = std::net::SocketAddr::from(([127, 0, 0, 1], DEFAULT_API_PORT));
        let listen: std::net::SocketAddr = match api.listen {
            None => default_listen,
            Some(text) => text.parse().unwrap_or_else(|_| {
                problems.push(format!(
                    "api.listen {text:?} is not an IP:PORT address such as 127.0.0.1:{DEFAULT_API_PORT}"
                ));
                default_listen
            }),
        };
        // Requests must name the address they were sent to (DNS rebinding): a wildcard address
        // has no name to check against.
        if listen.ip().is_unspecified() {
            problems.push(format!(
                "api.listen {listen} listens on every address: name one (127.0.0.1 by default)"
            ));
        }
        let refresh_secs = file.orders.refresh_secs.unwrap_or(60);
        if refresh_secs == 0 {
            problems.push("orders.refresh_secs must be at least 1".to_owned());
        }
        let max_age_secs = file
            .orders
            .max_age_secs
            .unwrap_or(DEFAULT_ORDER_MAX_AGE_SECS);
        if max_age_secs < 60 {
            problems.push("orders.max_age_secs must be at least 60".to_owned());
        }
        let max_mib = file.orders.max_mib.unwrap_or(DEFAULT_ORDER_MAX_MIB);
        if !(1..=1024).contains(&max_mib) {
            problems.push("orders.max_mib must be 1 to 1024".to_owned());
        }
        let pair_window_secs = file
            .scanning
            .and_then(|s| s.pair_window_secs)
            .unwrap_or(crate::reconcile::PAIR_WINDOW.as_secs());
        if !(1..=120).contains(&pair_window_secs) {
            problems.push("scanning.pair_window_secs must be 1 to 120".to_owned());
        }
        let idle_minutes = file
            .ui
            .and_then(|ui| ui.idle_minutes)
            .unwrap_or(DEFAULT_UI_IDLE_MINUTES);
        if !(1..=720).contains(&idle_minutes) {
            problems.push("ui.idle_minutes must be 1 to 720".to_owned());
        }
        let order_max_age = matches!(orders, Some(OrderSourceConfig::Central))
            .then(|| Duration::from_secs(max_age_secs));
        let (Some(orders), true) = (orders, problems.is_empty()) else {
            return Err(ConfigError::Problems {
                path: shown.to_owned(),
                problems,
            });
        };
        Ok(Config {
            origin: shown.to_owned(),
            site_id: file.site.id,
            workstation: file.site.workstation,
            journal: resolve(&file.journal.path),
            orders,
            central,
            printers,
            scanners,
            api: ApiConfig {
                listen,
                token_file: resolve(&api.token_file.unwrap_or_else(|| PathBuf::from("api.token"))),
            },
            refresh: Duration::from_secs(refresh_secs),
            order_max_bytes: max_mib * 1024 * 1024,
            pair_window: Duration::from_secs(pair_window_secs),
            order_max_age,
            ui_idle: Duration::from_secs(idle_minutes * 60),
            scanner_profiles,
        })
    }
}

/// A TOML error as line, column and what is wrong, without the line's text or any quoted value:
/// a configuration can hold a token written inline, and messages reach logs and terminals.
fn toml_problem(text: &str, key: &str, err: &toml::de::Error) -> String {
    let message = crate::orders::record::without_values(err.message().trim());
    let problem = if key.is_empty() || key == "." {
        message
    } else {
        format!("{key}: {message}")
    };
    match err.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
            format!("line {line}, column {column}: {problem}")
        }
        None => problem,
    }
}

/// Minutes of inactivity after which a signed-in operator is signed out, unless
/// `[ui] idle_minutes` says otherwise.
pub const DEFAULT_UI_IDLE_MINUTES: u64 = 15;

/// Device profiles (printer models, scanners): the built-in ones, with a site's own in
/// `DIR/*.toml` beside the configuration file merged over them, files in name order (a site's
/// profile that `same` matches to a built-in one replaces it; the others come first, so a site's
/// profile of a vendor wins over a built-in one). A site file that does not parse is a problem
/// named with its path; the built-in ones always parse.
fn site_profiles<P>(
    base: &Path,
    dir: &str,
    embedded: &str,
    parse: fn(&str) -> Result<Vec<P>, String>,
    same: fn(&P, &P) -> bool,
    problems: &mut Vec<String>,
) -> Result<Vec<P>, String> {
    let mut known = parse(embedded)?;
    let Ok(entries) = std::fs::read_dir(base.join(dir)) else {
        return Ok(known);
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    let mut site: Vec<P> = Vec::new();
    for file in files {
        let parsed = std::fs::read_to_string(&file)
            .map_err(|e| e.to_string())
            .and_then(|text| parse(&text));
        match parsed {
            Ok(profiles) => {
                for profile in profiles {
                    site.retain(|p| !same(p, &profile));
                    site.push(profile);
                }
            }
            Err(problem) => problems.push(format!("{}: {problem}", file.display())),
        }
    }
    known.retain(|p| !site.iter().any(|s| same(s, p)));
    site.extend(known);
    Ok(site)
}

/// How old orders from the central service may be for a receipt or a first label, unless
/// `[orders] max_age_secs` says otherwise.
pub const DEFAULT_ORDER_MAX_AGE_SECS: u64 = 3600;

/// The largest order list read (file or central answer), in MiB, unless `[orders] max_mib`
/// says otherwise. Ten thousand orders are about 25 MiB.
pub const DEFAULT_ORDER_MAX_MIB: u64 = 64;

/// The demonstration orders shipped with coi-agent.
pub const DEMO_ORDERS: &str = include_str!("../config/demo-orders.json");

/// The embedded default configuration rooted in `dir` (created if missing), with the
/// demonstration orders written there, their collection moved to today and their expiry a month
/// away so that they can be printed and received now.
///
/// # Errors
/// The directory or the order file cannot be written.
pub fn demo(dir: &Path, now: jiff::Timestamp) -> Result<Config, ConfigError> {
    let shown = dir.display().to_string();
    let io = |source| ConfigError::Read {
        path: shown.clone(),
        cause: source,
    };
    // Private (the XDG rule for state directories): the journal will hold orders.
    std::os::unix::fs::DirBuilderExt::mode(std::fs::DirBuilder::new().recursive(true), 0o700)
        .create(dir)
        .map_err(io)?;
    let orders = dir.join("demo-orders.json");
    if !orders.exists() {
        let mut value: serde_json::Value =
            serde_json::from_str(DEMO_ORDERS).unwrap_or(serde_json::Value::Null);
        let scheduled = now.to_string();
        let expires = now
            .checked_add(jiff::SignedDuration::from_hours(24 * 30))
            .unwrap_or(now)
            .to_string();
        if let Some(list) = value["orders"].as_array_mut() {
            for order in list {
                order["collection"]["scheduled_for"] = serde_json::json!(scheduled);
                order["expires_at"] = serde_json::json!(expires);
            }
        }
        // Private: orders hold patient names (`check` refuses an order file others can read).
        use std::os::unix::fs::OpenOptionsExt as _;
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&orders)
            .and_then(|mut file| std::io::Write::write_all(&mut file, value.to_string().as_bytes()))
            .map_err(io)?;
    }
    Config::parse(
        DEFAULT,
        dir,
        &format!("the embedded default in {}", dir.display()),
    )
}

/// Everything about a loaded configuration that would stop `serve` or a device from working,
/// each named: a token file others can read, a missing order or token file, a journal
/// directory that cannot be written.
pub fn check(config: &Config) -> Vec<String> {
    let mut problems = Vec::new();
    if config.api.token_file.exists() {
        match crate::secret_file::read(&config.api.token_file) {
            Ok(_) => {}
            Err(problem @ crate::secret_file::SecretFileError::Empty(_)) => problems.push(format!(
                "api.token_file {problem} (delete it and serve makes a new one)"
            )),
            Err(problem) => problems.push(format!("api.token_file {problem}")),
        }
    } else if let Some(problem) = writable_dir(&config.api.token_file) {
        problems.push(format!(
            "api.token_file {} does not exist and cannot be created: {problem}",
            config.api.token_file.display()
        ));
    }
    if let Some(central) = &config.central
        && (config.orders == OrderSourceConfig::Central || central.token_file.exists())
        && let Err(problem) = crate::secret_file::read(&central.token_file)
    {
        problems.push(format!("central.token_file {problem}"));
    }
    if let OrderSourceConfig::File(path) = &config.orders {
        use std::os::unix::fs::PermissionsExt as _;
        match std::fs::metadata(path) {
            Err(err) => problems.push(format!("orders.file {}: {err}", path.display())),
            Ok(meta) if meta.permissions().mode() & 0o004 != 0 => problems.push(format!(
                "orders.file {} can be read by every user of this machine, and orders hold patient names and dates of birth: chmod o-r it (0640, group coi-agent)",
                path.display()
            )),
            Ok(_) => {}
        }
    }
    if let Some(problem) = writable_dir(&config.journal) {
        problems.push(format!(
            "journal.path {}: its directory cannot be written: {problem}",
            config.journal.display()
        ));
    }
    // A journal another user made (a command run as root before the service first started)
    // stops `serve`; say so now, naming whose it is.
    if config.journal.exists()
        && let Err(problem @ crate::journal::JournalError::NotWritable { .. }) =
            crate::journal::writable(&config.journal)
    {
        problems.push(format!("journal.path: {problem}"));
    }
    // Its audit key too: one this user cannot read stops `serve` the same way.
    let key = crate::journal::audit_key::path_for(&config.journal);
    match crate::journal::audit_key::AuditKey::load(&key) {
        Ok(_) | Err(crate::journal::audit_key::KeyError::Missing(_)) => {}
        Err(problem) => problems.push(format!("journal.path: {problem}")),
    }
    problems
}

/// Why files cannot be made beside `path`, if they cannot (tried by making one).
fn writable_dir(path: &Path) -> Option<String> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let probe = dir.join(format!(".coi-agent-check-{}", std::process::id()));
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
    {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            None
        }
        Err(err) => Some(err.to_string()),
    }
}

impl CentralConfig {
    /// The bearer token, read from its file.
    ///
    /// # Errors
    /// The file cannot be read or is empty.
    pub fn token(&self) -> Result<String, ConfigError> {
        crate::secret_file::read(&self.token_file).map_err(|problem| {
            // The problem names the file already: the key is named once, the path once.
            ConfigError::Invalid {
                path: "central.token_file".to_owned(),
                message: problem.to_string(),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_default_parses() {
        let config = Config::parse(DEFAULT, Path::new("/etc/coi-agent"), "default").unwrap();
        assert_eq!(config.site_id, "site-lab-1");
        assert_eq!(
            config.journal,
            PathBuf::from("/etc/coi-agent/journal.sqlite")
        );
        assert_eq!(
            config.orders,
            OrderSourceConfig::File(PathBuf::from("/etc/coi-agent/demo-orders.json"))
        );
    }

    #[test]
    fn toml_errors_name_the_line_but_never_its_text() {
        for (text, says) in [
            (
                DEFAULT.replace("[site]", "[site]\nsecret = s3cr3t-token"),
                "line ",
            ),
            (
                DEFAULT.replace("refresh_secs = 60", "refresh_secs = \"s3cr3t-token\""),
                "orders.refresh_secs: invalid type",
            ),
            (
                DEFAULT.replace("[site]", "[site]\ntoken = \"s3cr3t-token\""),
                "unknown field `token`",
            ),
        ] {
            let err = Config::parse(&text, Path::new("/"), "x.toml")
                .unwrap_err()
                .to_string();
            assert!(err.contains(says), "{err}");
            assert!(err.contains("line "), "{err}");
            assert!(!err.contains("s3cr3t"), "{err}");
        }
    }

    #[test]
    fn mistakes_are_named() {
        let broken = DEFAULT.replace("path = \"journal.sqlite\"", "paht = \"journal.sqlite\"");
        let err = Config::parse(&broken, Path::new("/"), "x.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("paht"), "{err}");
        let central_without = DEFAULT
            .replace("source = \"file\"", "source = \"central\"")
            .replace("[central]", "[unused]");
        assert!(Config::parse(&central_without, Path::new("/"), "x.toml").is_err());
        let bad_source = DEFAULT.replace("source = \"file\"", "source = \"ftp\"");
        let err = Config::parse(&bad_source, Path::new("/"), "x.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("\"ftp\" is not"), "{err}");
        let bad_profile = DEFAULT.replace("Zebra ZT411 300 dpi", "Zebra ZT411 300dpi");
        let err = Config::parse(&bad_profile, Path::new("/"), "x.toml")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("printer \"bag-labels\": unknown profile \"Zebra ZT411 300dpi\""),
            "{err}"
        );
    }
}
