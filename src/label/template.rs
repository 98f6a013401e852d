//! Label templates: data files (TOML) in `label-templates/`, one per label, with a name, a version
//! and the label's size. Positions and sizes are millimetres, text sizes points, so one template
//! serves 203, 300 and 600 dpi. Text binds to the order record and the computed ISBT 128 values by
//! `{key}` placeholders ([`super::data::KEYS`]); symbols bind to ISBT 128 payloads by name
//! ([`Symbol`]). Parsing checks everything that does not depend on an order: unknown keys, fields
//! and symbols, sizes out of range, and elements off the label.

use serde::Deserialize;

use super::data;

/// A parsed, checked template.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Template {
    pub name: String,
    pub version: u32,
    pub description: String,
    /// What the label goes on: `bag` (one label per bag, DIN flags naming the container) or
    /// `sample` (a sample tube: flags `07`, any number per bag, never taken for the bag).
    pub label_kind: LabelKind,
    /// A sample label: how many may be printed per bag (the tubes a collection's testing
    /// needs); only for `label_kind = "sample"`.
    pub max_per_bag: Option<u32>,
    pub width_mm: f64,
    pub height_mm: f64,
    /// Send every line of text to the printer as a graphic drawn from the preview's font, so
    /// print and preview are the same dots and no printer font is relied on. Otherwise only
    /// lines with letters the printer's resident font lacks are sent as graphics.
    #[serde(default)]
    pub text_as_graphics: bool,
    #[serde(rename = "element")]
    pub elements: Vec<Element>,
}

/// The largest text under a linear barcode other than the DIN's: capitals of the label fonts
/// are about 0.7 em high, so 8 pt is 2 mm (ST-001 §7.3).
pub const MAX_UNDER_BARCODE_PT: f64 = 8.0;

/// What a label is affixed to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LabelKind {
    Bag,
    Sample,
}

impl LabelKind {
    /// As templates and the journal spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            LabelKind::Bag => "bag",
            LabelKind::Sample => "sample",
        }
    }
}

/// Millimetres from the label's top-left corner: `[x, y]`.
pub type Point = [f64; 2];

/// One thing drawn on the label.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Element {
    /// Text in a box `width` × `height` mm (height: one line when absent). A value too long
    /// for one line at `size` points shrinks to `min_size`, then wraps at spaces within the box;
    /// beyond that the label is refused.
    Text {
        text: String,
        at: Point,
        width: f64,
        height: Option<f64>,
        size: f64,
        min_size: Option<f64>,
        #[serde(default)]
        align: Align,
        #[serde(default)]
        upper: bool,
        /// Skip the element when a value it binds is absent (an order without expiry);
        /// otherwise an absent value refuses the label.
        #[serde(default)]
        optional: bool,
    },
    /// An eye-readable identifier: grouped text, the non-zero flags as two small digits turned
    /// 90° (DIN), and the check character in a box.
    Identifier {
        of: Identifier,
        at: Point,
        size: f64,
        /// Room across, mm: the identifier at `size` must fit.
        width: f64,
    },
    /// A Code 128 symbol at the target module (0.25 mm in whole dots) with 10-module quiet
    /// zones inside `width` mm; bars at least `height` mm, 5 mm and 15 % of the symbol length.
    Code128 {
        symbol: Symbol,
        at: Point,
        width: f64,
        height: f64,
        #[serde(default)]
        optional: bool,
    },
    /// A Data Matrix (ECC 200) at the largest whole-dot module that fits a square of `side` mm
    /// with its quiet zone; never smaller than 0.25 mm.
    DataMatrix {
        symbol: Symbol,
        at: Point,
        side: f64,
    },
    /// A filled rectangle: a rule between areas, or a bar.
    Rule { at: Point, width: f64, height: f64 },
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Align {
    #[default]
    Left,
    Center,
}

/// The identifiers printed with a boxed check character.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Identifier {
    Din,
    Coi,
}

/// ISBT 128 payloads a symbol can carry, all built by the ISBT 128 builders.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Symbol {
    /// DS 001: `=` + DIN + flags (the bag number).
    Din,
    /// DS 003: `=<` + product code, collection type and division.
    Product,
    /// DS 007: `&*` + collection date and time.
    Collection,
    /// DS 005: `&>` + expiry date and time (absent when the order has none).
    Expiry,
    /// DS 040: `&/` + COI identifier.
    Coi,
    /// DS 023 compound message: DIN, product code, collection date/time, COI, expiry if any.
    Compound,
    /// DS 023 compound message of the DIN and the COI only, for the smallest labels.
    Identity,
}

