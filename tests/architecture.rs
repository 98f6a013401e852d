//! Architecture invariants (docs/architecture.md), checked on the source: the pure core does no
//! I/O, only the journal writes SQL, and only the central client speaks HTTP to the central
//! service. A new import that breaks a rule fails here, not in review.

use std::path::Path;

fn sources(dir: &Path) -> Vec<(String, String)> {
    let mut files = Vec::new();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let start = root.join(dir);
    let mut stack = vec![start];
    while let Some(path) = stack.pop() {
        if path.is_dir() {
            for entry in std::fs::read_dir(&path).expect("read src") {
                stack.push(entry.expect("entry").path());
            }
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).expect("read source");
            files.push((
                path.strip_prefix(&root)
                    .expect("under src")
                    .display()
                    .to_string(),
                text,
            ));
        }
    }
    files
}

fn assert_never_uses(dir: &str, forbidden: &[&str]) {
    let files = sources(Path::new(dir));
    assert!(!files.is_empty(), "no sources under src/{dir}");
    for (file, text) in files {
        let grouped = grouped_imports(&text);
        for crate_name in forbidden {
            for pattern in [format!("use {crate_name}"), format!("{crate_name}::")] {
                assert!(
                    !text.contains(&pattern),
                    "src/{file} uses {crate_name}: the rule says it must not"
                );
            }
            assert!(
                !grouped.iter().any(|path| path == crate_name),
                "src/{file} uses {crate_name} in a grouped import: the rule says it must not"
            );
        }
    }
}

/// The paths a grouped import names: `use std::{fs, net::TcpStream}` gives `std::fs` and
/// `std::net` (one level is enough for the rules here).
fn grouped_imports(text: &str) -> Vec<String> {
    let mut paths = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("use ") {
        rest = &rest[at + 4..];
        let statement = &rest[..rest.find(';').unwrap_or(rest.len())];
        if let Some((root, inner)) = statement.split_once("::{") {
            let root = root.trim();
            for item in inner.trim_end_matches('}').split(',') {
                let head = item.trim().split("::").next().unwrap_or("").trim();
                if !head.is_empty() {
                    paths.push(format!("{root}::{head}"));
                }
            }
        }
    }
    paths
}

#[test]
fn grouped_imports_are_seen() {
    let paths = grouped_imports("use std::{fs, net::TcpStream, io::{self, Write}};");
    assert!(paths.contains(&"std::fs".to_owned()), "{paths:?}");
    assert!(paths.contains(&"std::net".to_owned()), "{paths:?}");
}

const IO: &[&str] = &[
    "tokio",
    "rusqlite",
    "serialport",
    "rusb",
    "reqwest",
    "axum",
    "std::fs",
    "std::net",
    "std::env",
    "std::process",
    "std::thread",
    "libc",
];

/// The pure core: ISBT 128, labels, reconciliation and the order model.
const CORE: &[&str] = &[
    "isbt128",
    "label",
    "reconcile.rs",
    "orders",
    "custody.rs",
    "typed.rs",
];

/// What the core must never import: the adapters, the agent and the faces.
const OUTER: &[&str] = &[
    "crate::journal",
    "crate::central",
    "crate::order_sync",
    "crate::printer",
    "crate::scanner",
    "crate::agent",
    "crate::api",
    "crate::cli",
    "crate::labeling",
    "crate::receiving",
    "crate::outbox",
    "crate::config",
];

#[test]
fn the_core_does_no_io() {
    for dir in CORE {
        assert_never_uses(dir, IO);
    }
}

/// Issue #11: the core never imports an adapter, so the journal, the order model and the core
/// have no import cycle.
#[test]
fn the_core_never_imports_an_adapter() {
    for dir in CORE {
        for (file, text) in sources(Path::new(dir)) {
            for outer in OUTER {
                assert!(
                    !text.contains(outer),
                    "src/{file} imports {outer}: the core must not depend on adapters, the agent or the faces"
                );
            }
        }
    }
    // And the journal (an adapter) never reaches up into the flows, the agent or the faces.
    for (file, text) in sources(Path::new("journal")) {
        for upper in [
            "crate::agent",
            "crate::api",
            "crate::cli",
            "crate::labeling",
            "crate::receiving",
        ] {
            assert!(!text.contains(upper), "src/{file} imports {upper}");
        }
    }
}

#[test]
fn only_the_api_serves_http() {
    for (file, text) in sources(Path::new("")) {
        if !file.starts_with("api/") {
            assert!(
                !text.contains("axum::") && !text.contains("use axum"),
                "src/{file} uses axum: only src/api/ serves HTTP"
            );
        }
    }
}

#[test]
fn only_the_journal_writes_sql() {
    for dir in [
        "isbt128",
        "label",
        "scanner",
        "printer",
        "orders",
        "cli",
        "agent",
        "api",
        "central.rs",
        "order_sync.rs",
        "report.rs",
        "reconcile.rs",
        "labeling.rs",
        "receiving.rs",
        "custody.rs",
        "outbox.rs",
        "config.rs",
    ] {
        assert_never_uses(dir, &["rusqlite"]);
    }
}

#[test]
fn only_the_central_client_speaks_http() {
    for dir in [
        "isbt128",
        "label",
        "scanner",
        "printer",
        "journal",
        "orders",
        "cli",
        "agent",
        "api",
        "order_sync.rs",
        "report.rs",
        "reconcile.rs",
        "labeling.rs",
        "receiving.rs",
        "custody.rs",
        "outbox.rs",
        "config.rs",
    ] {
        assert_never_uses(dir, &["reqwest"]);
    }
}

#[test]
fn unsafe_code_lives_in_sys_only() {
    for (file, text) in sources(Path::new("")) {
        if file != "sys.rs" {
            assert!(
                !text.contains("unsafe {") && !text.contains("unsafe fn"),
                "src/{file} has unsafe code outside src/sys.rs"
            );
        }
    }
}

/// The checks above can fail: the same scan finds what the journal and the central client do use.
#[test]
fn the_detector_sees_real_uses() {
    let uses = |dir: &str, name: &str| {
        sources(Path::new(dir))
            .iter()
            .any(|(_, text)| text.contains(&format!("{name}::")))
    };
    assert!(uses("journal", "rusqlite"));
    assert!(uses("central.rs", "reqwest"));
    assert!(uses("api", "axum"));
    assert!(
        sources(Path::new("labeling.rs"))
            .iter()
            .any(|(_, text)| text.contains("crate::journal"))
    );
    assert!(
        sources(Path::new("sys.rs"))
            .iter()
            .any(|(_, text)| text.contains("unsafe {"))
    );
}
