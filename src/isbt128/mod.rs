//! The ISBT 128 core: pure functions over values, no I/O and no async.
//!
//! - [`message::parse`] reads the bytes of one scan (AIM identifier, single structures,
//!   concatenated reads, compound messages) into typed [`structure::Structure`]s;
//! - [`din`], [`coi`], [`product`], [`date`] hold the typed values and their rules;
//! - [`structure::Value::encode`] and [`structure::compound_message`] build barcode data;
//! - [`check`] is the MOD 37-2 check character.
//!
//! Facts come from ICCBBA ST-001 v6.2 (see `../shared/design/ISBT128.md`). Licensed ICCBBA
//! tables (product descriptions, facilities) are site data, never hard-coded here.

pub mod check;
pub mod coi;
pub mod date;
pub mod din;
pub mod error;
mod field;
pub mod message;
pub mod product;
pub mod spec;
pub mod structure;