impl Symbol {
    pub fn name(self) -> &'static str {
        match self {
            Symbol::Din => "DIN",
            Symbol::Product => "product code",
            Symbol::Collection => "collection date and time",
            Symbol::Expiry => "expiry date and time",
            Symbol::Coi => "COI identifier",
            Symbol::Compound => "compound message",
            Symbol::Identity => "DIN and COI compound message",
        }
    }
}

/// Why a template cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("template {template}: {problem}")]
pub struct TemplateError {
    pub template: String,
    pub problem: String,
}

/// Smallest text a label carries, points (secondary text, LABELS.md).
pub const MIN_TEXT_PT: f64 = 6.0;

impl Template {
    /// Parses and checks a template file's text; `source` names it in errors.
    ///
    /// # Errors
    /// TOML that does not parse, unknown fields, unknown placeholders, sizes out of range or
    /// elements off the label.
    pub fn parse(source: &str, text: &str) -> Result<Template, TemplateError> {
        let template: Template = toml::from_str(text).map_err(|e| TemplateError {
            template: source.to_owned(),
            problem: e.to_string().trim().to_owned(),
        })?;
        template.check().map_err(|problem| TemplateError {
            template: template.name.clone(),
            problem,
        })?;
        Ok(template)
    }

    fn check(&self) -> Result<(), String> {
        if self.name.is_empty()
            || !self
                .name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err("name: lower-case letters, digits and '-' only".to_owned());
        }
        if !(10.0..=300.0).contains(&self.width_mm) || !(5.0..=300.0).contains(&self.height_mm) {
            return Err("the label size is outside 10-300 × 5-300 mm".to_owned());
        }
        for (i, element) in self.elements.iter().enumerate() {
            element
                .check(self.width_mm, self.height_mm)
                .map_err(|problem| format!("element {} ({}): {problem}", i + 1, element.kind()))?;
        }
        match (self.label_kind, self.max_per_bag) {
            (LabelKind::Bag, Some(_)) => {
                return Err("max_per_bag: only for sample labels (a bag has one label)".to_owned());
            }
            (LabelKind::Sample, Some(0 | 21..)) => {
                return Err("max_per_bag: 1 to 20".to_owned());
            }
            _ => {}
        }
        self.check_identifiers()?;
        self.check_text_under_barcodes()?;
        // The family name is laid out first, so the given name can be kept no larger.
        let first = |wanted: &str| self.texts().position(|(text, _)| text.contains(wanted));
        if let (Some(family), Some(given)) = (
            first("{patient.family_name}"),
            first("{patient.given_name}"),
        ) && given < family
        {
            return Err(
                "the given name's text comes before the family name's: list the family name first (the given name is never drawn larger than it)"
                    .to_owned(),
            );
        }
        if self.label_kind == LabelKind::Bag {
            self.check_recipient()?;
        }
        Ok(())
    }

    /// The text elements as (text, size).
    fn texts(&self) -> impl Iterator<Item = (&str, f64)> {
        self.elements.iter().filter_map(|e| match e {
            Element::Text { text, size, .. } => Some((text.as_str(), *size)),
            _ => None,
        })
    }

    /// A label affixed to a bag identifies its recipient (FACT-JACIE: the recipient's name and
    /// identifier and FOR AUTOLOGOUS USE ONLY on every label of an autologous product, partial
    /// labels included; issue #20), and neither is outranked by the bag number.
    fn check_recipient(&self) -> Result<(), String> {
        let size_of = |wanted: &str| {
            self.texts()
                .filter(|(text, _)| text.contains(wanted))
                .map(|(_, size)| size)
                .reduce(f64::max)
        };
        let mut prominence = Vec::new();
        for (wanted, what) in [
            ("{patient.family_name}", "the recipient's family name"),
            ("{patient.id}", "the recipient's identifier"),
            ("FOR AUTOLOGOUS USE ONLY", "FOR AUTOLOGOUS USE ONLY"),
        ] {
            let size = size_of(wanted)
                .ok_or_else(|| format!("a bag's label shows {what} (a text with {wanted})"))?;
            prominence.push((what, size));
        }
        if let Some(bag) = size_of("{bag}") {
            for (what, size) in [prominence[0], prominence[2]] {
                if size < bag {
                    return Err(format!(
                        "{what} ({size} pt) is less prominent than the bag number ({bag} pt)"
                    ));
                }
            }
        }
        Ok(())
    }

    /// Eye-readable text under a linear barcode is at most 2 mm high (ST-001 §7.3), but for
    /// the DIN's: a text or identifier starting within 3 mm below a Code 128 other than the
    /// DIN's, across it, is at most [`MAX_UNDER_BARCODE_PT`].
    fn check_text_under_barcodes(&self) -> Result<(), String> {
        for (i, bar) in self.elements.iter().enumerate() {
            let Element::Code128 {
                symbol,
                at,
                width,
                height,
                ..
            } = bar
            else {
                continue;
            };
            if *symbol == Symbol::Din {
                continue;
            }
            let bottom = at[1] + height;
            for (j, element) in self.elements.iter().enumerate() {
                let (x, y, w, size) = match element {
                    Element::Text {
                        at, width, size, ..
                    }
                    | Element::Identifier {
                        at, width, size, ..
                    } => (at[0], at[1], *width, *size),
                    _ => continue,
                };
                let below = y >= bottom - 1e-9 && y <= bottom + 3.0;
                let across = x < at[0] + width && x + w > at[0];
                if below && across && size > MAX_UNDER_BARCODE_PT {
                    return Err(format!(
                        "element {} ({}): text under the {} barcode (element {}) is at most {MAX_UNDER_BARCODE_PT} pt (2 mm high); only the DIN's may be larger",
                        j + 1,
                        element.kind(),
                        symbol.name(),
                        i + 1
                    ));
                }
            }
        }
        Ok(())
    }

    /// Two identifiers that must agree (issue #17): a label whose barcodes carry the DIN also
    /// carries the COI identifier in a barcode (its own, or the Data Matrix with the DIN), so a
    /// scan can be completed; and it shows both eye-readable, each with its boxed check
    /// character, so a person can type them.
    fn check_identifiers(&self) -> Result<(), String> {
        let symbols: Vec<Symbol> = self
            .elements
            .iter()
            .filter_map(|e| match e {
                Element::Code128 { symbol, .. } | Element::DataMatrix { symbol, .. } => {
                    Some(*symbol)
                }
                _ => None,
            })
            .collect();
        let carries = |wanted: &[Symbol]| symbols.iter().any(|s| wanted.contains(s));
        let din = carries(&[Symbol::Din, Symbol::Compound, Symbol::Identity]);
        let coi = carries(&[Symbol::Coi, Symbol::Compound, Symbol::Identity]);
        if din && !coi {
            return Err(
                "a label with the DIN in a barcode carries the COI identifier in a barcode too (coi, compound or identity): a match needs both"
                    .to_owned(),
            );
        }
        let shown = |of: Identifier| {
            self.elements
                .iter()
                .any(|e| matches!(e, Element::Identifier { of: o, .. } if *o == of))
        };
        for (of, name) in [(Identifier::Din, "din"), (Identifier::Coi, "coi")] {
            if din && !shown(of) {
                return Err(format!(
                    "a label with the DIN in a barcode shows the {name} eye-readable with its boxed check character (an identifier element of {name}), for typed entry"
                ));
            }
        }
        Ok(())
    }
}

