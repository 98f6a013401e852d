//! Stream sources on the async runtime: a TCP connection to a network scanner, a TCP listener
//! that fixed-mount scanners connect to (each connection framed on its own, so reads from two
//! scanners never merge), and standard input.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};

use super::source::ScannerSpec;
use super::{Backoff, Input, Scan, ScannerState, frame_loop};

/// A connect attempt that takes longer than this is abandoned and retried: a scanner on the
/// site network answers in milliseconds, so 5 s means it is not there.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Connects to a network scanner, and reconnects whenever the connection is lost. Keepalive
/// probes notice a scanner that lost power without closing the connection.
pub(super) async fn connect(
    address: String,
    tx: mpsc::Sender<Input>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut backoff = Backoff::new();
    let mut last_failure = None;
    loop {
        let attempt = tokio::select! {
            res = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(&address)) => res,
            _ = shutdown.changed() => return,
        };
        let input = match attempt {
            Ok(Ok(stream)) => {
                last_failure = None;
                keep_alive(&stream);
                let up_since = std::time::Instant::now();
                if tx
                    .send(Input::Connected(format!("connected to {address}")))
                    .await
                    .is_err()
                {
                    return;
                }
                let Some(reason) = read_stream(stream, &tx, &mut shutdown).await else {
                    return;
                };
                backoff.link_ended(up_since.elapsed());
                Some(Input::Disconnected(reason))
            }
            Ok(Err(err)) => failure(&mut last_failure, format!("connect to {address}: {err}")),
            Err(_) => failure(
                &mut last_failure,
                format!("connect to {address}: no answer within 5 s"),
            ),
        };
        if let Some(input) = input
            && tx.send(input).await.is_err()
        {
            return;
        }
        tokio::select! {
            () = tokio::time::sleep(backoff.next_delay()) => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// A failure worth reporting: the first of its kind since the last success.
fn failure(last: &mut Option<String>, reason: String) -> Option<Input> {
    if last.as_ref() == Some(&reason) {
        return None;
    }
    *last = Some(reason.clone());
    Some(Input::Failed(reason))
}

/// TCP keepalive: probes after 10 s of silence, every 5 s, 3 times, so a scanner that vanished
/// without closing (power loss, cable pulled) is seen as disconnected within about 25 s.
fn keep_alive(stream: &TcpStream) {
    let keepalive = socket2::TcpKeepalive::new()
        .with_time(Duration::from_secs(10))
        .with_interval(Duration::from_secs(5))
        .with_retries(3);
    // Without keepalive the connection still works; only a silent loss is noticed later.
    let _ = socket2::SockRef::from(stream).set_tcp_keepalive(&keepalive);
}

/// Listens for scanners; each connection gets its own framing.
pub(super) async fn listen(
    address: SocketAddr,
    spec: ScannerSpec,
    scans: mpsc::Sender<Scan>,
    state: &watch::Sender<ScannerState>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut backoff = Backoff::new();
    let listener = loop {
        match TcpListener::bind(address).await {
            Ok(listener) => break listener,
            Err(err) => {
                let reason = format!("listen on {address}: {err}");
                state.send_replace(ScannerState::Error { reason });
            }
        }
        tokio::select! {
            () = tokio::time::sleep(backoff.next_delay()) => {}
            _ = shutdown.changed() => return,
        }
    };
    let local = listener.local_addr().map_or(address, |a| a);
    state.send_replace(ScannerState::Connected {
        detail: format!("listening on {local}"),
    });
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(_) => {
                    // A failed accept (e.g. too many open files) concerns that connection only;
                    // pausing keeps a persistent failure from spinning.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            // Finished connections are reaped as they end.
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            _ = shutdown.changed() => break,
        };
        keep_alive(&stream);
        let (tx, rx) = mpsc::channel(64);
        let label = format!("{} from {peer}", spec.label);
        let framing = spec.framing;
        let scans = scans.clone();
        let reader_shutdown = shutdown.clone();
        let frame_shutdown = shutdown.clone();
        connections.spawn(async move {
            let reader = tokio::spawn(async move {
                let mut shutdown = reader_shutdown;
                // One connection is one stream: when it ends, its pending frame is cut short.
                if read_stream(stream, &tx, &mut shutdown).await.is_some() {
                    let _ = tx.send(Input::Ended).await;
                }
            });
            // Connection states are not the listener's state; they are dropped here.
            let (connection_state, _) = watch::channel(ScannerState::Connecting);
            frame_loop(
                label,
                framing,
                rx,
                &scans,
                &connection_state,
                frame_shutdown,
            )
            .await;
            reader.abort();
        });
    }
    // Each connection saw the shutdown too and flushes its pending read; give them a moment.
    let drained = tokio::time::timeout(Duration::from_secs(2), async {
        while connections.join_next().await.is_some() {}
    });
    if drained.await.is_err() {
        connections.shutdown().await;
    }
}

/// Reads standard input until it ends.
pub(super) async fn stdin(tx: mpsc::Sender<Input>, mut shutdown: watch::Receiver<bool>) {
    if tx
        .send(Input::Connected("reading standard input".to_owned()))
        .await
        .is_err()
    {
        return;
    }
    if read_stream(tokio::io::stdin(), &tx, &mut shutdown)
        .await
        .is_some()
    {
        let _ = tx.send(Input::Ended).await;
    }
}

/// Forwards bytes until the stream ends (`Some(reason)`) or shutdown or a closed channel
/// (`None`).
async fn read_stream(
    mut stream: impl AsyncRead + Unpin,
    tx: &mpsc::Sender<Input>,
    shutdown: &mut watch::Receiver<bool>,
) -> Option<String> {
    let mut buf = vec![0u8; 4096];
    loop {
        tokio::select! {
            read = stream.read(&mut buf) => match read {
                Ok(0) => return Some("connection closed by the scanner".to_owned()),
                Ok(n) => {
                    let at = std::time::Instant::now();
                    if tx.send(Input::Bytes(buf[..n].to_vec(), at)).await.is_err() {
                        return None;
                    }
                }
                Err(err) => return Some(err.to_string()),
            },
            _ = shutdown.changed() => return None,
        }
    }
}
