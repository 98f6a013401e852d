//! The systemd notification protocol (sd_notify): `READY=1` once the agent serves,
//! `WATCHDOG=1` at half the watchdog interval, `STOPPING=1` on shutdown. A no-op when
//! `NOTIFY_SOCKET` is not set (not run by systemd with `Type=notify`).

use std::time::Duration;

/// Tells systemd the agent is ready.
pub fn ready() {
    send("READY=1\nSTATUS=serving");
}

/// Tells systemd the agent is stopping.
pub fn stopping() {
    send("STOPPING=1");
}

/// Feeds systemd's watchdog.
pub fn watchdog() {
    send("WATCHDOG=1");
}

/// How often to feed the watchdog: half of `WATCHDOG_USEC`, when systemd set one for this
/// process.
pub fn watchdog_interval() -> Option<Duration> {
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    if let Ok(pid) = std::env::var("WATCHDOG_PID")
        && pid.parse::<u32>().ok()? != std::process::id()
    {
        return None;
    }
    (usec > 0).then(|| Duration::from_micros(usec / 2))
}

fn send(message: &str) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let Ok(socket) = std::os::unix::net::UnixDatagram::unbound() else {
        return;
    };
    let bytes = path.as_encoded_bytes();
    let sent = match bytes.strip_prefix(b"@") {
        // An abstract socket name.
        Some(name) => {
            use std::os::linux::net::SocketAddrExt as _;
            std::os::unix::net::SocketAddr::from_abstract_name(name)
                .and_then(|addr| socket.send_to_addr(message.as_bytes(), &addr))
        }
        None => socket.send_to(message.as_bytes(), &path),
    };
    if let Err(problem) = sent {
        tracing::debug!(%problem, "sd_notify not delivered");
    }
}
