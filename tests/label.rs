//! The label engine end to end: every template at every resolution for the example orders
//! (golden ZPL and PNG hashes), hostile field values that must never change the printer's
//! commands, random valid orders that must always render and prove, and a proof that refuses a
//! symbol that does not read back.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use coi_agent::label::data::LabelData;
use coi_agent::label::layout::{Item, Layout};
use coi_agent::label::template::Template;
use coi_agent::label::{self, LabelError, RESOLUTIONS, raster};
use coi_agent::orders::record::{Order, parse_order};
use proptest::prelude::*;

const EXAMPLE: &str = include_str!("data/example-orders.json");

fn example_json() -> serde_json::Value {
    serde_json::from_str(EXAMPLE).unwrap()
}

fn order(json: &serde_json::Value) -> Order {
    parse_order(json, 0).unwrap()
}

fn collected() -> jiff::Timestamp {
    "2025-06-02T12:14:00Z".parse().unwrap()
}

fn templates() -> Vec<Template> {
    label::builtin().unwrap()
}

/// A family name of 64 characters (the most a name field is promised to print) and a given name
/// of 64 (issue #15).
const FAMILY_64: &str = "Vandenberghe-Okonkwo Rasmussen-Papadopoulos de la Cruz Hohenberg";
const GIVEN_64: &str = "Maximiliane Josephine Anastasia Konstantina Philippa Wilhelmina";

/// The golden data sets: a short name, a long one (two lines where a name box allows it), an
/// accented one with another testing status, volume and manufacturing zone, a single word too
/// long for a line (broken inside, with the mark), and 64-character names.
fn golden_sets() -> Vec<(&'static str, Order, u8)> {
    let json = example_json();
    let mut long = json["orders"][0].clone();
    set(
        &mut long,
        &["patient", "family_name"],
        "Van den Berghe-Oosterhuis",
    );
    set(
        &mut long,
        &["patient", "given_name"],
        "Maximiliane Josephine",
    );
    let mut word = json["orders"][0].clone();
    set(
        &mut word,
        &["patient", "family_name"],
        "Wolfeschlegelsteinhausenbergerdorff",
    );
    let mut longest = json["orders"][0].clone();
    set(&mut longest, &["patient", "family_name"], FAMILY_64);
    set(&mut longest, &["patient", "given_name"], GIVEN_64);
    vec![
        ("short", order(&json["orders"][0]), 2),
        ("long", order(&long), 1),
        ("accented", order(&json["orders"][1]), 1),
        ("one-word", order(&word), 1),
        ("64", order(&longest), 1),
        ("vietnamese", named(&json, "Nguyễn", "Thị Đặng Ánh"), 1),
        ("greek", named(&json, "Παπαδόπουλος", "Αικατερίνη"), 1),
        (
            "cyrillic",
            named(&json, "Иванова-Щербакова", "Анастасия"),
            1,
        ),
    ]
}

/// The first example order for a patient of these names.
fn named(json: &serde_json::Value, family: &str, given: &str) -> Order {
    let mut changed = json["orders"][0].clone();
    set(&mut changed, &["patient", "family_name"], family);
    set(&mut changed, &["patient", "given_name"], given);
    order(&changed)
}

/// The sets a template cannot hold, refused naming the field: the small bag label has two lines
/// of 6 pt for the family name (docs/decisions.md).
fn refused(set: &str, template: &str) -> Option<&'static str> {
    (set == "64" && template == "bag-small").then_some("{patient.family_name}")
}

/// A PNG's pixels as decoded: (width, height, pixels per metre, packed rows).
fn decoded(png: &[u8]) -> (u32, u32, Option<u32>, Vec<u8>) {
    let mut reader = png::Decoder::new(std::io::Cursor::new(png))
        .read_info()
        .unwrap();
    let mut rows = vec![0; reader.output_buffer_size().unwrap()];
    let frame = reader.next_frame(&mut rows).unwrap();
    rows.truncate(frame.buffer_size());
    let ppm = reader.info().pixel_dims.map(|d| d.xppu);
    (frame.width, frame.height, ppm, rows)
}

