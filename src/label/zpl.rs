//! The one way a value reaches ZPL field data: [`field_data`] escapes it for a `^FH` field, so no
//! value — a patient's name with a `^` or `~` in it, a control character pasted from another
//! system — can ever become a printer command. Characters the printer's font cannot show are
//! refused with the field named, never replaced or dropped silently.

/// Why a value cannot be printed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FieldError {
    /// A character the printer's resident font cannot draw; the message names the field and the
    /// character's code point, not the value (it may be patient data).
    #[error("{field}: character U+{code:04X} cannot be printed by the printer's font")]
    Unprintable { field: String, code: u32 },
    /// `~` in Data Matrix data: `^BX` (quality 200) reads it as the start of an escape sequence
    /// (its default escape character), so the symbol would not carry the data as given.
    #[error("{field}: '~' cannot be carried in a Data Matrix (the printer reads it as an escape)")]
    DataMatrixEscape { field: String },
}

/// The escape character declared with every text field (`^FH_`).
pub const ESCAPE: char = '_';

use super::font::{self, Rotation};
use super::layout::{Item, Justify, Layout};

/// A Code 128 field at (`x`, `y`) dots: module width `module` dots, bars `height` dots, no
/// interpretation line (the label prints its own eye-readable text), no UCC check digit, no
/// automatic mode: the plan's explicit start and shift codes decide the symbols.
pub fn code128(plan: &super::code128::Plan, x: u32, y: u32, module: u32, height: u32) -> String {
    format!(
        "^FO{x},{y}^BY{module}^BCN,{height},N,N,N,N^FD{}^FS",
        plan.zpl_field()
    )
}

/// A Data Matrix (ECC 200, quality 200) at (`x`, `y`) dots with modules `module` dots square and
/// `size` × `size` modules, so the printer draws the symbol size the layout proved. The data goes
/// through [`field_data`] like every other value.
///
/// # Errors
/// Data with characters a label never carries in a symbol, or with `~`, the printer's escape
/// character for Data Matrix data (ISBT 128 data structures never hold it).
pub fn datamatrix(
    data: &str,
    x: u32,
    y: u32,
    module: u32,
    size: u32,
) -> Result<String, FieldError> {
    if data.contains('~') {
        return Err(FieldError::DataMatrixEscape {
            field: "data matrix".to_owned(),
        });
    }
    Ok(format!(
        "^FO{x},{y}^BXN,{module},200,{size},{size}^FH_^FD{}^FS",
        field_data("data matrix", data)?
    ))
}

/// The whole label as one ZPL format: `^XA`, UTF-8 (`^CI28`), the label's width and length in
/// dots, then every item of the layout, then `^XZ`. Text is the resident scalable font 0 at the
/// layout's size; every text value goes through [`field_data`].
///
/// # Errors
/// A value with a character the printer's font cannot draw (the layout refuses these first).
pub fn render(layout: &Layout) -> Result<String, FieldError> {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(2048);
    // Writing to a String cannot fail.
    let _ = writeln!(out, "^XA^CI28^PW{}^LL{}^LH0,0", layout.width, layout.height);
    for item in &layout.items {
        match item {
            // A line the resident font cannot draw (or every line, by the template's choice)
            // goes as a graphic: the preview's own dots.
            Item::Text {
                x,
                y,
                size,
                text,
                rotation,
                ..
            } if layout.text_as_graphics || !text.chars().all(printable) => {
                let dots = font::text_dots(text, *size as f32, *rotation);
                if let Some(field) = graphic_field((*x, *y), &dots, (layout.width, layout.height)) {
                    let _ = writeln!(out, "{field}");
                }
            }
            Item::Text {
                x,
                y,
                size,
                text,
                rotation,
                block,
                element,
            } => {
                let turn = match rotation {
                    Rotation::Normal => 'N',
                    Rotation::Clockwise => 'R',
                };
                // A one-line field block aligns the printer's own font as the layout aligned the
                // preview's; never for text with a backslash, which ^FB reads as a control.
                match block.filter(|_| !text.contains('\\')) {
                    Some(b) => {
                        let justify = match b.justify {
                            Justify::Center => 'C',
                            Justify::Right => 'R',
                        };
                        let _ = write!(
                            out,
                            "^FO{},{y}^A0{turn},{size},{size}^FB{},1,0,{justify}",
                            b.x, b.width
                        );
                    }
                    None => {
                        let _ = write!(out, "^FO{x},{y}^A0{turn},{size},{size}");
                    }
                }
                let _ = writeln!(
                    out,
                    "^FH_^FD{}^FS",
                    escape(text).map_err(|code| FieldError::Unprintable {
                        field: format!("text element {}", element + 1),
                        code,
                    })?
                );
            }
            Item::Rule(rect) => {
                let _ = writeln!(
                    out,
                    "^FO{},{}^GB{},{},{}^FS",
                    rect.x,
                    rect.y,
                    rect.width,
                    rect.height,
                    rect.width.min(rect.height)
                );
            }
            Item::Frame { rect, thickness } => {
                let _ = writeln!(
                    out,
                    "^FO{},{}^GB{},{},{thickness}^FS",
                    rect.x, rect.y, rect.width, rect.height
                );
            }
            Item::Code128 {
                rect,
                quiet,
                module,
                plan,
                ..
            } => {
                out.push_str(&code128(plan, rect.x + quiet, rect.y, *module, rect.height));
                out.push('\n');
            }
            Item::DataMatrix {
                rect,
                quiet,
                module,
                size,
                data,
                ..
            } => {
                out.push_str(&datamatrix(
                    data,
                    rect.x + quiet,
                    rect.y + quiet,
                    *module,
                    *size,
                )?);
                out.push('\n');
            }
        }
    }
    out.push_str("^XZ\n");
    Ok(out)
}

