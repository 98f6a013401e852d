//! `coi-agent isbt parse` and `coi-agent isbt check`: the ISBT 128 core from the command line,
//! as text for people and as JSON lines for site IT and integrators.
//!
//! The JSON shapes are a promise to scripts: one object per input,
//! `{"input", "ok": true, "symbology", "structures": [...]}` or `{"input", "ok": false, "error"}`.

use std::ffi::OsString;
use std::io::{BufRead as _, Write};
use std::process::ExitCode;

use serde_json::{Map, Value as Json, json};

use crate::isbt128::coi::CoiId;
use crate::isbt128::din::Din;
use crate::isbt128::message::{self, Message};
use crate::isbt128::structure::{Structure, Value};

/// The longest line `isbt parse --stdin` reads as one scan: far beyond any ISBT 128 read (a
/// full compound message is a few hundred characters), so only a stream that is not scans hits
/// it, and memory stays bounded.
pub const MAX_STDIN_LINE: usize = 4096;

/// Parses each input, then (with `lines`) each line read from it; exit 0 when all are valid
/// ISBT 128, 1 otherwise.
pub(super) fn parse(
    inputs: &[OsString],
    lines: Option<&mut dyn std::io::BufRead>,
    json: bool,
    out: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let mut all_valid = true;
    for input in inputs {
        all_valid &= parse_one(&os_bytes(input), json, out)?;
    }
    if let Some(lines) = lines {
        let mut line = Vec::new();
        loop {
            line.clear();
            // The line's CR LF is not part of the scan: room for it beyond the limit.
            let read = std::io::Read::take(&mut *lines, MAX_STDIN_LINE as u64 + 2)
                .read_until(b'\n', &mut line)?;
            if read == 0 {
                break;
            }
            let complete = line.last() == Some(&b'\n');
            if complete {
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
            }
            if line.len() > MAX_STDIN_LINE {
                // Not a scan: say so once, and skip the rest of the line unread into memory.
                if !complete {
                    skip_line(lines)?;
                }
                all_valid = false;
                if json {
                    let said = json!({
                        "ok": false,
                        "error": format!("a line longer than {MAX_STDIN_LINE} bytes is not one scan"),
                        "error_kind": "too_long",
                    });
                    writeln!(out, "{said}")?;
                } else {
                    writeln!(
                        out,
                        "(a line of more than {MAX_STDIN_LINE} bytes)\n  INVALID: not one scan"
                    )?;
                }
                continue;
            }
            all_valid &= parse_one(&line, json, out)?;
        }
    }
    Ok(if all_valid {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Consumes input up to and including the next newline, a buffer at a time.
fn skip_line(lines: &mut dyn std::io::BufRead) -> std::io::Result<()> {
    loop {
        let buf = lines.fill_buf()?;
        if buf.is_empty() {
            return Ok(());
        }
        match buf.iter().position(|&b| b == b'\n') {
            Some(i) => {
                lines.consume(i + 1);
                return Ok(());
            }
            None => {
                let n = buf.len();
                lines.consume(n);
            }
        }
    }
}

/// Parses one read and writes its result; true when it is valid.
fn parse_one(bytes: &[u8], json: bool, out: &mut dyn Write) -> anyhow::Result<bool> {
    let res = message::parse(bytes);
    if json {
        let line = match &res {
            Ok(message) => message_json(bytes, message),
            Err(error) => json!({
                "input": String::from_utf8_lossy(bytes),
                "ok": false,
                "error": error.to_string(),
                "error_kind": error.kind(),
            }),
        };
        writeln!(out, "{line}")?;
    } else {
        write_text(out, bytes, &res)?;
    }
    Ok(res.is_ok())
}

/// Prints the check character of a DIN or COI identifier, or a DIN's Type 3 flags.
pub(super) fn check(
    value: &str,
    flags: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let res = match (value.chars().count(), flags) {
        (13, false) => Din::parse(value).map(|din| din.check_character().to_string()),
        (13, true) => Din::parse(value).map(|din| din.check_flags().to_string()),
        (15, false) => CoiId::parse(value).map(|coi| coi.check_character().to_string()),
        (15, true) => {
            writeln!(
                err,
                "coi-agent: --flags applies to a 13-character DIN, not a COI identifier"
            )?;
            return Ok(ExitCode::FAILURE);
        }
        (n, _) => {
            writeln!(
                err,
                "coi-agent: expected a 13-character DIN or a 15-character COI identifier, \
                 found {n} characters"
            )?;
            return Ok(ExitCode::FAILURE);
        }
    };
    match res {
        Ok(text) => {
            writeln!(out, "{text}")?;
            Ok(ExitCode::SUCCESS)
        }
        Err(error) => {
            writeln!(err, "coi-agent: {error}")?;
            Ok(ExitCode::FAILURE)
        }
    }
}

#[cfg(unix)]
fn os_bytes(input: &OsString) -> Vec<u8> {
    use std::os::unix::ffi::OsStrExt as _;
    input.as_bytes().to_vec()
}

#[cfg(not(unix))]
fn os_bytes(input: &OsString) -> Vec<u8> {
    input.to_string_lossy().into_owned().into_bytes()
}

fn message_json(input: &[u8], message: &Message<'_>) -> Json {
    json!({
        "input": String::from_utf8_lossy(input),
        "ok": true,
        "symbology": message.symbology.map(|s| s.as_str().to_owned()),
        "structures": message.structures.iter().map(structure_json).collect::<Vec<_>>(),
    })
}

/// One entry of `structures`: identity, text, and the typed fields of its kind.
pub(crate) fn structure_json(structure: &Structure<'_>) -> Json {
    let mut entry = Map::new();
    let mut put = |key: &str, value: Json| {
        entry.insert(key.to_owned(), value);
    };
    put("number", json!(structure.spec.number));
    put("name", json!(structure.spec.name));
    put("data_identifier", json!(structure.data_identifier()));
    put("content", json!(structure.content()));
    let interpretation = match structure.value {
        Value::NotInterpreted => "not_interpreted",
        Value::National => "national",
        _ => "interpreted",
    };
    put("interpretation", json!(interpretation));
    if structure.spec.retired {
        put("retired", json!(true));
    }
    match structure.value {
        Value::Donation(donation) => {
            put("din", json!(donation.din().as_str()));
            put("flags", json!(donation.flags().as_str()));
            put("flag_kind", json!(donation.flags().kind().as_str()));
            put(
                "check_char",
                json!(donation.din().check_character().to_string()),
            );
        }
        Value::Coi(coi) => {
            put("coi", json!(coi.as_str()));
            put("check_char", json!(coi.check_character().to_string()));
        }
        Value::ProductCode(product) => {
            put("product_code", json!(product.description_code()));
            put(
                "collection_type",
                json!(product.collection_type().map(String::from)),
            );
            put("division", json!(product.division()));
            if let Some(pack) = product.pack_code() {
                put("pack_code", json!(pack));
            }
        }
        Value::Date(role, date) => {
            put("date", json!(date.to_string()));
            put("role", json!(role.as_str()));
        }
        Value::DateTime(role, at) => {
            put("date", json!(at.to_string()));
            put("role", json!(role.as_str()));
        }
        Value::FlexibleDateTime(flexible) => {
            put("date", json!(flexible.at.to_string()));
            let zone = match flexible.zone {
                crate::isbt128::date::ZoneFlag::Local => "local",
                crate::isbt128::date::ZoneFlag::Utc => "utc",
            };
            put("zone", json!(zone));
            put("role", json!(flexible.role().map(|r| r.as_str())));
            put("time_type", json!(format!("{:02}", flexible.time_type())));
        }
        Value::PatientDateOfBirth(birth) => {
            put("date", json!(birth.date().to_string()));
            put("location_code", json!(format!("{:02}", birth.location())));
        }
        Value::PatientId(patient) => {
            put("patient_id", json!(patient.id()));
            put("location_code", json!(format!("{:02}", patient.location())));
        }
        Value::ExpirationMonth(month) => {
            put(
                "month",
                json!(format!("{:04}-{:02}", month.year(), month.month())),
            );
        }
        Value::CompoundHeader(header) => {
            put("count", json!(header.count()));
            put("sequence", json!(format!("{:03}", header.sequence())));
        }
        Value::BloodGroups(groups) => {
            put("blood_group", json!(groups.group_or_message()));
            put("phenotype", json!(groups.phenotype()));
        }
        Value::ProductDivisions(divisions) => put("divisions", json!(divisions.as_str())),
        Value::NotInterpreted | Value::National => {}
    }
    Json::Object(entry)
}

pub(crate) fn write_text(
    out: &mut dyn Write,
    input: &[u8],
    res: &Result<Message<'_>, crate::isbt128::error::Isbt128Error>,
) -> std::io::Result<()> {
    // Escape the input so control bytes from a scanner never reach the terminal.
    let shown: String = input
        .iter()
        .flat_map(|&b| std::ascii::escape_default(b))
        .map(char::from)
        .collect();
    let message = match res {
        Ok(message) => message,
        Err(error) => return writeln!(out, "{shown}\n  INVALID: {error}"),
    };
    let n = message.structures.len();
    let symbology = match message.symbology {
        Some(s) => format!(
            ", symbology {} ({})",
            s.as_str(),
            s.name().unwrap_or("other")
        ),
        None => String::new(),
    };
    writeln!(
        out,
        "{shown}\n  valid: {n} structure{}{symbology}",
        if n == 1 { "" } else { "s" }
    )?;
    for structure in &message.structures {
        writeln!(
            out,
            "  {} {}: {}",
            structure.data_identifier(),
            structure.spec,
            describe(structure)
        )?;
    }
    Ok(())
}

fn describe(structure: &Structure<'_>) -> String {
    match structure.value {
        Value::Donation(d) => format!(
            "DIN {} [{}], flags {} ({})",
            d.din().grouped(),
            d.din().check_character(),
            d.flags(),
            d.flags().kind().as_str().replace('_', " ")
        ),
        Value::Coi(coi) => format!("COI {} [{}]", coi.grouped(), coi.check_character()),
        Value::ProductCode(p) => match (p.collection_type(), p.division()) {
            (Some(t), Some(ds)) => {
                format!("{} collection type {t} division {ds}", p.description_code())
            }
            _ => format!("{} {}", p.description_code(), p.tds()),
        },
        Value::Date(_, date) => date.to_string(),
        Value::DateTime(_, at) => at.to_string().replace('T', " "),
        Value::FlexibleDateTime(f) => format!("{} ({:?}), type {:02}", f.at, f.zone, f.time_type()),
        Value::PatientDateOfBirth(b) => b.date().to_string(),
        Value::PatientId(p) => p.id().to_owned(),
        Value::ExpirationMonth(m) => format!("{:04}-{:02}", m.year(), m.month()),
        Value::CompoundHeader(h) => format!("{} structures follow", h.count()),
        Value::BloodGroups(g) => format!("code {}", g.as_str()),
        Value::ProductDivisions(d) => d.as_str().to_owned(),
        Value::NotInterpreted => format!("{} (recognised, not interpreted)", structure.content()),
        Value::National => format!("{} (not defined by ICCBBA)", structure.content()),
    }
}
