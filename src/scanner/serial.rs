//! Serial scanners (RS-232, and USB CDC-ACM scanners at `/dev/ttyACM*`), read on a dedicated
//! thread because the serialport crate blocks. Unplugging ends the read with an error; the
//! port is then reopened with backoff until the device is back.

use std::time::Duration;

use serialport::SerialPort;

use super::source::{Flow, Parity, SerialSettings};
use super::{Input, Stop, run_blocking};

/// How long one read waits before checking for shutdown.
pub(crate) const READ_TIMEOUT: Duration = Duration::from_millis(50);

pub(super) fn read(settings: SerialSettings, stop: &Stop) {
    let path = settings.path.display().to_string();
    run_blocking(
        stop,
        || match open(&settings) {
            Ok(port) => Ok((port, format!("{path} at {} baud", settings.baud))),
            Err(err) => Err(format!(
                "open {path}: {err}{}",
                crate::device_access::serial_hint(&err)
            )),
        },
        |port, stop| read_port(port.as_mut(), stop).map(|reason| format!("{path}: {reason}")),
    );
}

/// Opens a serial port with its settings; reads wait at most `READ_TIMEOUT`.
pub(crate) fn open(settings: &SerialSettings) -> serialport::Result<Box<dyn SerialPort>> {
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

/// Forwards bytes until the port fails (`Some(reason)`) or it is time to stop (`None`).
fn read_port(port: &mut dyn SerialPort, stop: &Stop) -> Option<String> {
    let mut buf = [0u8; 1024];
    loop {
        if stop.now() {
            return None;
        }
        match port.read(&mut buf) {
            Ok(0) => return Some("end of file".to_owned()),
            Ok(n) => {
                if !stop.send(Input::Bytes(buf[..n].to_vec(), std::time::Instant::now())) {
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