/// Golden files: `tests/golden/label/<template>-<dpi>-<set>.zpl` and `.png` for every template
/// at 203, 300 and 600 dpi and three data sets. The ZPL is compared as text, the PNG by its
/// decoded pixels, size and resolution (not the encoded bytes). On a difference the new image
/// and a diff (the pixels that differ, black) are written to target/label-golden/ to look at;
/// `UPDATE_GOLDEN=1 cargo test --test label` rewrites the goldens.
#[test]
fn every_template_matches_its_golden_files_at_every_resolution() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/label");
    let look = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/label-golden");
    // Only UPDATE_GOLDEN=1 rewrites them: any other value compares.
    let update = std::env::var("UPDATE_GOLDEN").is_ok_and(|v| v == "1");
    let mut mismatches = Vec::new();
    for (set, order, bag) in golden_sets() {
        let data = LabelData::new(&order, bag, collected()).unwrap();
        for template in templates() {
            for dpi in RESOLUTIONS {
                if let Some(field) = refused(set, &template.name) {
                    let err = label::render(&template, &data, dpi)
                        .unwrap_err()
                        .to_string();
                    assert!(err.contains(field) && err.contains("does not fit"), "{err}");
                    continue;
                }
                let made = label::render(&template, &data, dpi).unwrap();
                let png = made.png().unwrap();
                let stem = format!("{}-{dpi}-{set}", template.name);
                let zpl_path = dir.join(format!("{stem}.zpl"));
                let png_path = dir.join(format!("{stem}.png"));
                if update {
                    std::fs::create_dir_all(&dir).unwrap();
                    std::fs::write(&zpl_path, &made.zpl).unwrap();
                    std::fs::write(&png_path, &png).unwrap();
                    continue;
                }
                let golden_zpl = std::fs::read_to_string(&zpl_path)
                    .unwrap_or_else(|e| panic!("{}: {e}", zpl_path.display()));
                if golden_zpl != made.zpl {
                    mismatches.push(format!("{stem}.zpl"));
                }
                let golden = std::fs::read(&png_path)
                    .unwrap_or_else(|e| panic!("{}: {e}", png_path.display()));
                let (want, got) = (decoded(&golden), decoded(&png));
                if want != got {
                    mismatches.push(format!("{stem}.png"));
                    std::fs::create_dir_all(&look).unwrap();
                    std::fs::write(look.join(format!("{stem}.new.png")), &png).unwrap();
                    if (want.0, want.1) == (got.0, got.1) {
                        let diff: Vec<u8> =
                            want.3.iter().zip(&got.3).map(|(a, b)| !(a ^ b)).collect();
                        let mut out = Vec::new();
                        let mut encoder = png::Encoder::new(&mut out, got.0, got.1);
                        encoder.set_color(png::ColorType::Grayscale);
                        encoder.set_depth(png::BitDepth::One);
                        encoder
                            .write_header()
                            .unwrap()
                            .write_image_data(&diff)
                            .unwrap();
                        std::fs::write(look.join(format!("{stem}.diff.png")), out).unwrap();
                    }
                }
            }
        }
    }
    assert!(
        mismatches.is_empty(),
        "changed: {mismatches:?} (the new images and diffs are in target/label-golden/; look at them, then UPDATE_GOLDEN=1)"
    );
}

#[test]
fn every_template_renders_and_proves_for_every_example_order_and_bag() {
    let json = example_json();
    for value in json["orders"].as_array().unwrap() {
        let order = order(value);
        for bag in 1..=order.collection.bags {
            let data = LabelData::new(&order, bag, collected()).unwrap();
            for template in templates() {
                for dpi in RESOLUTIONS {
                    let made = label::render(&template, &data, dpi)
                        .unwrap_or_else(|e| panic!("{} bag {bag} {dpi}: {e}", template.name));
                    assert_eq!(made.raster.width, made.layout.width);
                    assert!(made.zpl.starts_with("^XA^CI28^PW"));
                    assert!(made.zpl.ends_with("^XZ\n"));
                }
            }
        }
    }
}

