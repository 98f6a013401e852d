//! The print side proven inside `cargo test` (issue #15): the exact ZPL of every golden label is
//! rendered by an independent ZPL renderer (the `zpl` crate, a dev-dependency), every symbol is
//! decoded from that rendering with rxing and must equal its payload, and each symbol's modules
//! must be the preview's, pixel for pixel, inside its box (quiet zones included).
//!
//! Text is not compared: the printer draws it with its resident font, the preview with B612, and
//! the renderer's copy of the resident font covers ASCII only. A stand-in font that draws every
//! character as an empty cell keeps text from stopping the render; `scripts/check-labels-independent.sh`
//! remains the second, separate judge of the whole label.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::borrow::Cow;
use std::sync::Arc;

use coi_agent::label::data::LabelData;
use coi_agent::label::layout::Item;
use coi_agent::label::raster::{self, Canvas, Extent};
use coi_agent::label::{self, RESOLUTIONS};
use coi_agent::orders::record::parse_order;

/// Font 0 for the renderer: every character an empty cell (text is not what is compared).
struct EmptyCells;

impl zpl::fonts::BitmapFont for EmptyCells {
    fn metrics(&self) -> zpl::fonts::BitmapMetrics {
        zpl::fonts::BitmapMetrics {
            width: 10,
            height: 10,
            baseline: 8.0,
        }
    }
    fn glyph(&self, c: char) -> Result<Option<Cow<'_, zpl::fonts::Glyph>>, String> {
        Ok(Some(Cow::Owned(zpl::fonts::Glyph {
            codepoint: u32::from(c),
            advance: 10,
            left: 0,
            top: -8,
            width: 0,
            height: 0,
            bitmap: Vec::new(),
        })))
    }
}

/// The golden data sets of tests/label.rs (short, long, accented names; a word too long for a
/// line; 64-character names), as orders.
fn orders() -> Vec<(&'static str, serde_json::Value, u8)> {
    let json: serde_json::Value =
        serde_json::from_str(include_str!("data/example-orders.json")).unwrap();
    let with = |family: &str, given: &str| {
        let mut order = json["orders"][0].clone();
        order["patient"]["family_name"] = family.into();
        order["patient"]["given_name"] = given.into();
        order
    };
    vec![
        ("short", json["orders"][0].clone(), 2),
        (
            "long",
            with("Van den Berghe-Oosterhuis", "Maximiliane Josephine"),
            1,
        ),
        ("accented", json["orders"][1].clone(), 1),
        (
            "one-word",
            with("Wolfeschlegelsteinhausenbergerdorff", "Pat"),
            1,
        ),
        (
            "64",
            with(
                "Vandenberghe-Okonkwo Rasmussen-Papadopoulos de la Cruz Hohenberg",
                "Maximiliane Josephine Anastasia Konstantina Philippa Wilhelmina",
            ),
            1,
        ),
        ("vietnamese", with("Nguyễn", "Thị Đặng Ánh"), 1),
        ("greek", with("Παπαδόπουλος", "Αικατερίνη"), 1),
        ("cyrillic", with("Иванова-Щербакова", "Анастасия"), 1),
    ]
}

/// The ZPL as the renderer draws it, as a canvas the size of the label.
fn printed(zpl: &str, dpi: u32, width: u32, height: u32) -> Canvas {
    let mut fonts = zpl::fonts::Fonts::new();
    fonts.insert_bitmap_font('0', Arc::new(EmptyCells)).unwrap();
    let options = zpl::Options {
        dpi,
        ..zpl::Options::default()
    };
    let document = zpl::render::render_with_fonts(zpl.as_bytes(), options, &fonts)
        .unwrap_or_else(|e| panic!("the renderer refused the ZPL: {e}"));
    assert_eq!(document.labels.len(), 1, "one label per job");
    let image = zpl::output::raster::rasterize(&document.labels[0]).unwrap();
    let mut canvas = Canvas::new(width, height);
    for y in 0..height.min(image.height) {
        for x in 0..width.min(image.width) {
            if image.pixels[(y * image.width + x) as usize] < 128 {
                canvas.dot(x, y);
            }
        }
    }
    canvas
}

#[test]
fn every_golden_label_prints_the_symbols_its_preview_proves() {
    let (mut labels, mut checked) = (0, 0);
    for (set, json, bag) in orders() {
        let order = parse_order(&json, 0).unwrap();
        let data = LabelData::new(&order, bag, "2025-06-02T12:14:00Z".parse().unwrap()).unwrap();
        for template in label::builtin().unwrap() {
            for dpi in RESOLUTIONS {
                // The small bag label refuses the 64-character family name (tests/label.rs).
                let Ok(made) = label::render(&template, &data, dpi) else {
                    assert_eq!((set, template.name.as_str()), ("64", "bag-small"));
                    continue;
                };
                let name = format!("{} {dpi} {set}", template.name);
                labels += 1;
                checked += symbols_differing(&made, dpi)
                    .unwrap_or_else(|problem| panic!("{name}: {problem}"));
            }
        }
    }
    // 8 sets × 3 templates × 3 resolutions, less the three refused small labels; three symbols
    // on a bag label (DIN, COI, compound) and the product code on the large one; and the lines
    // sent as graphics (the names in Vietnamese, Greek and Cyrillic).
    assert_eq!(labels, 69);
    assert!(checked > 165, "{checked}");
}

