//! coi-agent: the edge agent for chain-of-identity labeling in cell and gene therapy.
//!
//! The pure core ([`isbt128`]) does no I/O; the command-line face ([`cli`]) is a thin layer
//! over it. See `ARCHITECTURE.md` in the design notes for the module map and its invariants.

pub mod agent;
pub mod api;
pub mod central;
pub mod cli;
pub mod config;
pub mod custody;
pub mod device_access;
pub mod isbt128;
pub mod journal;
pub mod label;
pub mod labeling;
pub mod operators;
pub mod order_sync;
pub mod orders;
pub mod outbox;
pub mod printer;
pub mod receiving;
pub mod reconcile;
pub mod report;
pub mod scanner;
pub mod secret_file;
pub mod sys;
pub mod typed;
