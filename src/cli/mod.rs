//! The command-line face: argument definitions (clap derive) and dispatch to one function per
//! command. Commands write to the writers they are given, so tests run exactly what the
//! binary runs.
//!
//! Exit status: 0 success, 1 the command ran and found invalid input (or failed), 2 usage
//! error (from clap).

mod devices;
mod isbt;
mod journal;
mod label;
mod operators;
mod orders;
mod print;
mod receive;
mod reconcile;
mod scan;
mod serve;

use std::ffi::OsString;
use std::io::Write;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// coi-agent: chain-of-identity labeling for cell and gene therapy.
#[derive(Debug, Parser)]
#[command(
    name = "coi-agent",
    version,
    about,
    long_about = None,
    after_help = "Commands that take --config FILE use, without it, /etc/coi-agent/coi-agent.toml \
if it exists, else the embedded default (file orders, a spool printer) with its state in \
$XDG_STATE_HOME/coi-agent (~/.local/state/coi-agent).\n\
Exit status: 0 done; 1 refused, invalid or failed (the reason on standard error, or in the \
JSON); 2 usage."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Read, check and build ISBT 128 data.
    Isbt {
        #[command(subcommand)]
        command: IsbtCommand,
    },
    /// Read a barcode scanner and print one line per scan, until interrupted (SIGINT or
    /// SIGTERM) or, for stdin:, until its input ends.
    Scan {
        /// The scanner: serial:///dev/ttyACM0?baud=9600&suffix=cr, tcp://HOST:PORT,
        /// tcp-listen://IP:PORT, hid://VID:PID, evdev:///dev/input/by-id/..., or stdin:.
        /// Parameters: suffix=cr|lf|crlf|tab|none, timeout_ms=N, max=N; serial also baud=N,
        /// parity=none|odd|even, flow=none|software|hardware, data_bits=N, stop_bits=N.
        #[arg(long, value_name = "URI")]
        source: String,
        /// One JSON object per line per scan instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Check scans against the orders in FILE, as a workstation at SITE doing STEP would: one
    /// verdict per scan. Exit 0 if every scan matches (a scan of one identifier counting with
    /// the next, which completes it), 1 otherwise.
    Reconcile {
        /// Orders as {"orders": [...]} (the order record of the central service).
        #[arg(long, value_name = "FILE")]
        orders: std::path::PathBuf,
        /// This workstation's site id, e.g. site-lab-1.
        #[arg(long, value_name = "SITE")]
        site: String,
        /// What the workstation is doing.
        #[arg(long, value_enum, value_name = "STEP")]
        step: StepArg,
        /// Which end of the order this site is; by default, whichever of the order's
        /// facilities has this site id.
        #[arg(long, value_enum, value_name = "ROLE")]
        role: Option<RoleArg>,
        /// Judge as at this time (RFC 3339, e.g. 2025-06-03T12:00:00Z) instead of now.
        #[arg(long, value_name = "TIME")]
        at: Option<jiff::Timestamp>,
        /// One JSON object per line per scan instead of text.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        typed: TypedArgs,
        /// Scanned data, as `isbt parse` takes it; a scan that carries one of the DIN and the
        /// COI identifier is completed by the next that carries the other.
        #[arg(required_unless_present = "typed", value_name = "DATA")]
        data: Vec<OsString>,
    },
    /// Receive bags at this site (the collection at the cell lab, the drug back at the
    /// apheresis site): each scan is checked against the journal's cached orders, recorded with
    /// its verdict, and reported to the central service (bag_received or scan_mismatch) — a bag
    /// is received once. DATA: those scans, exit 0 if every one matched; --source: a scanner,
    /// until interrupted.
    Receive {
        /// The configuration (default: /etc/coi-agent/coi-agent.toml, else the embedded default).
        #[arg(long, value_name = "FILE")]
        config: Option<std::path::PathBuf>,
        /// Who receives (staff badge or user id), carried in the journal and the events.
        #[arg(long, value_name = "ID")]
        operator: Option<String>,
        /// A scanner to read until interrupted, as `scan --source` takes it.
        #[arg(
            long,
            value_name = "URI",
            conflicts_with_all = ["data", "typed"],
            required_unless_present_any = ["data", "typed"]
        )]
        source: Option<String>,
        /// One JSON object per scan (as `reconcile --json`) instead of text.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        typed: TypedArgs,
        /// Scanned data, as `isbt parse` takes it; a scan that carries one of the DIN and the
        /// COI identifier is completed by the next that carries the other (within
        /// [scanning] pair_window_secs).
        #[arg(value_name = "DATA", conflicts_with = "typed")]
        data: Vec<OsString>,
    },
    /// The order cache: sync it from the configured source, or show one order.
    Orders {
        #[command(subcommand)]
        command: OrdersCommand,
    },
    /// The people who sign in to the screens: nurses, techs and admins.
    Operators {
        #[command(subcommand)]
        command: OperatorsCommand,
    },
    /// Custody events waiting for the central service.
    Outbox {
        #[command(subcommand)]
        command: OutboxCommand,
    },
    /// Labels: make one from a template and an order (ZPL and a PNG preview, every symbol
    /// proven by decoding), list the templates, or check them.
    Label {
        #[command(subcommand)]
        command: LabelCommand,
    },
    /// Print a label and report what the printer says happened: a ZPL file, or a label made
    /// from a template and an order (proven before it is sent). Exit 0 only when the printer
    /// confirms the label printed.
    Print {
        /// tcp://HOST:PORT (raw port 9100) or spool:///DIR.
        #[arg(long, value_name = "URI")]
        printer: String,
        /// The ZPL to print (^XA ... ^XZ).
        #[arg(
            long,
            value_name = "FILE",
            required_unless_present = "template",
            conflicts_with = "template"
        )]
        zpl: Option<std::path::PathBuf>,
        #[command(flatten)]
        label: LabelArgs,
        /// Print the label this many times (1-10: spare copies of a bag label are a mix-up
        /// waiting to happen).
        #[arg(long, value_name = "N", default_value_t = 1,
              value_parser = clap::value_parser!(u32).range(1..=MAX_COPIES))]
        copies: u32,
        /// A job id (default: a new UUID); the same id is never printed twice by one process.
        #[arg(long, value_name = "ID")]
        job_id: Option<String>,
        /// One JSON line: {"job_id", "state", "fault", "bytes"}.
        #[arg(long)]
        json: bool,
    },
    /// Printer tools.
    Printer {
        #[command(subcommand)]
        command: PrinterCommand,
    },
    /// The configuration: print the embedded default (every key, commented).
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// The journal: back it up.
    Journal {
        #[command(subcommand)]
        command: JournalCommand,
    },
    /// Check or export the journal's hash-chained audit trail.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Run the agent until SIGTERM or SIGINT: reads the configured scanners, keeps the order
    /// cache fresh, delivers custody events, owns the printers and serves the local JSON API
    /// (docs/local-api.md). Without --config: /etc/coi-agent/coi-agent.toml, else the
    /// embedded demonstration with its state in $XDG_STATE_HOME/coi-agent.
    Serve {
        /// The configuration (default: /etc/coi-agent/coi-agent.toml, else the embedded default).
        #[arg(long, value_name = "FILE")]
        config: Option<std::path::PathBuf>,
        /// text (for people; plain lines under systemd) or json (one object per line).
        #[arg(long, value_enum, value_name = "FORMAT", default_value = "text")]
        log_format: serve::LogFormat,
    },
    /// Load and check the configuration without starting anything: exit 0, or 1 with every
    /// problem named (printer profiles, scanner sources, token and journal files).
    CheckConfig {
        /// The configuration (default: /etc/coi-agent/coi-agent.toml, else the embedded default).
        #[arg(long, value_name = "FILE")]
        config: Option<std::path::PathBuf>,
    },
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell), e.g.
    /// `coi-agent completions bash > /etc/bash_completion.d/coi-agent`.
    Completions {
        #[arg(value_enum, value_name = "SHELL")]
        shell: clap_complete::Shell,
    },
    /// Tools for developers and tests (not for production use).
    #[command(hide = true)]
    Dev {
        #[command(subcommand)]
        command: DevCommand,
    },
    /// List serial ports, USB scanners and printers, usblp devices and keyboard-mode devices,
    /// with the URI to use each, and the configured printers with their live status.
    Devices {
        /// One JSON object per line per device instead of text.
        #[arg(long)]
        json: bool,
        /// The configuration whose printers to check (default: /etc/coi-agent/coi-agent.toml,
        /// when it exists).
        #[arg(long, value_name = "FILE")]
        config: Option<std::path::PathBuf>,
    },
}

