//! MPEG-TS over UDP provider (being written).
use std::sync::Arc;

use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;

use super::Registry;

/// Receive MPEG-TS on each bound UDP socket (port → stream from the
/// application's StreamMap) until `shutdown`.
pub async fn serve(sockets: Vec<UdpSocket>, registry: Arc<Registry>, shutdown: CancellationToken) {
    let _ = (sockets, registry);
    shutdown.cancelled().await;
}
