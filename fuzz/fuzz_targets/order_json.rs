//! Fuzzes order JSON into checked orders (the file source's and the central service's form):
//! never a panic, and a refusal never carries a control character (it is printed and logged).

#![no_main]

use coi_agent::orders::OrderBook;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match OrderBook::from_json(text) {
        Ok((book, refused)) => {
            for order in book.orders() {
                assert!(!order.order_id.chars().any(char::is_control));
            }
            for refusal in refused {
                let said = refusal.to_string();
                assert!(!said.chars().any(char::is_control), "{said:?}");
            }
        }
        Err(problem) => {
            let _ = problem.to_string();
        }
    }
});
