//! Fuzzes the ZPL read-back that proves a label before it prints (`prove_zpl`): arbitrary ZPL
//! against a real label's layout never panics, and only ZPL carrying exactly the label's
//! symbols is accepted.

#![no_main]

use std::sync::OnceLock;

use coi_agent::label::{self, Label};
use coi_agent::orders::record::Order;
use libfuzzer_sys::fuzz_target;

fn order() -> &'static Order {
    static ORDER: OnceLock<Order> = OnceLock::new();
    ORDER.get_or_init(|| {
        let text = include_str!("../../tests/data/example-orders.json");
        let (book, _) = coi_agent::orders::OrderBook::from_json(text).expect("example orders");
        book.orders()[0].clone()
    })
}

fn label() -> &'static Label {
    static LABEL: OnceLock<Label> = OnceLock::new();
    LABEL.get_or_init(|| {
        let order = order();
        let at = jiff::Timestamp::from_second(1_750_000_000).expect("a time");
        let data = label::data::LabelData::new(order, 1, at).expect("label data");
        let template = label::builtin().expect("templates").remove(0);
        label::render(&template, &data, 203).expect("a label")
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(zpl) = std::str::from_utf8(data) else {
        return;
    };
    let _ = label::zpl::symbol_data(zpl);
    let label = label();
    if label::prove_zpl(&label.layout, zpl).is_ok() {
        // Accepted: it reads back the same symbols as the label's own ZPL.
        assert_eq!(
            label::zpl::symbol_data(zpl),
            label::zpl::symbol_data(&label.zpl)
        );
    }
});
