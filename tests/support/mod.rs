//! Shared helpers for integration tests: pseudo-terminal pairs that stand in for serial
//! scanners and printers, and a running scanner with deadlines on everything it is asked.

#![allow(dead_code)] // each test file uses its own subset

pub mod central;
pub mod pty;
pub mod scanner;
pub mod station;
pub mod tempdb;
