//! The bundled font for the preview and for measuring text: B612 Bold (SIL OFL 1.1, see
//! `assets/fonts/OFL.txt`), drawn for legibility on cockpit screens, with a slashed zero apart
//! from `O` and a serifed `1` and `I`. The printer draws its own resident font (see the README);
//! the layout measures every line with this one, which is wider than the printer's condensed font,
//! so a line that fits the preview also fits the print. B612 stops at Latin-1; the letters of
//! Latin Extended-A (Ł, ő, ř, …) come from a subset of DejaVu Sans Bold
//! (`assets/fonts/DEJAVU-LICENSE.txt`).

use std::sync::OnceLock;

use super::raster::Canvas;

const B612_BOLD: &[u8] = include_bytes!("../../assets/fonts/B612-Bold.otf");
const LATIN_EXTENDED_A: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans-Bold-LatinExtA.ttf");

/// The two faces: B612 first, the Latin Extended-A subset for what B612 lacks.
fn faces() -> &'static [fontdue::Font; 2] {
    static FACES: OnceLock<[fontdue::Font; 2]> = OnceLock::new();
    FACES.get_or_init(|| {
        // Both fonts are compiled in and tested; failing to read one is a build defect.
        #[allow(clippy::expect_used)]
        let load = |bytes| {
            fontdue::Font::from_bytes(bytes, fontdue::FontSettings::default())
                .expect("a bundled font parses")
        };
        [load(B612_BOLD), load(LATIN_EXTENDED_A)]
    })
}

/// The face that draws `c`, if any.
fn face_for(c: char) -> Option<&'static fontdue::Font> {
    faces().iter().find(|face| face.has_glyph(c))
}

/// Whether the bundled fonts have a glyph for `c` (the layout refuses text they cannot show).
pub fn draws(c: char) -> bool {
    c == ' ' || face_for(c).is_some()
}

/// Kerning between two characters drawn by the same face.
fn kern(previous: char, c: char, size: f32) -> f32 {
    match (face_for(previous), face_for(c)) {
        (Some(a), Some(b)) if std::ptr::eq(a, b) => {
            a.horizontal_kern(previous, c, size).unwrap_or(0.0)
        }
        _ => 0.0,
    }
}

fn metrics(c: char, size: f32) -> fontdue::Metrics {
    face_for(c).unwrap_or(&faces()[0]).metrics(c, size)
}

/// The advance width in dots of `text` set `size` dots high (the em size), kerning included.
pub fn width(text: &str, size: f32) -> f32 {
    let mut total = 0.0;
    let mut previous = None;
    for c in text.chars() {
        if let Some(p) = previous {
            total += kern(p, c, size);
        }
        total += metrics(c, size).advance_width;
        previous = Some(c);
    }
    total
}

/// The distance from the top of a line `size` dots high to its baseline.
pub fn ascent(size: f32) -> f32 {
    faces()[0]
        .horizontal_line_metrics(size)
        .map_or(size * 0.8, |m| m.ascent)
}

/// How a run of text is turned on the label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Rotation {
    /// Reads left to right.
    Normal,
    /// Turned 90° clockwise: reads top to bottom (ZPL orientation `R`).
    Clockwise,
}

impl Canvas {
    /// Draws `text` `size` dots high with the top-left of its line at (`x`, `y`); a dot is black
    /// where the glyph covers at least half of it. Turned clockwise, the line's top edge lies
    /// along the right-hand side of the box that starts at (`x`, `y`) and is `size` dots wide.
    pub fn text(&mut self, text: &str, x: u32, y: u32, size: f32, rotation: Rotation) {
        let baseline = ascent(size);
        let mut pen = 0.0f32;
        let mut previous = None;
        for c in text.chars() {
            if let Some(p) = previous {
                pen += kern(p, c, size);
            }
            previous = Some(c);
            let (metrics, coverage) = face_for(c).unwrap_or(&faces()[0]).rasterize(c, size);
            // Glyph bitmap origin in the unturned line's frame (y grows downwards).
            let left = (pen + metrics.xmin as f32).round() as i64;
            let top = (baseline - metrics.ymin as f32 - metrics.height as f32).round() as i64;
            pen += metrics.advance_width;
            for row in 0..metrics.height {
                for col in 0..metrics.width {
                    if coverage[row * metrics.width + col] < 128 {
                        continue;
                    }
                    let (u, v) = (left + col as i64, top + row as i64);
                    let (dx, dy) = match rotation {
                        Rotation::Normal => (u, v),
                        Rotation::Clockwise => (size.round() as i64 - 1 - v, u),
                    };
                    let (px, py) = (i64::from(x) + dx, i64::from(y) + dy);
                    if let (Ok(px), Ok(py)) = (u32::try_from(px), u32::try_from(py)) {
                        self.fill(px, py, 1, 1);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_font_draws_every_character_the_printer_does() {
        let missing: Vec<char> = (' '..='\u{17F}')
            .filter(|c| super::super::zpl::printable(*c) && !draws(*c))
            .collect();
        assert!(missing.is_empty(), "{missing:?}");
    }

    #[test]
    fn wider_text_measures_wider() {
        assert!(width("WWWW", 40.0) > width("iiii", 40.0));
        assert!((width("A9999", 80.0) - 2.0 * width("A9999", 40.0)).abs() < 1.0);
        assert!(width("", 40.0).abs() < f32::EPSILON);
    }

    #[test]
    fn text_is_drawn_inside_its_line() {
        let mut canvas = Canvas::new(200, 60);
        canvas.text("A0", 10, 10, 40.0, Rotation::Normal);
        let black: Vec<(u32, u32)> = (0..60)
            .flat_map(|y| (0..200).map(move |x| (x, y)))
            .filter(|&(x, y)| canvas.is_black(x, y))
            .collect();
        assert!(!black.is_empty());
        assert!(
            black
                .iter()
                .all(|&(x, y)| (10..10 + 60).contains(&x) && (10..50).contains(&y))
        );

        let mut turned = Canvas::new(60, 200);
        turned.text("A0", 10, 10, 40.0, Rotation::Clockwise);
        let black: Vec<(u32, u32)> = (0..200)
            .flat_map(|y| (0..60).map(move |x| (x, y)))
            .filter(|&(x, y)| turned.is_black(x, y))
            .collect();
        assert!(!black.is_empty());
        assert!(
            black
                .iter()
                .all(|&(x, y)| (10..50).contains(&x) && (10..70).contains(&y))
        );
    }
}
