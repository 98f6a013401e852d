//! Serial scanners (RS-232, and USB CDC-ACM scanners at `/dev/ttyACM*`), read on a dedicated
//! thread because the serialport crate blocks. Unplugging ends the read with an error; the
//! port is then reopened with backoff until the device is back.

use std::time::Duration;

use serialport::SerialPort;
use tokio::sync::{mpsc, watch};

use super::source::{Flow, Parity, SerialSettings};
use super::{Backoff, Input, pause_or_stop};

/// How long one read waits before checking for shutdown.
const READ_TIMEOUT: Duration = Duration::from_millis(50);

pub(super) fn read(
    settings: SerialSettings,
    tx: mpsc::Sender<Input>,
    shutdown: watch::Receiver<bool>,
) {
    let path = settings.path.display().to_string();
    let mut backoff = Backoff::new();
    let mut last_failure = None;
    while !*shutdown.borrow() {
        match open(&settings) {
            Ok(mut port) => {
                backoff.reset();
                last_failure = None;
                let detail = format!("{path} at {} baud", settings.baud);
                if tx.blocking_send(Input::Connected(detail)).is_err() {
                    return;
                }
                let Some(reason) = read_port(port.as_mut(), &tx, &shutdown) else {
                    return;
                };
                if tx
                    .blocking_send(Input::Disconnected(format!("{path}: {reason}")))
                    .is_err()
                {
                    return;
                }
            }
            Err(err) => {
                // Report a failure once, not every retry.
                let reason = format!("open {path}: {err}");
                if last_failure.as_ref() != Some(&reason) {
                    if tx.blocking_send(Input::Failed(reason.clone())).is_err() {
                        return;
                    }
                    last_failure = Some(reason);
                }
            }
        }
        if pause_or_stop(backoff.next_delay(), &shutdown) {
            return;
        }
    }
}

fn open(settings: &SerialSettings) -> serialport::Result<Box<dyn SerialPort>> {
    let path = settings.path.to_string_lossy();
    serialport::new(path, settings.baud)
        .timeout(READ_TIMEOUT)
        .parity(match settings.parity {
            Parity::None => serialport::Parity::None,
            Parity::Odd => serialport::Parity::Odd,
            Parity::Even => serialport::Parity::Even,
        })
        .flow_control(match settings.flow {
            Flow::None => serialport::FlowControl::None,
            Flow::Software => serialport::FlowControl::Software,
            Flow::Hardware => serialport::FlowControl::Hardware,
        })
        .data_bits(match settings.data_bits {
            5 => serialport::DataBits::Five,
            6 => serialport::DataBits::Six,
            7 => serialport::DataBits::Seven,
            _ => serialport::DataBits::Eight,
        })
        .stop_bits(match settings.stop_bits {
            2 => serialport::StopBits::Two,
            _ => serialport::StopBits::One,
        })
        .open()
}

/// Forwards bytes until the port fails (`Some(reason)`) or shutdown or a closed channel
/// (`None`).
fn read_port(
    port: &mut dyn SerialPort,
    tx: &mpsc::Sender<Input>,
    shutdown: &watch::Receiver<bool>,
) -> Option<String> {
    let mut buf = [0u8; 1024];
    loop {
        if *shutdown.borrow() {
            return None;
        }
        match port.read(&mut buf) {
            Ok(0) => return Some("end of file".to_owned()),
            Ok(n) => {
                if tx.blocking_send(Input::Bytes(buf[..n].to_vec())).is_err() {
                    return None;
                }
            }
            Err(err)
                if matches!(
                    err.kind(),
                    std::io::ErrorKind::TimedOut
                        | std::io::ErrorKind::WouldBlock
                        | std::io::ErrorKind::Interrupted
                ) => {}
            Err(err) => return Some(err.to_string()),
        }
    }
}