/// The data the printer will encode in each barcode field of `zpl` (`^BC` and `^BX`), in order,
/// read back as a Zebra reads it: `^FH_` escapes undone, Code 128 start, shift and invocation
/// codes resolved. Each entry is the data, or why the field cannot be read.
pub fn symbol_data(zpl: &str) -> Vec<Result<String, String>> {
    let mut found = Vec::new();
    // The barcode command of the open field: its name and parameters.
    let mut barcode: Option<(&str, &str)> = None;
    let mut hex = None;
    for command in zpl.split('^').skip(1) {
        let command = command.trim_end_matches('\n');
        if let Some(params) = command.strip_prefix("BC") {
            barcode = Some(("BC", params));
        } else if let Some(params) = command.strip_prefix("BX") {
            barcode = Some(("BX", params));
        } else if let Some(escape) = command.strip_prefix("FH") {
            hex = Some(escape.chars().next().unwrap_or(ESCAPE));
        } else if let Some(field) = command.strip_prefix("FD") {
            let field = match hex {
                Some(escape) => unescape(field, escape),
                None => Ok(field.to_owned()),
            };
            match barcode.take() {
                Some(("BC", params)) => found.push(
                    code128_params(params)
                        .and(field)
                        .and_then(|f| code128_data(&f)),
                ),
                Some((_, params)) => found.push(
                    datamatrix_params(params)
                        .and(field)
                        .and_then(datamatrix_data),
                ),
                None => {}
            }
        } else if command.starts_with("FS") {
            barcode = None;
            hex = None;
        }
    }
    found
}

/// `^BC` as a label writes it: `N,height,N,N,N,N` — no interpretation line, no check digit of
/// its own, no mode (the field's start and shift codes decide the symbols).
fn code128_params(params: &str) -> Result<(), String> {
    let fields: Vec<&str> = params.split(',').collect();
    match fields.as_slice() {
        ["N", height, "N", "N", "N", "N"] if height.parse::<u32>().is_ok() => Ok(()),
        _ => Err(format!("^BC{params} is not how a label draws Code 128")),
    }
}

/// `^BX` as a label writes it: `N,module,200,columns,rows` — ECC 200, the escape character
/// left at its default (`~`, which the data must then not hold).
fn datamatrix_params(params: &str) -> Result<(), String> {
    let fields: Vec<&str> = params.split(',').collect();
    match fields.as_slice() {
        ["N", module, "200", columns, rows]
            if [module, columns, rows]
                .iter()
                .all(|v| v.parse::<u32>().is_ok()) =>
        {
            Ok(())
        }
        _ => Err(format!(
            "^BX{params} is not how a label draws a Data Matrix"
        )),
    }
}

/// Data Matrix data as the printer reads it: refused if it holds `~`, which `^BX` would read as
/// the start of an escape sequence.
fn datamatrix_data(data: String) -> Result<String, String> {
    if data.contains('~') {
        return Err("Data Matrix data with '~' (the printer's escape character)".to_owned());
    }
    Ok(data)
}