/// Layouts hold the same geometry in millimetres at every resolution, within a dot or two.
#[test]
fn one_template_looks_the_same_at_every_resolution() {
    let json = example_json();
    let order = order(&json["orders"][0]);
    let data = LabelData::new(&order, 1, collected()).unwrap();
    for template in templates() {
        let layouts: Vec<Layout> = RESOLUTIONS
            .iter()
            .map(|&dpi| Layout::new(&template, &data, dpi).unwrap())
            .collect();
        let mm = |layout: &Layout| -> Vec<(f64, f64)> {
            layout
                .items
                .iter()
                .filter_map(|item| match item {
                    Item::Code128 { rect, .. } | Item::DataMatrix { rect, .. } => Some(*rect),
                    Item::Rule(rect) => Some(*rect),
                    _ => None,
                })
                .map(|r| {
                    let k = 25.4 / f64::from(layout.dpi);
                    (f64::from(r.x) * k, f64::from(r.y) * k)
                })
                .collect()
        };
        let reference = mm(&layouts[0]);
        for layout in &layouts[1..] {
            let placed = mm(layout);
            assert_eq!(
                placed.len(),
                reference.len(),
                "{} at {} dpi places another number of items",
                template.name,
                layout.dpi
            );
            for (a, b) in reference.iter().zip(placed) {
                assert!(
                    (a.0 - b.0).abs() < 0.3 && (a.1 - b.1).abs() < 0.3,
                    "{} at {} dpi: {a:?} vs {b:?}",
                    template.name,
                    layout.dpi
                );
            }
        }
    }
}

/// The ZPL commands a label may contain; anything else means a value escaped its field.
const COMMANDS: &[&str] = &[
    "XA", "CI28", "PW", "LL", "LH0,0", "FO", "A0N", "A0R", "FB", "FH_", "FD", "FS", "GB", "BY",
    "BCN", "BXN", "XZ",
];

/// Splits ZPL into its commands (text between `^`s), checking there is no tilde command and
/// every command is one a label makes.
fn commands(zpl: &str) -> Vec<String> {
    assert!(!zpl.contains('~'), "a tilde command reached the ZPL");
    let mut out = Vec::new();
    for token in zpl.split('^').skip(1) {
        let token = token.trim_end_matches('\n');
        let known = COMMANDS.iter().any(|c| token.starts_with(c));
        assert!(known, "unexpected command ^{token}");
        out.push(token.to_owned());
    }
    out
}

