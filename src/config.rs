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
    pub site_id: String,
    pub workstation: String,
    pub journal: PathBuf,
    pub orders: OrderSourceConfig,
    pub central: Option<CentralConfig>,
    pub printers: Vec<PrinterConfig>,
}

/// A printer the workstation uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrinterConfig {
    pub name: String,
    /// As `coi-agent print --printer` takes it; a relative spool directory is made absolute.
    pub uri: String,
    /// A model from drivers/printers.toml.
    pub profile: Option<String>,
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
}

/// Why a configuration is unusable.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("read {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
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
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CentralSection {
    url: String,
    token_file: PathBuf,
    timeout_secs: Option<u64>,
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
            source,
        })?;
        Config::parse(
            &text,
            path.parent().unwrap_or(Path::new(".")),
            &path.display().to_string(),
        )
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
        let file: File = toml::from_str(text).map_err(|e| invalid(e.to_string()))?;
        if file.site.id.trim().is_empty() {
            return Err(invalid("site.id is empty".to_owned()));
        }
        let resolve = |p: &Path| {
            if p.is_absolute() {
                p.to_owned()
            } else {
                base.join(p)
            }
        };
        let orders = match (file.orders.source.as_str(), &file.orders.file) {
            ("file", Some(path)) => OrderSourceConfig::File(resolve(path)),
            ("file", None) => {
                return Err(invalid(
                    "orders.source = \"file\" needs orders.file".to_owned(),
                ));
            }
            ("central", _) => OrderSourceConfig::Central,
            (other, _) => {
                return Err(invalid(format!(
                    "orders.source {other:?} is not \"file\" or \"central\""
                )));
            }
        };
        let central = file.central.map(|c| CentralConfig {
            url: c.url,
            token_file: resolve(&c.token_file),
            timeout: Duration::from_secs(c.timeout_secs.unwrap_or(10).clamp(1, 300)),
        });
        if orders == OrderSourceConfig::Central && central.is_none() {
            return Err(invalid(
                "orders.source = \"central\" needs a [central] section".to_owned(),
            ));
        }
        let mut printers = Vec::with_capacity(file.printers.len());
        for printer in file.printers {
            let uri = match printer.uri.strip_prefix("spool://") {
                Some(dir) if !dir.starts_with('/') => {
                    format!("spool://{}", resolve(Path::new(dir)).display())
                }
                _ => printer.uri,
            };
            crate::printer::transport::PrinterUri::parse(&uri)
                .map_err(|e| invalid(format!("printer {:?}: {e}", printer.name)))?;
            if let Some(model) = &printer.profile {
                // A misspelt model must not silently lose the printer's resolution.
                let known = crate::printer::profiles::parse(crate::printer::profiles::EMBEDDED)
                    .map_err(invalid)?;
                if crate::printer::profiles::by_model(&known, model).is_none() {
                    let models: Vec<&str> = known.iter().map(|p| p.model.as_str()).collect();
                    return Err(invalid(format!(
                        "printer {:?}: unknown profile {model:?} (drivers/printers.toml has: {})",
                        printer.name,
                        models.join(", ")
                    )));
                }
            }
            printers.push(PrinterConfig {
                name: printer.name,
                uri,
                profile: printer.profile,
            });
        }
        Ok(Config {
            site_id: file.site.id,
            workstation: file.site.workstation,
            journal: resolve(&file.journal.path),
            orders,
            central,
            printers,
        })
    }
}

impl CentralConfig {
    /// The bearer token, read from its file.
    ///
    /// # Errors
    /// The file cannot be read or is empty.
    pub fn token(&self) -> Result<String, ConfigError> {
        let shown = self.token_file.display().to_string();
        let text =
            std::fs::read_to_string(&self.token_file).map_err(|source| ConfigError::Read {
                path: shown.clone(),
                source,
            })?;
        let token = text.trim().to_owned();
        if token.is_empty() {
            return Err(ConfigError::Invalid {
                path: shown,
                message: "the token file is empty".to_owned(),
            });
        }
        Ok(token)
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
