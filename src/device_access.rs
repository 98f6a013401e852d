//! What to say when a scanner or printer cannot be opened for lack of permission: the fix site
//! IT needs (the group and the udev rule), not the OS's bare "Permission denied".

/// The fix for a device the agent's user may not open.
pub const PERMISSION_HINT: &str = " — coi-agent opens devices through group coi-agent: the package's udev rule (/lib/udev/rules.d/60-coi-agent.rules) gives Zebra, Honeywell, Zebra/Symbol and Datalogic devices to that group; for another device add a rule with GROUP=\"coi-agent\", MODE=\"0660\" (never 0666), then replug it. Run by hand, run as user coi-agent (sudo -u coi-agent).";

/// [`PERMISSION_HINT`] when `kind` is a refused permission, else nothing.
pub fn hint(kind: std::io::ErrorKind) -> &'static str {
    if kind == std::io::ErrorKind::PermissionDenied {
        PERMISSION_HINT
    } else {
        ""
    }
}

/// [`hint`] for a serial port's error.
pub fn serial_hint(err: &serialport::Error) -> &'static str {
    match err.kind() {
        serialport::ErrorKind::Io(kind) => hint(kind),
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_refused_permission_gets_the_fix() {
        assert!(hint(std::io::ErrorKind::PermissionDenied).contains("60-coi-agent.rules"));
        assert_eq!(hint(std::io::ErrorKind::NotFound), "");
        let refused = serialport::Error::new(
            serialport::ErrorKind::Io(std::io::ErrorKind::PermissionDenied),
            "Permission denied",
        );
        assert!(serial_hint(&refused).contains("GROUP=\"coi-agent\""));
    }
}