/// Undoes `^FH` hex escapes (`_XX`, one per UTF-8 byte).
fn unescape(field: &str, escape: char) -> Result<String, String> {
    let mut bytes = Vec::with_capacity(field.len());
    let mut rest = field;
    while let Some(i) = rest.find(escape) {
        bytes.extend_from_slice(&rest.as_bytes()[..i]);
        let after = &rest[i + escape.len_utf8()..];
        let byte = after
            .get(..2)
            .filter(|h| h.bytes().all(|b| b.is_ascii_hexdigit()))
            .and_then(|h| u8::from_str_radix(h, 16).ok())
            .ok_or("a field escape without two hex digits")?;
        bytes.push(byte);
        rest = &after[2..];
    }
    bytes.extend_from_slice(rest.as_bytes());
    String::from_utf8(bytes).map_err(|_| "field escapes that are not UTF-8".to_owned())
}

/// The data a `^BC` field encodes, read as a label writes it: a start code first (`>:` set B,
/// `>;` set C), then a shift only to the other set (`>6` to B, `>5` to C), digit pairs in set
/// C, printable ASCII and the invocations `>0` `><` `>=` in set B. Anything else — set A,
/// function codes (`>6` in set B is FNC4), a start code later on — is refused.
fn code128_data(field: &str) -> Result<String, String> {
    #[derive(Clone, Copy, PartialEq)]
    enum Set {
        B,
        C,
    }
    let mut data = String::new();
    let mut set = None;
    let mut chars = field.chars();
    while let Some(c) = chars.next() {
        if c == '>' {
            match (chars.next(), set) {
                (Some(':'), None) | (Some('6'), Some(Set::C)) => set = Some(Set::B),
                (Some(';'), None) | (Some('5'), Some(Set::B)) => set = Some(Set::C),
                (Some('0'), Some(Set::B)) => data.push('>'),
                (Some('<'), Some(Set::B)) => data.push('^'),
                (Some('='), Some(Set::B)) => data.push('~'),
                (other, _) => {
                    return Err(format!(
                        "Code 128 invocation >{} is not one a label makes there",
                        other.unwrap_or(' ')
                    ));
                }
            }
            continue;
        }
        match set {
            None => return Err("Code 128 field without a start code".to_owned()),
            Some(Set::C) => match chars.next() {
                Some(d) if c.is_ascii_digit() && d.is_ascii_digit() => {
                    data.push(c);
                    data.push(d);
                }
                _ => return Err("Code 128 set C holds digit pairs only".to_owned()),
            },
            Some(Set::B) if (' '..='~').contains(&c) => data.push(c),
            Some(Set::B) => {
                return Err(format!(
                    "character U+{:04X} is not in Code 128 set B",
                    u32::from(c)
                ));
            }
        }
    }
    Ok(data)
}

/// Escapes `value` for a field opened with `^FH_` and a UTF-8 code page (`^CI28`): `^`, `~`,
/// `_`, `>` (so text can never read as a barcode invocation), `\` and every control character
/// become `_XX` hex escapes of their UTF-8 bytes; other characters pass as UTF-8.
///
/// # Errors
/// A character outside what the resident font draws (see [`printable`]).
pub fn field_data(field: &str, value: &str) -> Result<String, FieldError> {
    escape(value).map_err(|code| FieldError::Unprintable {
        field: field.to_owned(),
        code,
    })
}

/// [`field_data`] without the field's name: the code point of the first unprintable character.
fn escape(value: &str) -> Result<String, u32> {
    let mut out = String::with_capacity(value.len() + 8);
    for c in value.chars() {
        if !printable(c) {
            return Err(u32::from(c));
        }
        if needs_escape(c) {
            let mut utf8 = [0u8; 4];
            for byte in c.encode_utf8(&mut utf8).bytes() {
                out.push(ESCAPE);
                out.push_str(&format!("{byte:02X}"));
            }
        } else {
            out.push(c);
        }
    }
    Ok(out)
}

/// Characters ZPL could read as syntax inside field data.
fn needs_escape(c: char) -> bool {
    matches!(c, '^' | '~' | '_' | '>' | '\\') || c.is_control()
}