impl Element {
    pub fn kind(&self) -> &'static str {
        match self {
            Element::Text { .. } => "text",
            Element::Identifier { .. } => "identifier",
            Element::Code128 { .. } => "code128",
            Element::DataMatrix { .. } => "data_matrix",
            Element::Rule { .. } => "rule",
        }
    }

    fn check(&self, label_width: f64, label_height: f64) -> Result<(), String> {
        let within = |at: Point, width: f64, height: f64| {
            let finite = [at[0], at[1], width, height].iter().all(|v| v.is_finite());
            if !finite || at[0] < 0.0 || at[1] < 0.0 || width <= 0.0 || height <= 0.0 {
                return Err("position and size must be positive numbers".to_owned());
            }
            if at[0] + width > label_width + 1e-9 || at[1] + height > label_height + 1e-9 {
                return Err("falls off the label".to_owned());
            }
            Ok(())
        };
        match self {
            Element::Text {
                text,
                at,
                width,
                height,
                size,
                min_size,
                ..
            } => {
                let floor = min_size.unwrap_or(*size);
                if !(MIN_TEXT_PT..=72.0).contains(size) || !(MIN_TEXT_PT..=*size).contains(&floor) {
                    return Err(format!(
                        "text sizes must be {MIN_TEXT_PT}-72 pt with min_size <= size"
                    ));
                }
                let line = line_pitch_mm(*size);
                let height = height.unwrap_or(line);
                if height < line - 1e-9 {
                    return Err(format!(
                        "height {height} mm is under one line at {size} pt ({line:.2} mm)"
                    ));
                }
                within(*at, *width, height)?;
                placeholders(text)?;
                Ok(())
            }
            Element::Identifier {
                at, size, width, ..
            } => {
                if !(MIN_TEXT_PT..=72.0).contains(size) {
                    return Err(format!("text sizes must be {MIN_TEXT_PT}-72 pt"));
                }
                within(*at, *width, line_pitch_mm(*size))
            }
            Element::Code128 {
                at, width, height, ..
            } => within(*at, *width, *height),
            Element::DataMatrix { at, side, .. } => within(*at, *side, *side),
            Element::Rule { at, width, height } => within(*at, *width, *height),
        }
    }
}

