//! SRT provider (being written).
use std::net::SocketAddr;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::Registry;

/// Accept SRT publishers on `addr` until `shutdown`.
pub async fn serve(addr: SocketAddr, registry: Arc<Registry>, shutdown: CancellationToken) -> std::io::Result<()> {
    let _ = (addr, registry);
    shutdown.cancelled().await;
    Ok(())
}