/// A `^GF` field (Z64: zlib, base64, CRC-16) holding `dots` (relative to `origin`), cut to
/// their bounding box inside a label `width` × `height` dots; `None` when no dot falls inside.
fn graphic_field(
    origin: (u32, u32),
    dots: &[(i64, i64)],
    (width, height): (u32, u32),
) -> Option<String> {
    let inside: Vec<(u32, u32)> = dots
        .iter()
        .filter_map(|&(dx, dy)| {
            let x = u32::try_from(i64::from(origin.0) + dx).ok()?;
            let y = u32::try_from(i64::from(origin.1) + dy).ok()?;
            (x < width && y < height).then_some((x, y))
        })
        .collect();
    let left = inside.iter().map(|d| d.0).min()?;
    let top = inside.iter().map(|d| d.1).min()?;
    let right = inside.iter().map(|d| d.0).max()?;
    let bottom = inside.iter().map(|d| d.1).max()?;
    let row_bytes = ((right - left) / 8 + 1) as usize;
    let rows = (bottom - top + 1) as usize;
    let mut bitmap = vec![0u8; row_bytes * rows];
    for (x, y) in inside {
        let (col, row) = ((x - left) as usize, (y - top) as usize);
        bitmap[row * row_bytes + col / 8] |= 0x80 >> (col % 8);
    }
    let encoded = base64(&fdeflate::compress_to_vec(&bitmap));
    let total = bitmap.len();
    Some(format!(
        "^FO{left},{top}^GFA,{total},{total},{row_bytes},:Z64:{encoded}:{:04X}^FS",
        crc16_xmodem(encoded.as_bytes())
    ))
}

/// Standard base64 with padding (RFC 4648), as `:Z64:` takes it.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// CRC-16/XMODEM (polynomial 0x1021, initial 0), the check of a `:Z64:` field's text.
fn crc16_xmodem(bytes: &[u8]) -> u16 {
    bytes.iter().fold(0u16, |crc, byte| {
        (0..8).fold(crc ^ (u16::from(*byte) << 8), |crc, _| {
            if crc & 0x8000 == 0 {
                crc << 1
            } else {
                (crc << 1) ^ 0x1021
            }
        })
    })
}

