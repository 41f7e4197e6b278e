//! The HTTP/1 server of the metrics endpoint, on hyper.
//!
//! It runs on tasks of its own and never holds anything the connection tasks
//! wait for: a scrape reads atomic counters, and a probe reads the states.
//! Every connection is bounded: headers within [`HEADER_TIMEOUT`], the whole
//! exchange within [`CONNECTION_TIMEOUT`], no keep-alive (a scrape every few
//! seconds gains nothing from it), and at most [`MAX_CONNECTIONS`] at once
//! (more wait in the listen backlog), so a stuck or hostile client cannot
//! pile up tasks.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, ACCEPT, ALLOW, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::{JoinHandle, JoinSet};

use super::registry::{Format, Metrics};
use crate::error::Error;

/// Time allowed for a request's headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Time allowed for one connection, start to end.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(30);
/// Connections served at once, at most.
const MAX_CONNECTIONS: usize = 64;

/// The endpoint while it serves; dropping it stops the server and its
/// connections.
#[derive(Debug)]
pub(crate) struct Serving {
    task: JoinHandle<()>,
    metrics: Metrics,
}

impl Drop for Serving {
    fn drop(&mut self) {
        self.task.abort();
        self.metrics.set_local_addr(None);
    }
}

/// Binds `addr` and serves `metrics` there from now on.
pub(super) fn serve(
    metrics: &Metrics,
    addr: SocketAddr,
    key: &'static str,
) -> Result<Serving, Error> {
    let fail = |e: std::io::Error| Error::MetricsEndpoint {
        key,
        addr,
        reason: e.to_string(),
    };
    let listener = std::net::TcpListener::bind(addr).map_err(fail)?;
    listener.set_nonblocking(true).map_err(fail)?;
    let local_addr = listener.local_addr().map_err(fail)?;
    let listener = TcpListener::from_std(listener).map_err(fail)?;
    for c in metrics.connections() {
        c.query_latency().enable();
    }
    let task = tokio::spawn(accept_loop(listener, metrics.clone()));
    metrics.set_local_addr(Some(local_addr));
    tracing::info!(%local_addr, "serving /metrics, /healthz and /readyz");
    Ok(Serving {
        task,
        metrics: metrics.clone(),
    })
}

async fn accept_loop(listener: TcpListener, metrics: Metrics) {
    let limit = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    // Owned here, so that aborting this task ends every connection too.
    let mut connections = JoinSet::new();
    loop {
        let Ok(permit) = limit.clone().acquire_owned().await else {
            return;
        };
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of file descriptors, say: wait a little rather than spin.
                tracing::debug!(error = %e, "metrics endpoint: accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        while connections.try_join_next().is_some() {}
        let metrics = metrics.clone();
        connections.spawn(async move {
            let _permit = permit;
            let service = hyper::service::service_fn(move |req| {
                let response = respond(&metrics, &req);
                async move { Ok::<_, Infallible>(response) }
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .keep_alive(false)
                .serve_connection(TokioIo::new(stream), service);
            match tokio::time::timeout(CONNECTION_TIMEOUT, connection).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::debug!(error = %e, "metrics endpoint: connection failed"),
                Err(_) => tracing::debug!("metrics endpoint: connection timed out"),
            }
        });
    }
}

/// The answer to one request.
fn respond(metrics: &Metrics, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    let path = req.uri().path();
    if !matches!(path, "/metrics" | "/healthz" | "/readyz") {
        return text(
            StatusCode::NOT_FOUND,
            "not found: try /metrics, /healthz or /readyz\n",
        );
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut response = text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
        response
            .headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    match path {
        "/metrics" => {
            let accept = req
                .headers()
                .get_all(ACCEPT)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .collect::<Vec<_>>()
                .join(",");
            let format = negotiate(&accept);
            let mut response = Response::new(Full::new(Bytes::from(metrics.render(format))));
            response.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static(format.content_type()),
            );
            response
        }
        "/healthz" if metrics.is_live() => text(StatusCode::OK, "ok\n"),
        "/healthz" => text(StatusCode::SERVICE_UNAVAILABLE, "declared unhealthy\n"),
        _ => match metrics.readiness() {
            Ok(()) => text(StatusCode::OK, "ready\n"),
            Err(body) => text(StatusCode::SERVICE_UNAVAILABLE, body),
        },
    }
}

fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// OpenMetrics when the `Accept` header ranks it at least as high as the
/// Prometheus text format (as Prometheus' own scrapers ask), else the text
/// format, which every scraper reads.
fn negotiate(accept: &str) -> Format {
    let (mut openmetrics, mut text) = (0.0f32, 0.0f32);
    for range in accept.split(',') {
        let mut parts = range.split(';').map(str::trim);
        let media = parts.next().unwrap_or("").to_ascii_lowercase();
        let q = parts
            .filter_map(|p| p.strip_prefix("q="))
            .find_map(|q| q.parse::<f32>().ok())
            .unwrap_or(1.0);
        match media.as_str() {
            "application/openmetrics-text" => openmetrics = openmetrics.max(q),
            "text/plain" => text = text.max(q),
            _ => {}
        }
    }
    if openmetrics > 0.0 && openmetrics >= text {
        Format::OpenMetrics
    } else {
        Format::Prometheus
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation() {
        // Prometheus 2.x's scrape header.
        let prometheus = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert_eq!(negotiate(prometheus), Format::OpenMetrics);
        assert_eq!(negotiate(""), Format::Prometheus);
        assert_eq!(negotiate("*/*"), Format::Prometheus);
        assert_eq!(negotiate("text/plain"), Format::Prometheus);
        assert_eq!(
            negotiate("text/plain;q=0.9, application/openmetrics-text;q=0.5"),
            Format::Prometheus
        );
        assert_eq!(
            negotiate("Application/OpenMetrics-Text; version=1.0.0"),
            Format::OpenMetrics
        );
        assert_eq!(
            negotiate("application/openmetrics-text;q=0"),
            Format::Prometheus
        );
    }
}
