//! HTTP delivery of the store's objects: `GET /{app}/{stream}/{name}`.
//! Anything not in the store is 404.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::config::Config;
use crate::store::{Store, StreamKey};

#[derive(Clone)]
pub struct HttpState {
    pub store: Arc<Store>,
    pub config: Arc<Config>,
}

pub fn router(state: HttpState) -> Router {
    Router::new().route("/{app}/{stream}/{name}", get(object)).fallback(not_found).with_state(state)
}

fn content_type(name: &str) -> &'static str {
    match name.rsplit('.').next() {
        Some("m3u8") => "application/vnd.apple.mpegurl",
        Some("m4s") => "video/iso.segment",
        Some("mp4") => "video/mp4",
        Some("ts") => "video/mp2t",
        _ => "application/octet-stream",
    }
}

async fn not_found() -> StatusCode {
    StatusCode::NOT_FOUND
}

async fn object(State(st): State<HttpState>, Path((app, stream, name)): Path<(String, String, String)>) -> Response {
    let key = StreamKey { app, stream };
    let Some(bytes) = st.store.get(&key, &name) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let mut resp = (StatusCode::OK, [(header::CONTENT_TYPE, content_type(&name))], bytes).into_response();
    let cors = st
        .config
        .app(&key.app)
        .and_then(|a| a.llhls.as_ref())
        .is_some_and(|l| l.cross_domains.iter().any(|u| u == "*"));
    if cors {
        resp.headers_mut().insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    }
    resp
}