/// What the resident scalable font (Zebra font 0, CG Triumvirate, with `^CI28`) draws: ASCII,
/// Latin-1 and Latin Extended-A letters (Zoë, Núñez, Łukasz, Dvořák), and common punctuation.
/// Tabs and line breaks are refused too: a field is one line, and wrapping is the layout's job.
pub fn printable(c: char) -> bool {
    matches!(c, ' '..='~' | '\u{A0}'..='\u{17F}' | '\u{2018}'..='\u{201F}' | '\u{2013}' | '\u{2014}' | '\u{2022}' | '\u{2026}' | '\u{20AC}')
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The encodings of a `:Z64:` field against one the independent renderer (the `zpl` crate,
    /// which checks the CRC) draws as a 16 × 16 checkerboard of 4-dot cells:
    /// `:Z64:eNr78AEC+KHgAxofAD9nD/E=:405A`; and RFC 4648's base64 vectors.
    #[test]
    fn z64_pieces_match_a_known_field() {
        assert_eq!(crc16_xmodem(b"eNr78AEC+KHgAxofAD9nD/E="), 0x405A);
        assert_eq!(base64(b"Man"), "TWFu");
        assert_eq!(base64(b"Ma"), "TWE=");
        assert_eq!(base64(b"M"), "TQ==");
        assert_eq!(base64(&[0xFB, 0xFF]), "+/8=");
    }

    #[test]
    fn a_graphic_field_is_cut_to_its_dots() {
        let field = graphic_field((10, 20), &[(0, 0), (9, 2), (-50, 0)], (100, 100)).unwrap();
        // Two bytes a row (10 dots), three rows, from the top-left dot.
        assert!(field.starts_with("^FO10,20^GFA,6,6,2,:Z64:"), "{field}");
        assert!(graphic_field((0, 0), &[(-1, -1)], (100, 100)).is_none());
    }

    #[test]
    fn names_with_accents_and_apostrophes_print_exactly() {
        assert_eq!(
            field_data("patient", "Zoë Núñez O'Brien").unwrap(),
            "Zoë Núñez O'Brien"
        );
        assert_eq!(
            field_data("patient", "MÜLLER-LÜDENSCHEIDT").unwrap(),
            "MÜLLER-LÜDENSCHEIDT"
        );
    }

    #[test]
    fn command_characters_are_escaped() {
        assert_eq!(
            field_data("patient", "A^XZ~JR_>").unwrap(),
            "A_5EXZ_7EJR_5F_3E"
        );
        assert_eq!(field_data("x", "back\\slash").unwrap(), "back_5Cslash");
    }

    #[test]
    fn control_characters_and_unprintable_ones_are_refused_with_the_field_named() {
        for bad in [
            "line\nbreak",
            "tab\there",
            "bell\u{7}",
            "emoji 😀",
            "中文",
            "\u{202E}rtl",
        ] {
            let err = field_data("patient.family_name", bad).unwrap_err();
            assert!(
                err.to_string()
                    .starts_with("patient.family_name: character U+"),
                "{err}"
            );
            assert!(
                !err.to_string().contains(bad),
                "the value stays out of the message"
            );
        }
    }

    #[test]
    fn symbols_as_zpl() {
        let plan = crate::label::code128::plan("&>0253652359").unwrap();
        assert_eq!(
            code128(&plan, 40, 60, 3, 150),
            "^FO40,60^BY3^BCN,150,N,N,N,N^FD>:&>0>50253652359^FS"
        );
        assert_eq!(
            datamatrix("=+02000=A99992512345601&/CHA999925000042", 10, 20, 6, 24).unwrap(),
            "^FO10,20^BXN,6,200,24,24^FH_^FD=+02000=A99992512345601&/CHA999925000042^FS"
        );
    }

    #[test]
    fn barcode_fields_read_back_as_the_printer_reads_them() {
        let plan = crate::label::code128::plan("=A99992512345601&>^~x").unwrap();
        let zpl = format!(
            "^XA\n^FO1,1^A0N,20,20^FH_^FDnot a symbol^FS\n{}\n{}\n^XZ",
            code128(&plan, 0, 0, 2, 50),
            datamatrix("=+02000_^", 0, 0, 4, 16).unwrap()
        );
        assert_eq!(
            symbol_data(&zpl),
            [
                Ok("=A99992512345601&>^~x".to_owned()),
                Ok("=+02000_^".to_owned())
            ]
        );
        for bad in [
            ">:AB>8C", "AB", ">;12A4", ">;1", ">:AB>6CD", ">6AB", ">:A>;12", ">:Zoë",
        ] {
            let zpl = format!("^BCN,50,N,N,N,N^FD{bad}^FS");
            assert!(symbol_data(&zpl)[0].is_err(), "{bad}");
        }
        for params in ["N,50,Y,N,N,N", "N,50,N,N,N,A", "N,50,N,N,N", "R,50,N,N,N,N"] {
            let zpl = format!("^BC{params}^FD>:AB^FS");
            assert!(symbol_data(&zpl)[0].is_err(), "^BC{params}");
        }
        for bad in [
            "^BXN,4,200,16,16^FH_^FDab_4^FS",
            "^BXN,4,200,16,16^FH_^FDab_+A^FS",
            "^BXN,4,200,16,16^FH_^FDab_7E1^FS",
            "^BXN,4,140,16,16^FH_^FDab^FS",
            "^BXN,4,200,16,16,6,|^FH_^FDab^FS",
        ] {
            assert!(symbol_data(bad)[0].is_err(), "{bad}");
        }
        assert_eq!(
            datamatrix("=+02~1", 0, 0, 4, 16),
            Err(FieldError::DataMatrixEscape {
                field: "data matrix".to_owned()
            })
        );
    }

    /// Whatever the value, the escaped text holds no ZPL command character.
    #[test]
    fn no_value_can_start_a_command() {
        let hostile: String = (0u8..=127)
            .map(char::from)
            .filter(|c| printable(*c))
            .collect();
        let escaped = field_data("f", &hostile).unwrap();
        assert!(
            !escaped.contains('^') && !escaped.contains('~') && !escaped.contains('>'),
            "{escaped}"
        );
        // Every '_' in the output starts a two-digit hex escape.
        let bytes = escaped.as_bytes();
        for (i, b) in bytes.iter().enumerate() {
            if *b == b'_' {
                assert!(
                    bytes
                        .get(i + 1..i + 3)
                        .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)),
                    "{escaped}"
                );
            }
        }
    }
}
