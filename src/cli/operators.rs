//! `coi-agent operators add|list|disable`: who may sign in to the screens (issue #12). The PIN
//! is read from standard input (not echoed on a terminal) and only its Argon2id hash is kept.

use std::io::{BufRead as _, Write};
use std::process::ExitCode;

use crate::config::Config;
use crate::journal::Journal;
use crate::operators::{self, Role};

/// Reads the PIN: one line from standard input, twice (to confirm) on a terminal.
fn read_pin(err: &mut dyn Write) -> anyhow::Result<String> {
    let stdin = std::io::stdin();
    let terminal = std::io::IsTerminal::is_terminal(&stdin);
    let read = |prompt: &str, err: &mut dyn Write| -> anyhow::Result<String> {
        let mut line = String::new();
        if terminal {
            write!(err, "{prompt}")?;
            err.flush()?;
            let fd = std::os::fd::AsFd::as_fd(&stdin);
            let was = crate::sys::set_echo(fd, false)?;
            let res = stdin.lock().read_line(&mut line);
            let _ = crate::sys::set_echo(fd, was);
            writeln!(err)?;
            res?;
        } else {
            stdin.lock().read_line(&mut line)?;
        }
        Ok(line.trim_end_matches(['\n', '\r']).to_owned())
    };
    let pin = read("PIN (6 or more digits): ", err)?;
    if terminal && read("PIN again: ", err)? != pin {
        anyhow::bail!("the two PINs differ: nothing recorded");
    }
    Ok(pin)
}

pub(super) fn add(
    config: &Config,
    id: &str,
    name: &str,
    role: Role,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let checked = operators::check_id(id).and_then(|()| operators::check_name(name));
    if let Err(problem) = checked {
        writeln!(err, "coi-agent: operator not added: {problem}")?;
        return Ok(ExitCode::FAILURE);
    }
    let pin = read_pin(err)?;
    if let Err(problem) = operators::check_new_pin(&pin) {
        writeln!(err, "coi-agent: operator not added: {problem}")?;
        return Ok(ExitCode::FAILURE);
    }
    let hash = match operators::hash_pin(&pin) {
        Ok(hash) => hash,
        Err(problem) => {
            writeln!(err, "coi-agent: operator not added: {problem}")?;
            return Ok(ExitCode::FAILURE);
        }
    };
    let mut journal = Journal::open(&config.journal)?;
    match journal.add_operator(id, name, role, &hash, None)? {
        Ok(()) => {
            writeln!(out, "added operator {id} ({})", role.as_str())?;
            Ok(ExitCode::SUCCESS)
        }
        Err(problem) => {
            writeln!(err, "coi-agent: operator not added: {problem}")?;
            Ok(ExitCode::FAILURE)
        }
    }
}

pub(super) fn list(config: &Config, json: bool, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    let journal = Journal::open(&config.journal)?;
    let all = journal.operators()?;
    if json {
        writeln!(out, "{}", serde_json::json!({ "operators": all }))?;
        return Ok(ExitCode::SUCCESS);
    }
    let now = jiff::Timestamp::now();
    for op in &all {
        let state = match (&op.disabled_at, op.locked_at(now)) {
            (Some(at), _) => format!("disabled {at}"),
            (None, Some(until)) => format!("locked out until {until}"),
            (None, None) => "active".to_owned(),
        };
        writeln!(out, "{}\t{}\t{}\t{state}", op.id, op.role.as_str(), op.name)?;
    }
    if all.is_empty() {
        writeln!(
            out,
            "no operators (add one: coi-agent operators add ID --name NAME --role nurse|tech|admin)"
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

pub(super) fn disable(
    config: &Config,
    id: &str,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let mut journal = Journal::open(&config.journal)?;
    match journal.disable_operator(id, None)? {
        Ok(()) => {
            writeln!(
                out,
                "operator {id} disabled (signed out of the screens at their next action, or within 10 s on an open screen)"
            )?;
            Ok(ExitCode::SUCCESS)
        }
        Err(problem) => {
            writeln!(err, "coi-agent: {problem}")?;
            Ok(ExitCode::FAILURE)
        }
    }
}

pub(super) fn enable(
    config: &Config,
    id: &str,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let mut journal = Journal::open(&config.journal)?;
    match journal.enable_operator(id, None)? {
        Ok(()) => {
            writeln!(out, "operator {id} enabled (any lockout lifted)")?;
            Ok(ExitCode::SUCCESS)
        }
        Err(problem) => {
            writeln!(err, "coi-agent: {problem}")?;
            Ok(ExitCode::FAILURE)
        }
    }
}