/// Reverses `^FH_` escapes.
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'_' {
            out.push(u8::from_str_radix(&field[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

/// Free-text fields of the order record: every one printed on some template.
const TEXT_FIELDS: &[&[&str]] = &[
    &["patient", "family_name"],
    &["patient", "given_name"],
    &["patient", "id"],
    &["patient", "id_label"],
    &["therapy", "name"],
    &["therapy", "sponsor"],
    &["therapy", "protocol"],
    &["product", "description"],
    &["collection", "facility", "name"],
    &["manufacturing", "facility", "name"],
];

const HOSTILE: &[&str] = &[
    "^XA^FO0,0^FDX^FS^XZ~JR",
    "~JA~DGR:EVIL.GRF,2,1,FF",
    "X^FS^XZ^XA^PQ99^XZ",
    "_5E_7E >5>:>0",
    "a\\&b\\\\c ^FH^FD",
    "O'Brien-Zoë Núñez",
];

fn set(json: &mut serde_json::Value, path: &[&str], value: &str) {
    let mut node = json;
    for key in path {
        node = &mut node[*key];
    }
    *node = serde_json::Value::String(value.to_owned());
}

/// Every text field filled with hostile ZPL: the label still renders and proves, holds only the
/// commands a label makes, one `^XA` and one `^XZ`, and every hostile value comes back exactly
/// from its escaped field data.
#[test]
fn hostile_field_values_never_change_the_printer_commands() {
    let benign = {
        let json = example_json();
        let order = order(&json["orders"][0]);
        let data = LabelData::new(&order, 1, collected()).unwrap();
        templates()
            .iter()
            .map(|t| label::render(t, &data, 203).unwrap().zpl)
            .collect::<Vec<_>>()
    };
    for hostile in HOSTILE {
        let mut json = example_json()["orders"][0].clone();
        for path in TEXT_FIELDS {
            set(&mut json, path, hostile);
        }
        let order = order(&json);
        let data = LabelData::new(&order, 1, collected()).unwrap();
        for (template, benign) in templates().iter().zip(&benign) {
            let made = label::render(template, &data, 203)
                .unwrap_or_else(|e| panic!("{} with {hostile:?}: {e}", template.name));
            let cmds = commands(&made.zpl);
            assert_eq!(cmds.iter().filter(|c| *c == "XA").count(), 1);
            assert_eq!(cmds.iter().filter(|c| c.starts_with("XZ")).count(), 1);
            // The same kinds of commands as the benign label, in the same order, apart from
            // text lines (a longer value may wrap into more of them).
            let shape = |cmds: &[String]| -> Vec<String> {
                cmds.iter()
                    .filter(|c| !c.starts_with("FD") && !c.starts_with("A0"))
                    .map(|c| c.chars().take(2).collect())
                    .collect::<Vec<String>>()
                    .join(" ")
                    .replace("FO FH FS ", "")
                    .split(' ')
                    .map(str::to_owned)
                    .collect()
            };
            assert_eq!(
                shape(&cmds),
                shape(&commands(benign)),
                "{} with {hostile:?}",
                template.name
            );
            let texts: Vec<String> = cmds
                .iter()
                .filter_map(|c| c.strip_prefix("FD"))
                .map(unescape)
                .collect();
            if template.name == "apheresis-bag" {
                let joined = texts.join("\n");
                let upper = hostile.to_uppercase();
                assert!(
                    joined.contains(hostile) || joined.lines().any(|l| hostile.starts_with(l)),
                    "{hostile:?} not printed as given"
                );
                assert!(
                    joined.lines().any(|l| upper.starts_with(l) || l == upper),
                    "family name"
                );
            }
        }
    }
}

#[test]
fn characters_the_printer_cannot_draw_are_refused_naming_the_element() {
    let mut json = example_json()["orders"][0].clone();
    // A control character never reaches a label: the order itself is refused (issue #16).
    set(&mut json, &["patient", "family_name"], "Smith\u{7}");
    let refused = parse_order(&json, 0).unwrap_err().to_string();
    assert!(
        refused.contains("patient.family_name: a control character"),
        "{refused}"
    );
    assert!(!refused.contains("Smith"), "{refused}");
    // A character no font of the printer has (a zero-width space) is refused by the label.
    set(&mut json, &["patient", "family_name"], "Smith\u{200b}");
    let order = order(&json);
    let data = LabelData::new(&order, 1, collected()).unwrap();
    let template = &templates()[0];
    let err = label::render(template, &data, 203).unwrap_err().to_string();
    assert!(err.contains("{patient.family_name}"), "{err}");
    assert!(err.contains("U+200B"), "{err}");
    assert!(
        !err.contains("Smith"),
        "the value stays out of the message: {err}"
    );

    set(&mut json, &["patient", "family_name"], "李");
    let order = parse_order(&json, 0).unwrap();
    let data = LabelData::new(&order, 1, collected()).unwrap();
    let err = label::render(template, &data, 203).unwrap_err().to_string();
    assert!(err.contains("U+674E"), "{err}");
}

/// Issue #15: a script the label's fonts do not carry is refused naming the field and the
/// script, never drawn as boxes.
#[test]
fn unsupported_scripts_are_refused_naming_field_and_script() {
    for (field, value, script) in [
        ("family_name", "محمد", "Arabic"),
        ("given_name", "דוד", "Hebrew"),
        ("family_name", "李", "CJK"),
        ("given_name", "สมชาย", "Thai"),
    ] {
        let mut json = example_json()["orders"][0].clone();
        set(&mut json, &["patient", field], value);
        let order = order(&json);
        let data = LabelData::new(&order, 1, collected()).unwrap();
        for template in templates() {
            if !template.elements.iter().any(|e| matches!(e, coi_agent::label::template::Element::Text { text, .. } if text.contains(field))) {
                continue;
            }
            let refused = label::render(&template, &data, 203).unwrap_err();
            let said = refused.to_string();
            assert!(said.contains(&format!("{{patient.{field}}}")), "{said}");
            // A nurse reads the field and the script in words first.
            let told = refused.for_operator();
            let words = if field == "family_name" {
                "family"
            } else {
                "given"
            };
            assert!(
                told.starts_with(&format!("The patient's {words} name has {script}")),
                "{told}"
            );
            assert!(!told.contains(value), "{told}");
            assert!(
                said.contains(script) && said.contains("not supported"),
                "{said}"
            );
            assert!(!said.contains(value), "{said}");
        }
    }
}

/// Beyond what a box holds at its least legible size, the label is refused naming the field,
/// never clipped: 64 of the widest letter as a given name on the bag label (two lines at 6 pt).
#[test]
fn a_value_too_long_for_its_box_refuses_the_label() {
    let mut json = example_json()["orders"][0].clone();
    set(&mut json, &["patient", "given_name"], &"W".repeat(64));
    let order = order(&json);
    let data = LabelData::new(&order, 1, collected()).unwrap();
    let err = label::render(&templates()[0], &data, 300).unwrap_err();
    assert!(matches!(err, LabelError::Layout(_)), "{err}");
    let said = err.to_string();
    assert!(
        said.contains("{patient.given_name}") && said.contains("does not fit"),
        "{said}"
    );
    assert!(!said.contains("WWW"), "{said}");
}

/// The lines an element was drawn in, by the text its template gives it.
fn lines_of(layout: &Layout, template: &Template, text: &str) -> Vec<(String, u32)> {
    let index = template
        .elements
        .iter()
        .position(
            |e| matches!(e, coi_agent::label::template::Element::Text { text: t, .. } if t == text),
        )
        .unwrap();
    layout
        .items
        .iter()
        .filter_map(|item| match item {
            Item::Text {
                text,
                size,
                element,
                ..
            } if *element == index => Some((text.clone(), *size)),
            _ => None,
        })
        .collect()
}

/// The value lines were made from: a line ending in the mark continues the word, one ending in
/// a hyphen the name, any other ends a word.
fn rejoined(lines: &[(String, u32)]) -> String {
    let mark = coi_agent::label::layout::WORD_BREAK;
    let mut value = String::new();
    for (line, _) in lines {
        if !(value.is_empty() || value.ends_with('-')) {
            value.push(' ');
        }
        match line.strip_suffix(mark) {
            Some(part) => {
                value.push_str(part);
                value.push(mark);
            }
            None => value.push_str(line),
        }
    }
    value.replace(&format!("{mark} "), "")
}

/// Issue #15: a long family name shrinks, and the given name is never drawn larger than it.
#[test]
fn the_family_name_is_never_smaller_than_the_given_name() {
    let mut json = example_json()["orders"][0].clone();
    set(&mut json, &["patient", "family_name"], FAMILY_64);
    set(&mut json, &["patient", "given_name"], "Ana");
    let order = order(&json);
    let data = LabelData::new(&order, 1, collected()).unwrap();
    let template = &templates()[0];
    for dpi in RESOLUTIONS {
        let layout = Layout::new(template, &data, dpi).unwrap();
        let family = lines_of(&layout, template, "{patient.family_name}");
        let given = lines_of(&layout, template, "{patient.given_name}");
        assert!(family.len() >= 2, "{family:?}");
        assert_eq!(rejoined(&family), FAMILY_64.to_uppercase());
        assert!(
            given[0].1 <= family[0].1,
            "{dpi}: given {given:?}, family {family:?}"
        );
    }
}

/// A copy of `canvas` with a band of `rect` whitened: a symbol damaged after it was drawn.
fn damaged(
    canvas: &raster::Canvas,
    band: std::ops::Range<u32>,
    rows: std::ops::Range<u32>,
) -> raster::Canvas {
    let mut copy = raster::Canvas::new(canvas.width, canvas.height);
    for y in 0..canvas.height {
        for x in 0..canvas.width {
            if canvas.is_black(x, y) && !(band.contains(&x) && rows.contains(&y)) {
                copy.dot(x, y);
            }
        }
    }
    copy
}

/// The proof refuses a label whose Data Matrix or Code 128 does not read back as its payload,
/// naming the symbol.
#[test]
fn the_proof_refuses_a_symbol_that_does_not_read_back_as_its_payload() {
    let json = example_json();
    let order = order(&json["orders"][0]);
    let data = LabelData::new(&order, 1, collected()).unwrap();
    let template = &templates()[0];
    let layout = Layout::new(template, &data, 203).unwrap();
    let canvas = raster::render(&layout).unwrap();
    raster::prove_layout(&layout, &canvas).unwrap();

    let Some(Item::DataMatrix { rect, .. }) = layout
        .items
        .iter()
        .find(|i| matches!(i, Item::DataMatrix { .. }))
    else {
        panic!("no Data Matrix")
    };
    let half = rect.x..rect.x + rect.width / 2;
    let (symbol, _) = raster::prove_layout(
        &layout,
        &damaged(&canvas, half, rect.y..rect.y + rect.height),
    )
    .unwrap_err();
    assert_eq!(symbol.name(), "compound message");

    let Some(Item::Code128 { rect, quiet, .. }) = layout
        .items
        .iter()
        .find(|i| matches!(i, Item::Code128 { .. }))
    else {
        panic!("no Code 128")
    };
    let mid = rect.x + quiet + (rect.width - 2 * quiet) / 2;
    let (symbol, _) = raster::prove_layout(
        &layout,
        &damaged(&canvas, mid..mid + 24, rect.y..rect.y + rect.height),
    )
    .unwrap_err();
    assert_eq!(symbol.name(), "DIN");
}

/// The ZPL sent to the printer must carry exactly the payloads proven on the raster: a format
/// whose barcode data was changed, or that lost or gained a barcode, is refused naming the symbol.
#[test]
fn the_zpl_proof_refuses_barcodes_that_differ_from_the_proven_payloads() {
    let json = example_json();
    let order = order(&json["orders"][0]);
    let data = LabelData::new(&order, 1, collected()).unwrap();
    let label = label::render(&templates()[0], &data, 203).unwrap();
    label::prove_zpl(&label.layout, &label.zpl).unwrap();

    let refused = |zpl: &str| {
        let err = label::prove_zpl(&label.layout, zpl).unwrap_err();
        assert!(matches!(err, LabelError::ZplProof { .. }), "{err}");
        err.to_string()
    };
    // One digit of the COI changed in its Code 128 field (set C pairs after the shift).
    let coi = label
        .zpl
        .lines()
        .find(|l| l.contains("^BC") && l.contains("&/"))
        .unwrap();
    let changed = coi.replacen("9999", "9998", 1);
    assert_ne!(coi, changed);
    let err = refused(&label.zpl.replace(coi, &changed));
    assert!(
        err.contains("the COI identifier symbol in the ZPL"),
        "{err}"
    );

    // The Data Matrix's data changed, then a Code 128 dropped, then one added.
    let err = refused(&label.zpl.replacen("^FH_^FD=+", "^FH_^FD=+9", 1));
    assert!(err.contains("compound message"), "{err}");
    let first = label.zpl.lines().find(|l| l.contains("^BC")).unwrap();
    refused(&label.zpl.replace(first, ""));
    refused(&label.zpl.replace("^XZ", &format!("{first}\n^XZ")));
}

/// Labels are made at 203, 300 and 600 dpi only: at 152 dpi a Code 128 module would be one dot,
/// 0.17 mm, under the ISBT 128 minimum, and the lint says so too.
#[test]
fn a_resolution_labels_are_not_made_for_is_refused() {
    let json = example_json();
    let order = order(&json["orders"][0]);
    let data = LabelData::new(&order, 1, collected()).unwrap();
    let err = label::render(&templates()[1], &data, 152).unwrap_err();
    assert_eq!(err, LabelError::Resolution(152));
    let err = Layout::new(&templates()[1], &data, 152)
        .unwrap_err()
        .to_string();
    assert!(err.contains("Code 128 is off its module"), "{err}");
}

/// The lint keeps every line of text, and every ^FB block the printer aligns it in, inside its
/// element's box.
#[test]
fn the_lint_refuses_text_or_a_text_block_outside_its_box() {
    let json = example_json();
    let order = order(&json["orders"][0]);
    let data = LabelData::new(&order, 1, collected()).unwrap();
    let template = &templates()[0];
    let layout = Layout::new(template, &data, 203).unwrap();
    let with = |change: &dyn Fn(&mut Item) -> bool| {
        let mut changed = layout.clone();
        assert!(changed.items.iter_mut().any(change), "no such item");
        changed.lint(template).unwrap_err().to_string()
    };
    // A block reaching left of its identifier's box (the printer could draw there).
    let err = with(&|item| match item {
        Item::Text {
            block: Some(b), x, ..
        } if b.x > 0 && b.x == *x => {
            b.x -= 1;
            b.width += 1;
            true
        }
        _ => false,
    });
    assert!(err.contains("runs out of its box"), "{err}");
    // A line drawn below its box.
    let err = with(&|item| match item {
        Item::Text { y, .. } => {
            *y += 40;
            true
        }
        _ => false,
    });
    assert!(err.contains("runs out of its box"), "{err}");
}

/// A layout that claims a symbol size the encoder does not produce is refused before drawing.
#[test]
fn a_data_matrix_of_the_wrong_size_is_refused() {
    let json = example_json();
    let order = order(&json["orders"][0]);
    let data = LabelData::new(&order, 1, collected()).unwrap();
    let mut layout = Layout::new(&templates()[0], &data, 203).unwrap();
    for item in &mut layout.items {
        if let Item::DataMatrix { size, .. } = item {
            *size -= 2;
        }
    }
    let err = raster::render(&layout).unwrap_err();
    assert!(err.to_string().contains("modules across"), "{err}");
}

fn name_strategy() -> impl Strategy<Value = String> {
    // Up to 32 characters: two lines of the smallest size a name box allows.
    let word = "[A-Za-zÀ-ÖØ-öø-ÿŁłŃńŚśŹźŻżČčŘřŠšŽž'-]{1,10}";
    prop::collection::vec(word, 1..=3).prop_map(|words| words.join(" "))
}

/// A name as a label prints it in capitals: Greek capitals carry no tonos (as Greek passports
/// print names).
fn in_capitals(name: &str) -> String {
    let tonos = [
        ('Ά', 'Α'),
        ('Έ', 'Ε'),
        ('Ή', 'Η'),
        ('Ί', 'Ι'),
        ('Ό', 'Ο'),
        ('Ύ', 'Υ'),
        ('Ώ', 'Ω'),
    ];
    name.to_uppercase()
        .chars()
        .map(|c| {
            tonos
                .iter()
                .find(|(with, _)| *with == c)
                .map_or(c, |(_, without)| *without)
        })
        .collect()
}

/// Names up to 64 characters in the scripts labels carry: Latin (with Latin Extended and
/// Vietnamese), Greek and Cyrillic; words of any length (single words longer than a line
/// included), hyphens, apostrophes.
fn long_name_strategy() -> impl Strategy<Value = String> {
    let word = "[A-Za-zÀ-ÖØ-öø-ÿĀ-žƀ-ɏḀ-ỹΑ-Ωα-ωά-ώА-яЀ-ӿ'-]{1,40}";
    prop::collection::vec(word, 1..=6).prop_map(|words| {
        let name = words.join(" ");
        name.chars().take(64).collect::<String>().trim().to_owned()
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Issue #15: any name up to 64 characters renders on every template, with every character
    /// in its lines (never clipped), or is refused naming its field; never a panic.
    #[test]
    fn names_up_to_64_characters_render_whole_or_are_refused_by_field(
        family in long_name_strategy(),
        given in long_name_strategy(),
        dpi in prop::sample::select(RESOLUTIONS.to_vec()),
    ) {
        prop_assume!(!family.is_empty() && !given.is_empty());
        let mut json = example_json()["orders"][0].clone();
        set(&mut json, &["patient", "family_name"], &family);
        set(&mut json, &["patient", "given_name"], &given);
        let order = parse_order(&json, 0).unwrap();
        let data = LabelData::new(&order, 1, collected()).unwrap();
        for template in templates() {
            match Layout::new(&template, &data, dpi) {
                Ok(layout) => {
                    for (text, value) in [
                        ("{patient.family_name}", in_capitals(&family)),
                        ("{patient.given_name}", given.clone()),
                    ] {
                        if !template.elements.iter().any(|e| matches!(e, coi_agent::label::template::Element::Text { text: t, .. } if t == text)) {
                            continue;
                        }
                        let lines = lines_of(&layout, &template, text);
                        let normal = value.split_whitespace().collect::<Vec<_>>().join(" ");
                        prop_assert_eq!(rejoined(&lines), normal, "{} {}", template.name, text);
                    }
                    let made = label::render(&template, &data, dpi);
                    prop_assert!(made.is_ok(), "{}: {}", template.name, made.unwrap_err());
                }
                Err(refused) => {
                    let said = refused.to_string();
                    prop_assert!(
                        said.contains("{patient.family_name}") || said.contains("{patient.given_name}"),
                        "{}: {said}", template.name
                    );
                }
            }
        }
    }

    /// Random valid orders (names with accents, any bag count, any year ISBT 128 can carry,
    /// with or without expiry) always render and prove on every template.
    #[test]
    fn random_valid_orders_always_render_and_prove(
        family in name_strategy(),
        given in name_strategy(),
        facility in "[A-Za-z0-9 .,&'-]{1,30}",
        sequence in 0u32..1_000_000,
        bags in 1u8..=9,
        bag_pick in 0u8..9,
        minutes in 0i64..(60 * 24 * 365 * 20),
        expiry in any::<bool>(),
        dpi in prop::sample::select(RESOLUTIONS.to_vec()),
    ) {
        let mut json = example_json()["orders"][0].clone();
        set(&mut json, &["patient", "family_name"], family.trim());
        set(&mut json, &["patient", "given_name"], given.trim());
        set(&mut json, &["collection", "facility", "name"], facility.trim());
        set(&mut json, &["collection", "din"], &format!("A999925{sequence:06}"));
        json["collection"]["bags"] = serde_json::json!(bags);
        if !expiry {
            json.as_object_mut().unwrap().remove("expires_at");
        }
        prop_assume!(!family.trim().is_empty() && !given.trim().is_empty() && !facility.trim().is_empty());
        let order = parse_order(&json, 0).unwrap();
        let at = jiff::Timestamp::from_second(1_577_836_800 + minutes * 60).unwrap();
        let data = LabelData::new(&order, 1 + bag_pick % bags, at).unwrap();
        for template in templates() {
            let made = label::render(&template, &data, dpi);
            prop_assert!(made.is_ok(), "{}: {}", template.name, made.unwrap_err());
        }
    }
}

/// Issue #20: bag 5 of a nine-bag collection carries container flags 15 (ST-001 Table 3), in
/// its DIN barcode and its Data Matrix, and a tenth bag cannot be labelled (nor ordered).
#[test]
fn r20_bags_five_to_nine_carry_flags_15_to_19_and_a_tenth_has_none() {
    let mut json = example_json()["orders"][0].clone();
    json["collection"]["bags"] = serde_json::json!(9);
    let order = order(&json);
    for (bag, flags) in [(4u8, "04"), (5, "15"), (9, "19")] {
        let data = LabelData::new(&order, bag, collected()).unwrap();
        let label = label::render(&templates()[0], &data, 203).unwrap();
        let din = format!("{}{flags}", order.collection.din.as_str());
        let barcodes: Vec<&str> = label.zpl.lines().filter(|l| l.contains("^B")).collect();
        assert!(
            label.zpl.contains(&format!("={din}")) || label.zpl.contains(&din[..]),
            "bag {bag}: no DIN with flags {flags} in the ZPL"
        );
        assert!(!barcodes.is_empty());
        let wrong = format!("{}{:02}", order.collection.din.as_str(), bag);
        if bag >= 5 {
            assert!(
                !label.zpl.contains(&wrong),
                "bag {bag} must not carry flags {bag:02}"
            );
        }
    }
    assert!(LabelData::new(&order, 10, collected()).is_err());
    json["collection"]["bags"] = serde_json::json!(10);
    let refused = coi_agent::orders::record::parse_order(&json, 0).unwrap_err();
    assert!(
        refused.to_string().contains("collection.bags: 1-9"),
        "{refused}"
    );
}
