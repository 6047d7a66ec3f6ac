//! `lanterna serve`: an OpenAI-compatible HTTP server (axum on tokio) in front of one
//! engine thread that owns the model and batches every running request's next token
//! into one step (`engine.rs`). The HTTP side checks, renders and tokenizes requests
//! (`api.rs`, `complete.rs`), keeps the queue bounded, and reports `/health` and
//! `/metrics` (`http.rs`, `metrics.rs`); `server.rs` starts and stops it all.

pub mod api;
mod complete;
pub mod engine;
mod http;
pub mod metrics;
mod server;
mod state;
pub mod stops;

pub use server::{serve, Options};