/// Mutated ZPL is caught: wider bars, another payload.
#[test]
fn a_print_that_differs_from_the_preview_is_caught() {
    let json: serde_json::Value =
        serde_json::from_str(include_str!("data/example-orders.json")).unwrap();
    let order = parse_order(&json["orders"][0], 0).unwrap();
    let data = LabelData::new(&order, 1, "2025-06-02T12:14:00Z".parse().unwrap()).unwrap();
    let template = &label::builtin().unwrap()[0];
    let mut made = label::render(template, &data, 203).unwrap();
    assert!(symbols_differing(&made, 203).is_ok());
    let original = made.zpl.clone();
    made.zpl = original.replacen("^BY2", "^BY3", 1);
    let said = symbols_differing(&made, 203).unwrap_err();
    assert!(
        said.contains("differ") || said.contains("read back"),
        "{said}"
    );
    made.zpl = original.replacen("CHA999925000042", "CHA999925000043", 1);
    let said = symbols_differing(&made, 203).unwrap_err();
    assert!(
        said.contains("read back") || said.contains("differ"),
        "{said}"
    );
}

/// Renders `made`'s ZPL and checks each symbol: it reads back as its payload and its pixels are
/// the preview's. The number of symbols checked, or the first problem.
fn symbols_differing(made: &label::Label, dpi: u32) -> Result<usize, String> {
    let print = printed(&made.zpl, dpi, made.raster.width, made.raster.height);
    let mut checked = 0;
    for item in &made.layout.items {
        let (rect, payload, decode): (_, String, fn(&Canvas, Extent, &str) -> _) = match item {
            Item::Code128 { rect, plan, .. } => (*rect, plan.data(), raster::prove_code128),
            Item::DataMatrix { rect, data, .. } => (*rect, data.clone(), raster::prove_datamatrix),
            _ => continue,
        };
        let extent = Extent {
            x: rect.x,
            y: rect.y,
            width: rect.width,
            height: rect.height,
        };
        decode(&print, extent, &payload)
            .map_err(|e| format!("the printed symbol at {rect:?} does not read back: {e}"))?;
        // Module for module: no pixel of the box differs (tolerance 0).
        let mut differ = 0;
        for y in rect.y..rect.y + rect.height {
            for x in rect.x..rect.x + rect.width {
                if print.is_black(x, y) != made.raster.is_black(x, y) {
                    differ += 1;
                }
            }
        }
        if differ != 0 {
            return Err(format!(
                "{differ} pixels of the symbol at {rect:?} differ between print and preview"
            ));
        }
        checked += 1;
    }
    // Lines sent as graphics: the preview's dots, exactly.
    for item in &made.layout.items {
        let Item::Text {
            x,
            y,
            size,
            text,
            rotation,
            ..
        } = item
        else {
            continue;
        };
        if !made.layout.text_as_graphics && text.chars().all(coi_agent::label::zpl::printable) {
            continue;
        }
        let dots = coi_agent::label::font::text_dots(text, *size as f32, *rotation);
        for (dx, dy) in dots {
            let (px, py) = ((i64::from(*x) + dx) as u32, (i64::from(*y) + dy) as u32);
            if !print.is_black(px, py) {
                return Err(format!(
                    "a dot of the line sent as a graphic at ({x}, {y}) is not printed"
                ));
            }
        }
        checked += 1;
    }
    Ok(checked)
}

/// With every line sent as a graphic (a template's `text_as_graphics`), print and preview are
/// the same label, pixel for pixel, everywhere: text, rules, frames and symbols.
#[test]
fn all_text_as_graphics_prints_the_preview_pixel_for_pixel() {
    use coi_agent::label::template::Template;
    for (name, source) in [
        (
            "apheresis-bag",
            include_str!("../label-templates/apheresis-bag.toml"),
        ),
        (
            "bag-small",
            include_str!("../label-templates/bag-small.toml"),
        ),
        (
            "sample-tube",
            include_str!("../label-templates/sample-tube.toml"),
        ),
    ] {
        let source = source.replacen(
            "\n[[element]]",
            "\ntext_as_graphics = true\n\n[[element]]",
            1,
        );
        let template = Template::parse(name, &source).unwrap();
        for (set, order, bag) in orders() {
            let order = parse_order(&order, 0).unwrap();
            let data =
                LabelData::new(&order, bag, "2025-06-02T12:14:00Z".parse().unwrap()).unwrap();
            for dpi in RESOLUTIONS {
                let Ok(made) = label::render(&template, &data, dpi) else {
                    assert_eq!((set, name), ("64", "bag-small"));
                    continue;
                };
                assert!(!made.zpl.contains("^A0"), "{name} {set}: no printer font");
                let print = printed(&made.zpl, dpi, made.raster.width, made.raster.height);
                let mut differ = 0;
                for y in 0..made.raster.height {
                    for x in 0..made.raster.width {
                        if print.is_black(x, y) != made.raster.is_black(x, y) {
                            differ += 1;
                        }
                    }
                }
                assert_eq!(differ, 0, "{name} {dpi} {set}: {differ} pixels differ");
            }
        }
    }
}