/// The most copies one `print` makes.
const MAX_COPIES: i64 = 10;

/// A label to make: template, order, bag and resolution.
#[derive(Debug, clap::Args)]
pub struct LabelArgs {
    /// The template's name (see `label list`).
    #[arg(long, value_name = "NAME", requires_all = ["order", "coi"])]
    template: Option<String>,
    /// Orders as {"orders": [...]} (the file order source's format).
    #[arg(long, value_name = "FILE")]
    order: Option<std::path::PathBuf>,
    /// The COI identifier of the order, e.g. CHA999925000042.
    #[arg(long, value_name = "COI")]
    coi: Option<String>,
    /// Which bag of the collection (1-based); it becomes the DIN flags 0n.
    #[arg(long, value_name = "N", default_value_t = 1)]
    bag: u8,
    /// The printer's resolution (203, 300 or 600). `label render`: default 203. `print`:
    /// default what the printer reports (`~HI`), else 203; a label asked for at another
    /// resolution than the printer reports is refused.
    #[arg(long, value_name = "DPI", value_parser = parse_dpi)]
    dpi: Option<u32>,
    /// When the collection happened (RFC 3339); default now. It is printed and encoded.
    #[arg(long, value_name = "TIME")]
    collected_at: Option<jiff::Timestamp>,
    /// Read templates from this directory instead of the built-in ones.
    #[arg(long, value_name = "DIR")]
    templates: Option<std::path::PathBuf>,
}

fn parse_dpi(text: &str) -> Result<u32, String> {
    match text.parse::<u32>() {
        Ok(dpi) if crate::label::RESOLUTIONS.contains(&dpi) => Ok(dpi),
        _ => Err("203, 300 or 600".to_owned()),
    }
}

impl LabelArgs {
    fn request(&self) -> Option<label::Request<'_>> {
        Some(label::Request {
            templates: self.templates.as_deref(),
            template: self.template.as_deref()?,
            orders: self.order.as_deref()?,
            coi: self.coi.as_deref()?,
            bag: self.bag,
            dpi: self.dpi,
            collected_at: self.collected_at,
        })
    }
}

