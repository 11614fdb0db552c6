//! RTMP provider (being written).
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::Registry;

/// Accept RTMP publishers on `listener` until `shutdown`.
pub async fn serve(listener: TcpListener, registry: Arc<Registry>, shutdown: CancellationToken) {
    let _ = (listener, registry);
    shutdown.cancelled().await;
}
