//! Starting the server — the port first, the model on the engine thread — and stopping
//! it on Ctrl-C or SIGTERM once running requests are done.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{mpsc, Arc};

use super::engine::Engine;
use super::http;
use super::metrics::Metrics;
use super::state::AppState;
use crate::chat::ChatTemplate;
use crate::error::{Error, Result};
use crate::generate::Executor;
use crate::tokenizer::Tokenizer;

/// How the server runs.
pub struct Options {
    pub host: String,
    pub port: u16,
    /// Requests waiting for a slot beyond which new ones get 503.
    pub queue: usize,
    /// Positions of each sequence's context.
    pub n_ctx: usize,
    pub api_key: Option<String>,
    /// Largest request body in bytes (413 above).
    pub body_limit: usize,
    /// What `/v1/models` and every answer call the model.
    pub model_name: String,
}

/// Serve until Ctrl-C or SIGTERM. The port is open at once (`/health` answers 503 while
/// `load`, run on the engine thread, loads the model); then running requests finish and
/// the server exits.
pub fn serve(
    opts: Options,
    tok: Tokenizer,
    template: ChatTemplate,
    load: impl FnOnce() -> Result<Box<dyn Executor>> + Send + 'static,
) -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Usage(format!("cannot start the server's runtime: {e}")))?;
    rt.block_on(run(opts, tok, template, load))
}

async fn run(
    opts: Options,
    tok: Tokenizer,
    template: ChatTemplate,
    load: impl FnOnce() -> Result<Box<dyn Executor>> + Send + 'static,
) -> Result<()> {
    let addr = format!("{}:{}", opts.host, opts.port);
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .map_err(|e| Error::Usage(format!("cannot listen on {addr}: {e}")))?;
    let local = listener.local_addr().map_err(|e| Error::Usage(format!("{addr}: {e}")))?;
    eprintln!("lanterna serve: listening on http://{local} (loading the model)");
    let (tok, metrics) = (Arc::new(tok), Arc::new(Metrics::default()));
    let (jobs, rx) = mpsc::channel();
    let (failed_tx, failed) = tokio::sync::oneshot::channel::<Error>();
    let engine = {
        let (tok, metrics) = (tok.clone(), metrics.clone());
        std::thread::spawn(move || match load() {
            Ok(mut exec) => {
                metrics.ready.store(true, Relaxed);
                eprintln!(
                    "lanterna serve: ready: {} sequences of {} positions on {}",
                    exec.n_seq(),
                    exec.n_ctx(),
                    exec.name()
                );
                Engine::new(exec.as_mut(), &tok, &metrics).run(rx);
            }
            Err(e) => {
                let _ = failed_tx.send(e);
            }
        })
    };
    let state = Arc::new(AppState {
        jobs,
        metrics,
        tok,
        template,
        model_name: opts.model_name,
        n_ctx: opts.n_ctx,
        queue_cap: opts.queue,
        api_key: opts.api_key,
        body_limit: opts.body_limit,
        started: std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs()),
        next_id: AtomicU64::new(1),
    });
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<Option<Error>>();
    tokio::spawn(async move {
        let why = tokio::select! {
            _ = shutdown_signal() => None,
            Ok(e) = failed => Some(e),
        };
        let _ = stop_tx.send(why);
    });
    let (why_tx, why_rx) = tokio::sync::oneshot::channel::<Option<Error>>();
    let app = http::router(state);
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            let why = stop_rx.await.unwrap_or(None);
            eprintln!("lanterna serve: stopping: no new connections; running requests finish");
            let _ = why_tx.send(why);
        })
        .await
        .map_err(|e| Error::Usage(format!("the server failed: {e}")))?;
    // The router (and with it the job sender) is gone: the engine ends once idle.
    let _ = engine.join();
    match why_rx.await {
        Ok(Some(e)) => Err(e),
        _ => Ok(()),
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