#[derive(Debug, Subcommand)]
pub enum LabelCommand {
    /// Make one label: writes the ZPL (to stdout unless --zpl or --png) and a 1-bit PNG
    /// preview; exit 1, with the reason, for an unknown template or COI, bad order data, a value
    /// that does not fit or a symbol that does not read back.
    Render {
        #[command(flatten)]
        label: LabelArgs,
        /// Write the ZPL here.
        #[arg(long, value_name = "OUT")]
        zpl: Option<std::path::PathBuf>,
        /// Write the PNG preview here.
        #[arg(long, value_name = "OUT")]
        png: Option<std::path::PathBuf>,
        /// One JSON line: template, version, dpi, bag, size in dots and each symbol with its
        /// payload (identifiers only, no patient data).
        #[arg(long)]
        json: bool,
    },
    /// Print bag N's label for a cached order at this workstation, as the chain of identity
    /// requires: only at the order's collection site and before the collection ships, and a
    /// second label for a bag only with --reprint. The job, the printer's verdict, the audit
    /// entry and the custody event (label_printed, label_reprinted, print_failed) go into the
    /// journal. Exit 0 only when the printer confirms the label.
    Print {
        /// The configuration (default: /etc/coi-agent/coi-agent.toml, else the embedded default).
        #[arg(long, value_name = "FILE")]
        config: Option<std::path::PathBuf>,
        /// The order's COI identifier, e.g. CHA999925000042.
        #[arg(long, value_name = "COI")]
        coi: String,
        /// Which bag of the collection (1-based).
        #[arg(long, value_name = "N")]
        bag: u8,
        /// The template's name (see `label list`).
        #[arg(long, value_name = "NAME", default_value = "apheresis-bag")]
        template: String,
        /// The configured printer's name (default: the first configured).
        #[arg(long, value_name = "NAME")]
        printer: Option<String>,
        /// Who prints it (staff badge or user id), carried in the journal and the event.
        #[arg(long, value_name = "ID")]
        operator: Option<String>,
        /// Print a second label for a bag that may already have one (a damaged label); needs
        /// --reason.
        #[arg(long, requires = "reason")]
        reprint: bool,
        /// Why the label is reprinted (audited and sent with label_reprinted).
        #[arg(long, value_name = "TEXT", requires = "reprint")]
        reason: Option<String>,
        /// When the collection happened (RFC 3339, to the minute); it is printed and encoded.
        /// Default: the time the collection's first label carries, else now. Every bag of a
        /// collection carries the same: another time is refused.
        #[arg(long, value_name = "TIME")]
        collected_at: Option<jiff::Timestamp>,
        /// One JSON line: job_id, state, fault, bytes, event, template, version, bag, dpi.
        #[arg(long)]
        json: bool,
    },
    /// The verify step: check the scan of a label just printed against its print job (same
    /// COI identifier, DIN and bag). The scan, its verdict and the custody event
    /// (label_verified or scan_mismatch) are recorded and the job marked verified or flagged.
    /// Exit 0 on a match, 1 otherwise.
    Verify {
        /// The configuration (default: /etc/coi-agent/coi-agent.toml, else the embedded default).
        #[arg(long, value_name = "FILE")]
        config: Option<std::path::PathBuf>,
        /// The print job the label came from (as `label print` reports it).
        #[arg(long, value_name = "ID")]
        job: String,
        /// Who scans it (staff badge or user id).
        #[arg(long, value_name = "ID")]
        operator: Option<String>,
        /// One JSON object instead of text (as `reconcile --json`).
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        typed: TypedArgs,
        /// The scanned data, as `isbt parse` takes it (the label's Data Matrix, or one of its
        /// barcodes: the DIN's then the COI's, or the reverse, each a scan).
        #[arg(
            value_name = "DATA",
            required_unless_present = "typed",
            conflicts_with = "typed"
        )]
        data: Option<OsString>,
    },
    /// Void a printed label that was taken off the bag and destroyed (wrong, damaged): the job
    /// no longer counts as the bag's label, cannot be verified, and label_voided goes to the
    /// central service with the reason. Exit 0 when voided.
    Void {
        /// The configuration (default: /etc/coi-agent/coi-agent.toml, else the embedded default).
        #[arg(long, value_name = "FILE")]
        config: Option<std::path::PathBuf>,
        /// The print job whose label is voided (as `label print` reports it).
        #[arg(long, value_name = "ID")]
        job: String,
        /// Why (audited and sent with label_voided).
        #[arg(long, value_name = "TEXT")]
        reason: String,
        /// Who voids it (staff badge or user id).
        #[arg(long, value_name = "ID")]
        operator: Option<String>,
        /// One JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// The templates: name, version, size.
    List {
        /// Read templates from this directory instead of the built-in ones.
        #[arg(long, value_name = "DIR")]
        templates: Option<std::path::PathBuf>,
    },
    /// Lay out each template (or NAME) at 203, 300 and 600 dpi with the demonstration orders
    /// and check it: geometry, text fit and every symbol decoded.
    Lint {
        name: Option<String>,
        /// Read templates from this directory instead of the built-in ones.
        #[arg(long, value_name = "DIR")]
        templates: Option<std::path::PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check the journal: SQLite's integrity, the audit chain (keyed with the audit key beside
    /// the journal) and its guards, every scan, print job and custody event against its entry;
    /// names the first finding. Exit 0 if intact, 1 if broken or not wholly checked.
    Verify {
        /// The configuration (default: /etc/coi-agent/coi-agent.toml, else the embedded default).
        #[arg(long, value_name = "FILE")]
        config: Option<std::path::PathBuf>,
        /// The journal file, in place of the configuration's (e.g. a copy).
        #[arg(long, value_name = "FILE")]
        db: Option<std::path::PathBuf>,
        /// An anchor held outside the machine: SEQ:HASH from a custody event's `audit` field as
        /// the central service recorded it. The entry must still have that hash (a trail
        /// rewritten since, even with every hash recomputed, does not).
        #[arg(long, value_name = "SEQ:HASH")]
        anchor: Vec<String>,
        /// An audit key file to check keyed entries with, beside the one next to the journal:
        /// the key of the journal a copy was taken from, or a key kept after it was replaced.
        #[arg(long, value_name = "FILE")]
        key: Vec<std::path::PathBuf>,
        /// One JSON object: intact, entries, broken.
        #[arg(long)]
        json: bool,
    },
    /// Write the audit trail for inspectors, oldest first.
    Export {
        /// The configuration (default: /etc/coi-agent/coi-agent.toml, else the embedded default).
        #[arg(long, value_name = "FILE")]
        config: Option<std::path::PathBuf>,
        /// The journal file, in place of the configuration's (e.g. a copy).
        #[arg(long, value_name = "FILE")]
        db: Option<std::path::PathBuf>,
        /// Only entries at or after this time (RFC 3339).
        #[arg(long, value_name = "TIME")]
        since: Option<jiff::Timestamp>,
        /// jsonl (one JSON object per line) or csv.
        #[arg(long, value_name = "FORMAT", default_value = "jsonl", value_parser = ["jsonl", "csv"])]
        format: String,
    },
}

/// Identifiers typed by a person (issue #17), instead of scanned data.
#[derive(Debug, clap::Args)]
pub struct TypedArgs {
    /// Type the identifiers as printed on the label: the DIN, then the COI identifier, each
    /// with its boxed check character (e.g. --typed "A9999 25 123456 9" "CH A9999 25 000042 Z").
    /// Both are needed; the check characters are verified before anything else.
    #[arg(long, num_args = 2, value_names = ["DIN", "COI"])]
    typed: Option<Vec<String>>,
    /// With --typed: the bag, chosen from the order's list (not needed for a one-bag order).
    #[arg(long, value_name = "N", requires = "typed", conflicts_with = "sample")]
    bag: Option<u8>,
    /// With --typed: the label is a sample tube's.
    #[arg(long, requires = "typed")]
    sample: bool,
}

impl TypedArgs {
    /// The data a scanner would have sent for the typed identifiers, or why they are refused;
    /// `None` when nothing was typed.
    fn data(&self) -> Option<Result<OsString, crate::typed::TypedError>> {
        let typed = self.typed.as_ref()?;
        let (din, coi) = (typed.first()?, typed.get(1)?);
        let chosen = match (self.bag, self.sample) {
            (_, true) => crate::typed::Chosen::Sample,
            (Some(n), false) => crate::typed::Chosen::Bag(n),
            (None, false) => crate::typed::Chosen::Unchosen,
        };
        Some(crate::typed::scan_data(din, coi, chosen).map(OsString::from))
    }
}

/// Says why typed identifiers were refused (nothing was looked up or recorded); exit 1.
fn refuse_typed(
    problem: &crate::typed::TypedError,
    json: bool,
    out: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    if json {
        let report = serde_json::json!({
            "verdict": "mismatch",
            "reason": problem.code(),
            "message": format!("Not checked, nothing recorded: {problem}."),
        });
        writeln!(out, "{report}")?;
    } else {
        writeln!(
            out,
            "MISMATCH ({}): Not checked, nothing recorded: {problem}.",
            problem.code()
        )?;
    }
    Ok(ExitCode::FAILURE)
}

/// The configuration file unless --config says otherwise.
const DEFAULT_CONFIG: &str = "/etc/coi-agent/coi-agent.toml";

#[derive(Debug, Subcommand)]
pub enum OrdersCommand {
    /// Fetch orders from the configured source (file, or the central service since the last
    /// sync) into the journal's cache. Exit 1 if any order was refused.
    Sync {
        /// The configuration (default: /etc/coi-agent/coi-agent.toml, else the embedded default).
        #[arg(long, value_name = "FILE")]
        config: Option<std::path::PathBuf>,
        /// Ask the central service for every order of this site, and drop cached orders it no
        /// longer serves (a file source is always read whole).
        #[arg(long)]
        full: bool,
        /// One JSON object: source, stored, refused.
        #[arg(long)]
        json: bool,
    },
    /// Show a cached order by its COI identifier (patient data only with --patient).
    Show {
        /// The configuration (default: /etc/coi-agent/coi-agent.toml, else the embedded default).
        #[arg(long, value_name = "FILE")]
        config: Option<std::path::PathBuf>,
        /// Also show the patient's name, date of birth and sponsor id.
        #[arg(long)]
        patient: bool,
        /// One JSON object, as `GET /api/v1/orders/{coi}` answers (each bag's label and
        /// receipt state included).
        #[arg(long)]
        json: bool,
        /// The COI identifier, e.g. CHA999925000042.
        #[arg(value_name = "COI")]
        coi: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the embedded default configuration: a starting point with every key explained.
    Default,
}

#[derive(Debug, Subcommand)]
pub enum JournalCommand {
    /// Write a consistent copy of the journal (while `serve` runs), mode 0600, then check the
    /// copy's audit trail. Exit 0 only if the copy was written and its audit trail is intact.
    Backup {
        /// The configuration (default: /etc/coi-agent/coi-agent.toml, else the embedded default).
        #[arg(long, value_name = "FILE")]
        config: Option<std::path::PathBuf>,
        /// The copy to write (must not exist).
        #[arg(long, value_name = "FILE")]
        to: std::path::PathBuf,
        /// An older audit key to check the copy with, beside the journal's own (a key kept
        /// after its file was lost and replaced).
        #[arg(long, value_name = "FILE")]
        key: Vec<std::path::PathBuf>,
        /// One JSON object: backup, bytes, and the copy's audit check.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum OperatorsCommand {
    /// Add an operator who may sign in to the screens. The PIN (6 or more digits) is read from
    /// standard input, not echoed on a terminal; only its Argon2id hash is kept.
    Add {
        /// The configuration (default: /etc/coi-agent/coi-agent.toml, else the embedded default).
        #[arg(long, value_name = "FILE")]
        config: Option<std::path::PathBuf>,
        /// Their name as the screens show it.
        #[arg(long, value_name = "NAME")]
        name: String,
        #[arg(long, value_enum, value_name = "ROLE")]
        role: OperatorRoleArg,
        /// Their badge or user id (letters, digits, '.', '_', '-').
        #[arg(value_name = "ID")]
        id: String,
    },
    /// List the operators: id, role, name, and whether active, locked out or disabled.
    List {
        /// The configuration (default: /etc/coi-agent/coi-agent.toml, else the embedded default).
        #[arg(long, value_name = "FILE")]
        config: Option<std::path::PathBuf>,
        /// One JSON object: {"operators": [...]}.
        #[arg(long)]
        json: bool,
    },
    /// Disable an operator: they can no longer sign in (kept, with what they recorded).
    Disable {
        /// The configuration (default: /etc/coi-agent/coi-agent.toml, else the embedded default).
        #[arg(long, value_name = "FILE")]
        config: Option<std::path::PathBuf>,
        #[arg(value_name = "ID")]
        id: String,
    },
    /// Enable a disabled operator again, or lift a lockout after wrong PINs (audited).
    Enable {
        /// The configuration (default: /etc/coi-agent/coi-agent.toml, else the embedded default).
        #[arg(long, value_name = "FILE")]
        config: Option<std::path::PathBuf>,
        #[arg(value_name = "ID")]
        id: String,
    },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum OperatorRoleArg {
    /// Apheresis nurse: the print station.
    Nurse,
    /// Cell-lab tech: the receipt station.
    Tech,
    /// Site admin: every screen.
    Admin,
}

impl From<OperatorRoleArg> for crate::operators::Role {
    fn from(role: OperatorRoleArg) -> crate::operators::Role {
        match role {
            OperatorRoleArg::Nurse => crate::operators::Role::Nurse,
            OperatorRoleArg::Tech => crate::operators::Role::Tech,
            OperatorRoleArg::Admin => crate::operators::Role::Admin,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum OutboxCommand {
    /// Counts of pending, delivered and parked events, and each pending or parked event with
    /// its attempts and the last answer it got. Exit 1 if any event is parked.
    Status {
        /// The configuration (default: /etc/coi-agent/coi-agent.toml, else the embedded default).
        #[arg(long, value_name = "FILE")]
        config: Option<std::path::PathBuf>,
        /// One JSON object: pending, delivered, parked (counts), oldest_pending, events.
        #[arg(long)]
        json: bool,
    },
    /// Put parked events back in line once their cause is fixed (a URL, a token, the data).
    Requeue {
        /// The configuration (default: /etc/coi-agent/coi-agent.toml, else the embedded default).
        #[arg(long, value_name = "FILE")]
        config: Option<std::path::PathBuf>,
        /// Every parked event.
        #[arg(
            long,
            conflicts_with = "event_ids",
            required_unless_present = "event_ids"
        )]
        all: bool,
        /// The parked events to requeue.
        #[arg(value_name = "EVENT_ID")]
        event_ids: Vec<String>,
    },
    /// Close a parked event deliberately: it is never sent (audited, with the reason).
    Ack {
        /// The configuration (default: /etc/coi-agent/coi-agent.toml, else the embedded default).
        #[arg(long, value_name = "FILE")]
        config: Option<std::path::PathBuf>,
        /// Why it is closed (e.g. "duplicate entered by hand at central, ticket 4711").
        #[arg(long, value_name = "TEXT")]
        reason: String,
        /// Who closes it (staff badge or user id).
        #[arg(long, value_name = "ID")]
        operator: Option<String>,
        #[arg(value_name = "EVENT_ID")]
        event_id: String,
    },
    /// Deliver every pending event now. Exit 1 if any stays pending or was parked.
    Flush {
        /// The configuration (default: /etc/coi-agent/coi-agent.toml, else the embedded default).
        #[arg(long, value_name = "FILE")]
        config: Option<std::path::PathBuf>,
        /// One JSON object: delivered, parked, pending.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum PrinterCommand {
    /// Ask a printer for its status (~HS, ~HQES). Exit 0 if it answers with no fault.
    Status {
        /// tcp://HOST:PORT or spool:///DIR.
        #[arg(long, value_name = "URI")]
        printer: String,
        /// One JSON line.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum DevCommand {
    /// A Zebra printer emulator on TCP, answering ~HS/~HQES/~HI; commands on standard input
    /// switch faults (fault media_out on), silence, slowness and dropped connections.
    PrinterEmulator {
        /// Where to listen, e.g. 127.0.0.1:9100.
        #[arg(long, value_name = "IP:PORT", default_value = "127.0.0.1:9100")]
        listen: String,
        /// How long each label takes to print.
        #[arg(long, value_name = "MS", default_value_t = 300)]
        print_delay_ms: u64,
        /// Also serve the printer on a new pseudo-terminal (a serial printer); its path is
        /// printed.
        #[arg(long)]
        serial: bool,
    },
    /// Print the manual page (roff), or with --dir write one page per command there
    /// (coi-agent.1, coi-agent-serve.1, ...), for the package.
    ManPage {
        #[arg(long, value_name = "DIR")]
        dir: Option<std::path::PathBuf>,
    },
    /// Append scan records to a journal, printing "ack ID" after each durable commit, until
    /// killed or COUNT are written (the crash tests' victim).
    JournalWriter {
        #[arg(long, value_name = "FILE")]
        db: std::path::PathBuf,
        #[arg(long, value_name = "COUNT")]
        count: Option<u64>,
    },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum StepArg {
    /// Scanning a label just printed, on the bag.
    Verify,
    /// Receiving a bag.
    Receipt,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum RoleArg {
    /// The apheresis site.
    Collection,
    /// The cell lab.
    Manufacturing,
}

#[derive(Debug, Subcommand)]
pub enum IsbtCommand {
    /// Parse scanned data: one result per argument. Exit 0 if every input is valid, 1 if any
    /// is not.
    ///
    /// Each DATA is what a scanner sends for one read, without its suffix: an optional AIM
    /// symbology identifier (]C0, ]C4, ]d1), then one ISBT 128 data structure, a concatenated
    /// pair, or a compound message (=+aabbb...). Data that begins with '-' follows '--'
    /// (`coi-agent isbt parse -- -A...`), or comes through --stdin.
    Parse {
        /// One JSON object per line per input instead of text.
        #[arg(long)]
        json: bool,
        /// Read one scan per line from standard input (CR LF or LF; a line over 4096 bytes is
        /// refused as too_long), after any DATA.
        #[arg(long)]
        stdin: bool,
        /// Scanned data, e.g. '=A99992212345600' (quote it: '&' and '<' are shell syntax).
        #[arg(required_unless_present = "stdin", value_name = "DATA")]
        data: Vec<OsString>,
    },
    /// Print the MOD 37-2 check character of a 13-character DIN or of a 15-character COI
    /// identifier (DS 040 content, without '&/'), alone on one line.
    Check {
        /// Print the two-digit Type 3 flags (60-96) that carry a DIN's check in its barcode.
        #[arg(long)]
        flags: bool,
        /// A DIN such as A999922123456, or a COI identifier such as CHA999925000042.
        #[arg(value_name = "VALUE")]
        value: String,
    },
}

/// Runs a parsed command line against the process's stdout and stderr.
pub fn main(cli: Cli) -> ExitCode {
    // Unlocked handles: `serve` logs from many threads, and a lock held here would stop them.
    let (mut stdout, mut stderr) = (std::io::stdout(), std::io::stderr());
    match run(cli, &mut stdout, &mut stderr) {
        Ok(code) => code,
        // A closed pipe (`coi-agent ... | head`) is the reader's choice, not a failure.
        Err(err) if is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            let _ = writeln!(stderr, "coi-agent: {}", describe(&err));
            ExitCode::FAILURE
        }
    }
}

/// An error and its causes, each said once: most messages already carry their cause's text,
/// and `{:#}` would repeat it ("…: No such file or directory (os error 2): No such file or
/// directory (os error 2)").
fn describe(err: &anyhow::Error) -> String {
    let mut said = err.to_string();
    for cause in err.chain().skip(1) {
        let cause = cause.to_string();
        if !said.contains(&cause) {
            said = format!("{said}: {cause}");
        }
    }
    said
}

/// Runs a command, writing results to `out` and diagnostics to `err`.
///
/// # Errors
/// Only I/O errors on the writers; invalid input is reported in the output and the exit code.
pub fn run(cli: Cli, out: &mut dyn Write, err: &mut dyn Write) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Isbt { command } => match command {
            IsbtCommand::Parse { json, stdin, data } => {
                let mut input = std::io::stdin().lock();
                isbt::parse(&data, stdin.then_some(&mut input as _), json, out)
            }
            IsbtCommand::Check { flags, value } => isbt::check(&value, flags, out, err),
        },
        Command::Scan { source, json } => scan::scan(&source, json, out, err),
        Command::Serve { config, log_format } => serve::serve(config.as_deref(), log_format, err),
        Command::CheckConfig { config } => serve::check_config(config.as_deref(), out, err),
        Command::Devices { json, config } => {
            // Without a configuration the built-in profiles do, and nothing is made.
            let default = std::path::Path::new(DEFAULT_CONFIG);
            let config = config.or_else(|| default.exists().then(|| default.to_owned()));
            devices::devices(json, config.as_deref(), out, err)
        }
        Command::Orders {
            command: OrdersCommand::Sync { config, full, json },
        } => orders::sync(&load_config(config, err)?, full, json, out, err),
        Command::Orders {
            command:
                OrdersCommand::Show {
                    config,
                    patient,
                    json,
                    coi,
                },
        } => orders::show(&load_config(config, err)?, &coi, (patient, json), out, err),
        Command::Operators {
            command:
                OperatorsCommand::Add {
                    config,
                    name,
                    role,
                    id,
                },
        } => operators::add(
            &load_config(config, err)?,
            &id,
            &name,
            role.into(),
            out,
            err,
        ),
        Command::Operators {
            command: OperatorsCommand::List { config, json },
        } => operators::list(&load_config(config, err)?, json, out),
        Command::Operators {
            command: OperatorsCommand::Disable { config, id },
        } => operators::disable(&load_config(config, err)?, &id, out, err),
        Command::Operators {
            command: OperatorsCommand::Enable { config, id },
        } => operators::enable(&load_config(config, err)?, &id, out, err),
        Command::Outbox {
            command: OutboxCommand::Status { config, json },
        } => orders::outbox_status(&load_config(config, err)?, json, out),
        Command::Outbox {
            command:
                OutboxCommand::Requeue {
                    config,
                    all,
                    event_ids,
                },
        } => orders::outbox_requeue(&load_config(config, err)?, all, &event_ids, out, err),
        Command::Outbox {
            command:
                OutboxCommand::Ack {
                    config,
                    reason,
                    operator,
                    event_id,
                },
        } => orders::outbox_ack(
            &load_config(config, err)?,
            &event_id,
            &reason,
            operator.as_deref(),
            out,
            err,
        ),
        Command::Outbox {
            command: OutboxCommand::Flush { config, json },
        } => orders::outbox_flush(&load_config(config, err)?, json, out),
        Command::Label {
            command:
                LabelCommand::Render {
                    label,
                    zpl,
                    png,
                    json,
                },
        } => match label.request() {
            Some(request) => {
                label::render(&request, zpl.as_deref(), png.as_deref(), json, out, err)
            }
            None => {
                writeln!(
                    err,
                    "coi-agent: label render needs --template, --order and --coi"
                )?;
                Ok(ExitCode::from(2))
            }
        },
        Command::Label {
            command:
                LabelCommand::Print {
                    config,
                    coi,
                    bag,
                    template,
                    printer,
                    operator,
                    reprint,
                    reason,
                    collected_at,
                    json,
                },
        } => label::print(
            &label::PrintRequest {
                config: &load_config(config, err)?,
                coi: &coi,
                bag,
                template: &template,
                printer: printer.as_deref(),
                operator: operator.as_deref(),
                reprint,
                reason: reason.as_deref(),
                collected_at,
            },
            json,
            out,
            err,
        ),
        Command::Label {
            command:
                LabelCommand::Verify {
                    config,
                    job,
                    operator,
                    json,
                    typed,
                    data,
                },
        } => {
            let (data, entry) = match (typed.data(), data) {
                (Some(Err(problem)), _) => return refuse_typed(&problem, json, out),
                (Some(Ok(data)), _) => (data, "typed"),
                (None, Some(data)) => (data, "verify"),
                (None, None) => anyhow::bail!("give the scanned DATA or --typed DIN COI"),
            };
            label::verify(
                &load_config(config, err)?,
                &job,
                operator.as_deref(),
                (data.as_encoded_bytes(), entry),
                json,
                out,
                err,
            )
        }
        Command::Label {
            command:
                LabelCommand::Void {
                    config,
                    job,
                    reason,
                    operator,
                    json,
                },
        } => label::void(
            &load_config(config, err)?,
            &job,
            &reason,
            operator.as_deref(),
            json,
            out,
            err,
        ),
        Command::Label {
            command: LabelCommand::List { templates },
        } => label::list(templates.as_deref(), out, err),
        Command::Label {
            command: LabelCommand::Lint { name, templates },
        } => label::lint(templates.as_deref(), name.as_deref(), out, err),
        Command::Print {
            printer,
            zpl,
            label,
            copies,
            job_id,
            json,
        } => {
            let format = match (zpl, label.request()) {
                (Some(path), _) => print::Format::File(path),
                (None, Some(request)) => print::Format::Template(request),
                (None, None) => {
                    writeln!(
                        err,
                        "coi-agent: print needs --zpl FILE or --template with --order and --coi"
                    )?;
                    return Ok(ExitCode::from(2));
                }
            };
            print::print(&printer, format, copies, job_id, json, out, err)
        }
        Command::Receive {
            config,
            operator,
            source,
            json,
            typed,
            data,
        } => {
            let (data, entry) = match typed.data() {
                Some(Err(problem)) => return refuse_typed(&problem, json, out),
                Some(Ok(data)) => (vec![data], "typed"),
                None => (data, "command line"),
            };
            receive::run(
                &receive::Options {
                    config: &load_config(config, err)?,
                    operator: operator.as_deref(),
                    source: source.as_deref(),
                    entry,
                    json,
                },
                &data,
                out,
                err,
            )
        }
        Command::Printer {
            command: PrinterCommand::Status { printer, json },
        } => print::status(&printer, json, out, err),
        Command::Dev {
            command:
                DevCommand::PrinterEmulator {
                    listen,
                    print_delay_ms,
                    serial,
                },
        } => print::emulator(&listen, print_delay_ms, serial, out, err),
        Command::Completions { shell } => {
            let mut command = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut command, "coi-agent", out);
            Ok(ExitCode::SUCCESS)
        }
        Command::Dev {
            command: DevCommand::ManPage { dir },
        } => {
            let command = <Cli as clap::CommandFactory>::command();
            match dir {
                Some(dir) => clap_mangen::generate_to(command, dir)?,
                None => clap_mangen::Man::new(command).render(out)?,
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Config {
            command: ConfigCommand::Default,
        } => {
            out.write_all(crate::config::DEFAULT.as_bytes())?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Journal {
            command:
                JournalCommand::Backup {
                    config,
                    to,
                    key,
                    json,
                },
        } => journal::backup(&journal_of(config, None, err)?, (&to, &key), json, out, err),
        Command::Audit {
            command:
                AuditCommand::Verify {
                    config,
                    db,
                    anchor,
                    key,
                    json,
                },
        } => journal::verify(
            &journal_of(config, db, err)?,
            (&anchor, &key),
            json,
            out,
            err,
        ),
        Command::Audit {
            command:
                AuditCommand::Export {
                    config,
                    db,
                    since,
                    format,
                },
        } => journal::export(
            &journal_of(config, db, err)?,
            since,
            format == "csv",
            out,
            err,
        ),
        Command::Dev {
            command: DevCommand::JournalWriter { db, count },
        } => journal::journal_writer(&db, count, out),
        Command::Reconcile {
            orders,
            site,
            step,
            role,
            at,
            json,
            typed,
            data,
        } => {
            let data = match typed.data() {
                Some(Err(problem)) => return refuse_typed(&problem, json, out),
                Some(Ok(data)) => vec![data],
                None => data,
            };
            let opts = reconcile::Options {
                orders: &orders,
                site: &site,
                step: match step {
                    StepArg::Verify => crate::reconcile::Step::Verify,
                    StepArg::Receipt => crate::reconcile::Step::Receipt,
                },
                role: role.map(|role| match role {
                    RoleArg::Collection => crate::reconcile::Role::Collection,
                    RoleArg::Manufacturing => crate::reconcile::Role::Manufacturing,
                }),
                at,
                json,
            };
            reconcile::run(&opts, &data, out, err)
        }
    }
}

/// The one kind of runtime the commands use: two workers (a workstation has few cores), with
/// timers and I/O.
/// The journal a command reads: `--db` if given, else the one the configuration names.
fn journal_of(
    config: Option<std::path::PathBuf>,
    db: Option<std::path::PathBuf>,
    err: &mut dyn Write,
) -> anyhow::Result<std::path::PathBuf> {
    match db {
        Some(db) => Ok(db),
        None => Ok(load_config(config, err)?.journal),
    }
}

/// The configuration a command uses: `--config FILE`; without it
/// `/etc/coi-agent/coi-agent.toml` if that exists, else the embedded default (file orders, a
/// spool printer) with its state in the user's state directory, announced on `err`.
fn load_config(
    config: Option<std::path::PathBuf>,
    err: &mut dyn Write,
) -> anyhow::Result<crate::config::Config> {
    Ok(resolve_config(config.as_deref(), err)?.0)
}

/// [`load_config`], and whether it is the embedded default.
fn resolve_config(
    config: Option<&std::path::Path>,
    err: &mut dyn Write,
) -> anyhow::Result<(crate::config::Config, bool)> {
    if let Some(path) = config {
        return Ok((crate::config::Config::load(path)?, false));
    }
    let system = std::path::Path::new(DEFAULT_CONFIG);
    // A system configuration this user may not look at is still the one meant: its error is
    // shown, never quietly replaced by the demonstration.
    if system.try_exists().unwrap_or(true) {
        return Ok((crate::config::Config::load(system)?, false));
    }
    let Some(dir) = state_dir() else {
        anyhow::bail!(
            "no {DEFAULT_CONFIG}, and neither $XDG_STATE_HOME nor $HOME for the embedded default's state: give --config FILE"
        );
    };
    writeln!(
        err,
        "coi-agent: no {DEFAULT_CONFIG} and no --config: the embedded default (file orders, spool printer), its state in {}",
        dir.display()
    )?;
    Ok((crate::config::demo(&dir, jiff::Timestamp::now())?, true))
}

/// `$XDG_STATE_HOME/coi-agent`, else `$HOME/.local/state/coi-agent` (the XDG base directory
/// rule: a relative `$XDG_STATE_HOME` is ignored).
fn state_dir() -> Option<std::path::PathBuf> {
    let absolute = |name: &str| {
        std::env::var_os(name)
            .map(std::path::PathBuf::from)
            .filter(|p| p.is_absolute())
    };
    absolute("XDG_STATE_HOME")
        .or_else(|| absolute("HOME").map(|home| home.join(".local/state")))
        .map(|dir| dir.join("coi-agent"))
}

fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    #[test]
    fn an_error_says_each_cause_once() {
        let io = std::io::Error::from(std::io::ErrorKind::NotFound);
        let shown = io.to_string();
        let err = anyhow::Error::new(io).context(format!("read /x.toml: {shown}"));
        assert_eq!(super::describe(&err), format!("read /x.toml: {shown}"));
        let err = anyhow::Error::new(std::io::Error::from(std::io::ErrorKind::NotFound))
            .context("journal backup");
        assert_eq!(super::describe(&err), format!("journal backup: {shown}"));
    }

    use super::*;

    #[test]
    fn definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn parse_needs_data() {
        let res = Cli::try_parse_from(["coi-agent", "isbt", "parse"]);
        assert_eq!(res.unwrap_err().exit_code(), 2);
    }

    #[test]
    fn parse_takes_json_and_several_inputs() {
        let cli =
            Cli::try_parse_from(["coi-agent", "isbt", "parse", "--json", "=A", "&/X"]).unwrap();
        let Command::Isbt {
            command: IsbtCommand::Parse { json, stdin, data },
        } = cli.command
        else {
            panic!("expected isbt parse, got {cli:?}");
        };
        assert!(json);
        assert!(!stdin);
        assert_eq!(data, vec![OsString::from("=A"), OsString::from("&/X")]);
    }

    #[test]
    fn check_takes_flags() {
        let cli = Cli::try_parse_from(["coi-agent", "isbt", "check", "--flags", "G123417654321"])
            .unwrap();
        assert!(matches!(
            cli.command,
            Command::Isbt {
                command: IsbtCommand::Check { flags: true, .. }
            }
        ));
    }
}
