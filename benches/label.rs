//! The label engine (issue #3): apheresis-bag at 203 dpi for an example order, template → ZPL
//! (target ≤ 100 µs) and template → ZPL + PNG + decode proof of every symbol (target p50 ≤ 5 ms);
//! the proof decodes each symbol in the region the layout placed it. Results and method:
//! BENCHMARKS.md.

use std::hint::black_box;

use coi_agent::label::data::LabelData;
use coi_agent::label::layout::Layout;
use coi_agent::label::template::Template;
use coi_agent::label::{self, raster, zpl};
use coi_agent::orders::record::parse_order;
use criterion::{Criterion, criterion_group, criterion_main};

fn bench(c: &mut Criterion) {
    let json: serde_json::Value =
        serde_json::from_str(include_str!("../tests/data/example-orders.json")).expect("JSON");
    let order = parse_order(&json["orders"][0], 0).expect("a valid order");
    let at = "2025-06-02T12:14:00Z".parse().expect("a time");
    let data = LabelData::new(&order, 2, at).expect("label data");
    let templates = label::builtin().expect("templates");
    let template = templates
        .iter()
        .find(|t| t.name == "apheresis-bag")
        .expect("apheresis-bag");

    let mut group = c.benchmark_group("label apheresis-bag 203 dpi");
    group.bench_function("template to ZPL", |b| {
        b.iter(|| {
            let layout = Layout::new(black_box(template), &data, 203).expect("layout");
            zpl::render(&layout).expect("zpl")
        });
    });
    group.bench_function("template to ZPL + PNG + proof", |b| {
        b.iter(|| {
            let made = label::render(black_box(template), &data, 203).expect("label");
            made.png().expect("png")
        });
    });
    let layout = Layout::new(template, &data, 203).expect("layout");
    group.bench_function("raster only", |b| {
        b.iter(|| raster::render(black_box(&layout)).expect("raster"));
    });
    let canvas = raster::render(&layout).expect("raster");
    group.bench_function("proof only (4 symbols)", |b| {
        b.iter(|| raster::prove_layout(black_box(&layout), &canvas).expect("proof"));
    });
    group.bench_function("PNG only", |b| {
        b.iter(|| canvas.to_png(203).expect("png"));
    });
    let compound = data
        .symbol(coi_agent::label::template::Symbol::Compound)
        .expect("compound")
        .expect("present");
    group.bench_function("Data Matrix encoding only", |b| {
        b.iter(|| raster::datamatrix_modules(black_box(&compound)).expect("dm"));
    });
    group.bench_function("layout to ZPL only", |b| {
        b.iter(|| zpl::render(black_box(&layout)).expect("zpl"));
    });
    group.finish();
}

/// Issue #15: a long accented name (Vietnamese and Latin Extended letters the printer's font
/// lacks, so those lines go as graphics), and the same label with every line as a graphic
/// (`text_as_graphics`), at 203 and 300 dpi: the whole pipeline, and the ZPL's size (printed).
fn names(c: &mut Criterion) {
    let json: serde_json::Value =
        serde_json::from_str(include_str!("../tests/data/example-orders.json")).expect("JSON");
    let mut value = json["orders"][0].clone();
    value["patient"]["family_name"] = "Nguyễn-Łukasiewicz Wolfeschlegelsteinhausen".into();
    value["patient"]["given_name"] = "Thị Đặng Ánh Zoë".into();
    let order = parse_order(&value, 0).expect("a valid order");
    let at = "2025-06-02T12:14:00Z".parse().expect("a time");
    let data = LabelData::new(&order, 1, at).expect("label data");
    let source = include_str!("../label-templates/apheresis-bag.toml");
    let resident = Template::parse("apheresis-bag", source).expect("template");
    let graphics = Template::parse(
        "apheresis-bag",
        &source.replacen(
            "\n[[element]]",
            "\ntext_as_graphics = true\n\n[[element]]",
            1,
        ),
    )
    .expect("template");
    let mut group = c.benchmark_group("label apheresis-bag, long accented name");
    for dpi in [203, 300] {
        for (mode, template) in [
            ("names as graphics", &resident),
            ("all text as graphics", &graphics),
        ] {
            let made = label::render(template, &data, dpi).expect("label");
            eprintln!("{dpi} dpi, {mode}: ZPL {} bytes", made.zpl.len());
            group.bench_function(
                format!("{dpi} dpi, {mode}: template to ZPL + PNG + proofs"),
                |b| {
                    b.iter(|| {
                        let made = label::render(black_box(template), &data, dpi).expect("label");
                        made.png().expect("png")
                    });
                },
            );
        }
    }
    group.finish();
}

criterion_group!(benches, bench, names);
criterion_main!(benches);