/// The height of one line of text `size` points high, mm.
pub fn line_pitch_mm(size: f64) -> f64 {
    size * LINE_PITCH * 25.4 / 72.0
}

/// Line pitch as a multiple of the text size.
pub const LINE_PITCH: f64 = 1.2;

/// A piece of a text element: literal text or a placeholder's key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Piece<'a> {
    Literal(&'a str),
    Key(&'a str),
}

/// Splits `text` into literals and `{key}` placeholders, every key known.
///
/// # Errors
/// An unknown key, or a brace that does not open or close a placeholder.
pub fn placeholders(text: &str) -> Result<Vec<Piece<'_>>, String> {
    let pieces = pieces(text)?;
    for piece in &pieces {
        if let Piece::Key(key) = piece
            && !data::KEYS.contains(key)
        {
            return Err(format!("unknown placeholder {{{key}}}"));
        }
    }
    Ok(pieces)
}

/// Splits `text` into literals and `{key}` placeholders without checking the keys (a parsed
/// template's are checked already).
///
/// # Errors
/// A brace that does not open or close a placeholder.
pub fn pieces(text: &str) -> Result<Vec<Piece<'_>>, String> {
    let mut pieces = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        match rest.find(['{', '}']) {
            None => {
                pieces.push(Piece::Literal(rest));
                break;
            }
            Some(i) if rest.as_bytes()[i] == b'}' => {
                return Err("a '}' without its '{'".to_owned());
            }
            Some(i) => {
                if i > 0 {
                    pieces.push(Piece::Literal(&rest[..i]));
                }
                let after = &rest[i + 1..];
                let Some(end) = after.find('}') else {
                    return Err("a '{' without its '}'".to_owned());
                };
                pieces.push(Piece::Key(&after[..end]));
                rest = &after[end + 1..];
            }
        }
    }
    Ok(pieces)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
        name = "t"
        version = 1
        description = "test"
        label_kind = "sample"
        width_mm = 50
        height_mm = 25
        [[element]]
        kind = "text"
        text = "BAG {bag} OF {bags}"
        at = [1, 1]
        width = 30
        size = 10
    "#;

    #[test]
    fn a_template_parses() {
        let t = Template::parse("t.toml", MINIMAL).unwrap();
        assert_eq!(t.elements.len(), 1);
        assert_eq!(
            placeholders("BAG {bag} OF {bags}").unwrap(),
            [
                Piece::Literal("BAG "),
                Piece::Key("bag"),
                Piece::Literal(" OF "),
                Piece::Key("bags")
            ]
        );
    }

    /// Issue #20: a bag's label shows its recipient and FOR AUTOLOGOUS USE ONLY, neither less
    /// prominent than the bag number; text under a barcode other than the DIN's is small.
    #[test]
    fn a_bag_label_identifies_its_recipient_and_keeps_barcode_text_small() {
        let bag = MINIMAL.replace("label_kind = \"sample\"", "label_kind = \"bag\"");
        let text = |text: &str, y: u32, size: u32| {
            format!(
                "\n[[element]]\nkind = \"text\"\ntext = \"{text}\"\nat = [1, {y}]\nwidth = 45\nsize = {size}\n"
            )
        };
        let problem = |extra: &str| {
            Template::parse("t.toml", &format!("{bag}{extra}"))
                .err()
                .map(|e| e.problem)
        };
        let name = text("{patient.family_name}", 6, 10);
        let id = text("{patient.id}", 11, 8);
        let autologous = text("FOR AUTOLOGOUS USE ONLY", 15, 10);
        assert!(problem("").unwrap().contains("family name"));
        assert!(problem(&name).unwrap().contains("identifier"));
        assert!(
            problem(&format!("{name}{id}"))
                .unwrap()
                .contains("FOR AUTOLOGOUS USE ONLY")
        );
        assert_eq!(problem(&format!("{name}{id}{autologous}")), None);
        // MINIMAL's BAG line is 10 pt: a 9 pt name is outranked.
        let small_name = text("{patient.family_name}", 6, 9);
        assert!(
            problem(&format!("{small_name}{id}{autologous}"))
                .unwrap()
                .contains("less prominent than the bag number")
        );
        let product = "\n[[element]]\nkind = \"code128\"\nsymbol = \"product\"\nat = [1, 17]\nwidth = 45\nheight = 4\n";
        let under = text("{product.code}", 21, 9);
        assert!(
            problem(&format!("{name}{id}{autologous}{product}{under}"))
                .unwrap()
                .contains("at most 8 pt (2 mm high)")
        );
        let small = text("{product.code}", 21, 8);
        assert_eq!(
            problem(&format!("{name}{id}{autologous}{product}{small}")),
            None
        );
        // The given name after the family name (it is kept no larger), never before.
        let given = text("{patient.given_name}", 18, 9);
        assert_eq!(problem(&format!("{name}{id}{autologous}{given}")), None);
        assert!(
            problem(&format!("{given}{name}{id}{autologous}"))
                .unwrap()
                .contains("list the family name first")
        );
    }

    /// Issue #17: a DIN barcode needs the COI identifier in a barcode and both eye-readable.
    #[test]
    fn a_din_barcode_needs_the_coi_and_both_eye_readable() {
        let din_bar = "\n[[element]]\nkind = \"code128\"\nsymbol = \"din\"\nat = [1, 6]\nwidth = 45\nheight = 6\n";
        let coi_bar = "\n[[element]]\nkind = \"code128\"\nsymbol = \"coi\"\nat = [1, 13]\nwidth = 45\nheight = 6\n";
        let shown = |of: &str, y: u32| {
            format!(
                "\n[[element]]\nkind = \"identifier\"\nof = \"{of}\"\nat = [1, {y}]\nsize = 6\nwidth = 45\n"
            )
        };
        let parse = |extra: &str| Template::parse("t.toml", &format!("{MINIMAL}{extra}"));
        let problem = |extra: &str| parse(extra).unwrap_err().problem;
        assert!(problem(din_bar).contains("carries the COI identifier in a barcode too"));
        assert!(problem(&format!("{din_bar}{coi_bar}")).contains("shows the din eye-readable"));
        assert!(
            problem(&format!("{din_bar}{coi_bar}{}", shown("din", 20)))
                .contains("shows the coi eye-readable")
        );
        assert!(
            parse(&format!(
                "{din_bar}{coi_bar}{}{}",
                shown("din", 20),
                shown("coi", 22)
            ))
            .is_ok()
        );
        // A label with no DIN barcode needs neither (a text-only label).
        assert!(parse("").is_ok());
        let no_kind = MINIMAL.replace("label_kind = \"sample\"\n", "");
        assert!(
            Template::parse("t.toml", &no_kind)
                .unwrap_err()
                .problem
                .contains("missing field `label_kind`")
        );
    }

    #[test]
    fn mistakes_in_a_template_are_named() {
        for (change, expected) in [
            (("{bags}", "{bag_count}"), "unknown placeholder {bag_count}"),
            (("{bags}", "{bags"), "a '{' without its '}'"),
            (("size = 10", "size = 4"), "text sizes must be"),
            (("width = 30", "width = 60"), "falls off the label"),
            (
                ("size = 10", "size = 10\nheight = 4"),
                "height 4 mm is under one line at 10 pt (4.23 mm)",
            ),
            (
                ("size = 10", "size = 10\ncolour = 1"),
                "unknown field `colour`",
            ),
            (
                ("kind = \"text\"", "kind = \"circle\""),
                "unknown variant `circle`",
            ),
        ] {
            let text = MINIMAL.replace(change.0, change.1);
            let err = Template::parse("t.toml", &text).unwrap_err().to_string();
            assert!(err.contains(expected), "{err}");
        }
    }
}
