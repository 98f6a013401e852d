//! The bundled font for the preview and for measuring text: B612 Bold (SIL OFL 1.1, see
//! `assets/fonts/OFL.txt`), drawn for legibility on cockpit screens, with a slashed zero apart
//! from `O` and a serifed `1` and `I`. The printer draws its own resident font (see the README);
//! the layout measures every line with this one, which is wider than the printer's condensed font,
//! so a line that fits the preview also fits the print. B612 stops at Latin-1; the rest of the
//! scripts a name may use come from a subset of DejaVu Sans Bold
//! (`assets/fonts/DEJAVU-LICENSE.txt`): Latin Extended-A and -B, Latin Extended Additional
//! (Vietnamese: Nguyễn, Đặng), Greek and Cyrillic. A line with a letter the printer's resident
//! font lacks is sent to the printer as a graphic drawn by [`text_dots`], so print and preview
//! are the same dots.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use super::raster::Canvas;

const B612_BOLD: &[u8] = include_bytes!("../../assets/fonts/B612-Bold.otf");
const SCRIPTS: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans-Bold-Scripts.ttf");

/// The two faces: B612 first, the DejaVu subset for what B612 lacks.
fn faces() -> &'static [fontdue::Font; 2] {
    static FACES: OnceLock<[fontdue::Font; 2]> = OnceLock::new();
    FACES.get_or_init(|| {
        // Both fonts are compiled in and tested; failing to read one is a build defect.
        #[allow(clippy::expect_used)]
        let load = |bytes| {
            fontdue::Font::from_bytes(bytes, fontdue::FontSettings::default())
                .expect("a bundled font parses")
        };
        [load(B612_BOLD), load(SCRIPTS)]
    })
}

/// The face that draws `c`, if any: B612 first, except that Greek and Cyrillic come whole from
/// the DejaVu subset (B612 has some of their letters, and a word drawn from two faces reads as
/// two words: "Αικατε ρίνη").
fn face_for(c: char) -> Option<&'static fontdue::Font> {
    let [b612, dejavu] = faces();
    if from_dejavu(c) && dejavu.has_glyph(c) {
        return Some(dejavu);
    }
    [b612, dejavu].into_iter().find(|face| face.has_glyph(c))
}

/// Greek and Cyrillic (with their extensions): always drawn from the DejaVu subset.
fn from_dejavu(c: char) -> bool {
    matches!(u32::from(c), 0x0370..=0x052F | 0x1F00..=0x1FFF)
}

/// Whether the bundled fonts have a glyph for `c` (the layout refuses text they cannot show).
pub fn draws(c: char) -> bool {
    c == ' ' || advance_em(c).is_some()
}

/// The advance of `c` in ems, from tables built once: an array for the Latin letters every
/// label uses, a map for the rest (neither font has a `kern` table, so a line's width is the sum
/// of its advances).
fn advance_em(c: char) -> Option<f32> {
    struct Advances {
        latin: [Option<f32>; LATIN_END],
        other: HashMap<char, f32>,
    }
    static ADVANCES: OnceLock<Advances> = OnceLock::new();
    let table = ADVANCES.get_or_init(|| {
        let mut table = Advances {
            latin: [None; LATIN_END],
            other: HashMap::new(),
        };
        // Each character's advance from the face `face_for` draws it with.
        for face in faces() {
            for &c in face.chars().keys() {
                if !face_for(c).is_some_and(|drawn| std::ptr::eq(drawn, face)) {
                    continue;
                }
                let advance = face.metrics(c, 1000.0).advance_width / 1000.0;
                match table.latin.get_mut(c as usize) {
                    Some(slot) => *slot = Some(advance),
                    None => {
                        table.other.insert(c, advance);
                    }
                }
            }
        }
        table
    });
    match table.latin.get(c as usize) {
        Some(advance) => *advance,
        None => table.other.get(&c).copied(),
    }
}

/// Characters below this code point have their advance in an array.
const LATIN_END: usize = 0x180;

/// The advance width in dots of `text` set `size` dots high (the em size).
pub fn width(text: &str, size: f32) -> f32 {
    text.chars()
        .map(|c| advance_em(c).unwrap_or(0.0))
        .sum::<f32>()
        * size
}

/// The distance from the top of a line `size` dots high to its baseline.
pub fn ascent(size: f32) -> f32 {
    faces()[0]
        .horizontal_line_metrics(size)
        .map_or(size * 0.8, |m| m.ascent)
}

/// One glyph at one size, thresholded: the dots at least half covered, relative to the glyph's
/// origin on the baseline (y grows downwards).
struct Glyph {
    dots: Vec<(i32, i32)>,
}

/// Rasterized glyphs by character and size in dots. Labels use a handful of sizes, so the
/// cache stays small; it is emptied if it ever grows past [`GLYPH_CACHE_LIMIT`].
fn glyph(c: char, size: u32) -> Arc<Glyph> {
    static CACHE: OnceLock<Mutex<GlyphCache>> = OnceLock::new();
    let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
    let key = (c, size);
    if let Some(found) = cache.lock().ok().and_then(|m| m.get(&key).cloned()) {
        return found;
    }
    let (metrics, coverage) = face_for(c).unwrap_or(&faces()[0]).rasterize(c, size as f32);
    let top = -(metrics.ymin + metrics.height as i32);
    let dots = (0..metrics.height)
        .flat_map(|row| (0..metrics.width).map(move |col| (row, col)))
        .filter(|&(row, col)| coverage[row * metrics.width + col] >= 128)
        .map(|(row, col)| (metrics.xmin + col as i32, top + row as i32))
        .collect();
    let made = Arc::new(Glyph { dots });
    if let Ok(mut map) = cache.lock() {
        if map.len() >= GLYPH_CACHE_LIMIT {
            map.clear();
        }
        map.insert(key, Arc::clone(&made));
    }
    made
}

const GLYPH_CACHE_LIMIT: usize = 20_000;

type GlyphCache = HashMap<(char, u32), Arc<Glyph>>;

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
        for (dx, dy) in text_dots(text, size, rotation) {
            if let (Ok(px), Ok(py)) = (
                u32::try_from(i64::from(x) + dx),
                u32::try_from(i64::from(y) + dy),
            ) {
                self.dot(px, py);
            }
        }
    }
}

/// The dots [`Canvas::text`] blackens for `text`, relative to the line's top-left corner: the
/// one drawing of a line, for the preview and for a line the printer is sent as a graphic.
pub fn text_dots(text: &str, size: f32, rotation: Rotation) -> Vec<(i64, i64)> {
    let baseline = ascent(size).round() as i64;
    let whole = size.round() as u32;
    let mut pen = 0.0f32;
    let mut dots = Vec::new();
    for c in text.chars() {
        let left = pen.round() as i64;
        pen += advance_em(c).unwrap_or(0.0) * size;
        for &(dx, dy) in &glyph(c, whole).dots {
            let (u, v) = (left + i64::from(dx), baseline + i64::from(dy));
            dots.push(match rotation {
                Rotation::Normal => (u, v),
                Rotation::Clockwise => (i64::from(whole) - 1 - v, u),
            });
        }
    }
    dots
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
