//! One layout, two renderers: a template and one label's data become [`Layout`] — every item in
//! printer dots at one resolution, text fitted, symbols encoded — and both the ZPL and the raster
//! are drawn from it, so the preview and the print place the same things in the same dots.
//! [`Layout::lint`] checks the geometry before anything is drawn.

use super::code128::{self, Plan};
use super::data::LabelData;
use super::font::{self, Rotation};
use super::template::{
    Align, Element, LINE_PITCH, LabelKind, MIN_TEXT_PT, Piece, Symbol, Template, pieces,
};

/// The X dimension a label aims for, mm: Code 128 modules are exactly this rounded to whole dots,
/// Data Matrix modules at least this.
pub const TARGET_MODULE_MM: f64 = 0.25;

/// The least X dimension ISBT 128 allows, mm.
pub const MIN_MODULE_MM: f64 = 0.17;

/// A label laid out at one resolution: every position and size in dots.
#[derive(Debug, Clone)]
pub struct Layout {
    pub template: String,
    pub version: u32,
    pub dpi: u32,
    pub width: u32,
    pub height: u32,
    pub items: Vec<Item>,
    /// Every line of text goes to the printer as a graphic (the template's `text_as_graphics`).
    pub text_as_graphics: bool,
    /// The size the family name was drawn at, dots: the given name is never larger.
    family_name_size: Option<u32>,
    /// The area each template element claims (for the lint), by element.
    pub areas: Vec<Area>,
}

/// A rectangle in dots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rect {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
}

impl Rect {
    fn right(self) -> u32 {
        self.x + self.width
    }

    fn bottom(self) -> u32 {
        self.y + self.height
    }

    fn overlaps(self, other: Rect) -> bool {
        self.x < other.right()
            && other.x < self.right()
            && self.y < other.bottom()
            && other.y < self.bottom()
    }
}

/// What one element claims on the label.
#[derive(Debug, Clone)]
pub struct Area {
    /// The element's index in the template.
    pub element: usize,
    pub rect: Rect,
    pub is_rule: bool,
}

/// One thing to draw, in dots.
#[derive(Debug, Clone)]
pub enum Item {
    /// One line of text; `size` is the em height in dots. Turned clockwise, the line runs down
    /// from (`x`, `y`) inside a column `size` dots wide.
    Text {
        x: u32,
        y: u32,
        size: u32,
        text: String,
        rotation: Rotation,
        /// For centred or right-aligned text: the span it is aligned in, so the printer aligns
        /// its own (narrower) font the same way (`^FB`); `x` is where the preview's font starts.
        block: Option<Block>,
        /// The index of the template element that made it.
        element: usize,
    },
    /// A filled rectangle.
    Rule(Rect),
    /// An outlined rectangle `thickness` dots thick (the box round a check character).
    Frame { rect: Rect, thickness: u32 },
    /// A Code 128 symbol: `rect` includes the quiet zones, bars start `quiet` dots in;
    /// `modules` across without them.
    Code128 {
        rect: Rect,
        quiet: u32,
        module: u32,
        plan: Plan,
        modules: u32,
        symbol: Symbol,
    },
    /// A square Data Matrix: `rect` includes the quiet zone, `size` modules across.
    DataMatrix {
        rect: Rect,
        quiet: u32,
        module: u32,
        size: u32,
        data: String,
        symbol: Symbol,
    },
}

/// A span of one line that text is aligned in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Block {
    pub x: u32,
    pub width: u32,
    pub justify: Justify,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Justify {
    Center,
    Right,
}

/// Why a label cannot be laid out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LayoutError {
    /// An element whose content does not fit, or a value the label cannot carry; names the
    /// element by its template text, never the value.
    #[error("template {template}, element {element}: {problem}")]
    Element {
        template: String,
        element: String,
        problem: String,
    },
    /// The geometry rules: overlaps, symbols too small or too short.
    #[error("template {template} at {dpi} dpi: {problem}")]
    Lint {
        template: String,
        dpi: u32,
        problem: String,
    },
}

/// Millimetres to dots at `dpi`.
pub fn dots(mm: f64, dpi: u32) -> u32 {
    (mm * f64::from(dpi) / 25.4).round().max(0.0) as u32
}

fn points_to_dots(pt: f64, dpi: u32) -> u32 {
    (pt * f64::from(dpi) / 72.0).round().max(1.0) as u32
}

/// The Code 128 module at `dpi`: [`TARGET_MODULE_MM`] in whole dots, at least one.
pub fn module_dots(dpi: u32) -> u32 {
    dots(TARGET_MODULE_MM, dpi).max(1)
}

fn line_pitch(size: u32) -> u32 {
    (f64::from(size) * LINE_PITCH).round() as u32
}

impl Layout {
    /// Lays out `template` for `data` at `dpi`.
    ///
    /// # Errors
    /// A value that does not fit its element, a symbol that does not fit, a value with characters
    /// the printer or the preview cannot draw, or an absent value on a required element.
    pub fn new(template: &Template, data: &LabelData<'_>, dpi: u32) -> Result<Layout, LayoutError> {
        // A sample tube's label carries the sample flags, never the bag's (issue #20).
        let sample;
        let data = match template.label_kind {
            LabelKind::Bag => data,
            LabelKind::Sample => {
                sample = data.sample_tube();
                &sample
            }
        };
        let mut layout = Layout {
            template: template.name.clone(),
            version: template.version,
            dpi,
            width: dots(template.width_mm, dpi),
            height: dots(template.height_mm, dpi),
            items: Vec::new(),
            text_as_graphics: template.text_as_graphics,
            family_name_size: None,
            areas: Vec::new(),
        };
        for (i, element) in template.elements.iter().enumerate() {
            layout
                .place(element, data, i)
                .map_err(|problem| LayoutError::Element {
                    template: template.name.clone(),
                    element: describe(i, element),
                    problem,
                })?;
        }
        layout.lint(template)?;
        Ok(layout)
    }

    fn claim(&mut self, element: usize, rect: Rect, is_rule: bool) {
        self.areas.push(Area {
            element,
            rect,
            is_rule,
        });
    }

    fn place(
        &mut self,
        element: &Element,
        data: &LabelData<'_>,
        name: usize,
    ) -> Result<(), String> {
        let dpi = self.dpi;
        let at = |p: [f64; 2]| (dots(p[0], dpi), dots(p[1], dpi));
        match element {
            Element::Text {
                text,
                at: origin,
                width,
                height,
                size,
                min_size,
                align,
                upper,
                optional,
            } => {
                let Some(mut value) = fill(text, data)? else {
                    if *optional {
                        return Ok(());
                    }
                    return Err("a value it needs is absent from the order".to_owned());
                };
                if *upper {
                    value = capitals(&value);
                }
                check_drawable(&value)?;
                let (x, y) = at(*origin);
                let width = dots(*width, dpi);
                let size_dots = points_to_dots(*size, dpi);
                let height = height.map_or(line_pitch(size_dots), |h| dots(h, dpi));
                // The family name is never drawn smaller than the given name: a reader looks
                // for it first.
                let cap = text
                    .contains("{patient.given_name}")
                    .then_some(self.family_name_size)
                    .flatten();
                // A name may break after its hyphens and, too long for a line, inside a word;
                // other text (dates, identifiers, addresses) only at spaces.
                let is_name =
                    text.contains("{patient.family_name}") || text.contains("{patient.given_name}");
                let (size, lines) = fit(
                    &value,
                    (width, height),
                    (*size, min_size.unwrap_or(*size)),
                    (cap, is_name),
                    dpi,
                )?;
                if text.contains("{patient.family_name}") {
                    self.family_name_size =
                        Some(self.family_name_size.map_or(size, |s| s.min(size)));
                }
                for (n, line) in lines.into_iter().enumerate() {
                    let (shift, block) = match align {
                        Align::Left => (0, None),
                        Align::Center => (
                            width.saturating_sub(font::width(&line, size as f32).ceil() as u32) / 2,
                            Some(Block {
                                x,
                                width,
                                justify: Justify::Center,
                            }),
                        ),
                    };
                    self.items.push(Item::Text {
                        x: x + shift,
                        y: y + n as u32 * line_pitch(size),
                        size,
                        text: line,
                        rotation: Rotation::Normal,
                        block,
                        element: name,
                    });
                }
                self.claim(
                    name,
                    Rect {
                        x,
                        y,
                        width,
                        height,
                    },
                    false,
                );
            }
            Element::Identifier {
                of,
                at: origin,
                size,
                width,
            } => {
                let (x, y) = at(*origin);
                let room = dots(*width, dpi);
                let size = points_to_dots(*size, dpi);
                let (text, flags, check) = data.identifier(*of);
                let gap = (size / 4).max(2);
                let run = font::width(&text, size as f32).ceil() as u32;
                let mut pen = x + run + gap;
                // Right-aligned up to the flags, so the printer's narrower font keeps the flags
                // and the boxed check character next to the identifier. The block is the span the
                // preview's (wider) font takes: it cannot reach beyond the element's box.
                self.items.push(Item::Text {
                    x,
                    y,
                    size,
                    text,
                    rotation: Rotation::Normal,
                    block: Some(Block {
                        x,
                        width: run,
                        justify: Justify::Right,
                    }),
                    element: name,
                });
                if let Some(flags) = flags {
                    // Two small digits turned 90° clockwise, centred on the line.
                    let small = (size * 9 / 20).max(points_to_dots(MIN_TEXT_PT * 0.75, dpi));
                    let run = font::width(&flags, small as f32).ceil() as u32;
                    self.items.push(Item::Text {
                        x: pen,
                        y: y + size.saturating_sub(run) / 2,
                        size: small,
                        text: flags,
                        rotation: Rotation::Clockwise,
                        block: None,
                        element: name,
                    });
                    pen += small + gap;
                }
                // The printer centres its own glyph in the box (^FB) as the preview does.
                let (side, thickness) = check_box(size, dpi);
                let glyph = font::width(&check.to_string(), size as f32).ceil() as u32;
                let frame = Rect {
                    x: pen,
                    y,
                    width: side,
                    height: line_pitch(size),
                };
                self.items.push(Item::Frame {
                    rect: frame,
                    thickness,
                });
                self.items.push(Item::Text {
                    x: pen + side.saturating_sub(glyph) / 2,
                    y: y + (line_pitch(size) - size) / 2,
                    size,
                    text: check.to_string(),
                    rotation: Rotation::Normal,
                    block: Some(Block {
                        x: pen + thickness,
                        width: side - 2 * thickness,
                        justify: Justify::Center,
                    }),
                    element: name,
                });
                if frame.right() > x + room {
                    return Err(format!(
                        "needs {:.1} mm across, the element has {:.1} mm",
                        mm(frame.right() - x, dpi),
                        mm(room, dpi)
                    ));
                }
                self.claim(
                    name,
                    Rect {
                        x,
                        y,
                        width: room,
                        height: line_pitch(size),
                    },
                    false,
                );
            }
            Element::Code128 {
                symbol,
                at: origin,
                width,
                height,
                optional,
            } => {
                let Some(payload) = data.symbol(*symbol).map_err(|e| e.to_string())? else {
                    if *optional {
                        return Ok(());
                    }
                    return Err(format!("the order has no {}", symbol.name()));
                };
                let (x, y) = at(*origin);
                let plan = code128::plan(&payload).map_err(|e| e.to_string())?;
                // Start, data, check (11 modules each) and stop (13).
                let modules = plan.values().len() as u32 * 11 + 13;
                let module = module_dots(dpi);
                let quiet = 10 * module;
                let length = modules * module;
                let needed = length + 2 * quiet;
                let room = dots(*width, dpi);
                if needed > room {
                    return Err(format!(
                        "the {} symbol needs {:.1} mm across with its quiet zones, the element has {:.1} mm",
                        symbol.name(),
                        mm(needed, dpi),
                        mm(room, dpi)
                    ));
                }
                let bars = dots(*height, dpi)
                    .max(dots(5.0, dpi))
                    .max((f64::from(length) * 0.15).ceil() as u32);
                let rect = Rect {
                    x,
                    y,
                    width: needed,
                    height: bars,
                };
                self.items.push(Item::Code128 {
                    rect,
                    quiet,
                    module,
                    plan,
                    modules,
                    symbol: *symbol,
                });
                self.claim(
                    name,
                    Rect {
                        width: room,
                        ..rect
                    },
                    false,
                );
            }
            Element::DataMatrix {
                symbol,
                at: origin,
                side,
            } => {
                let Some(payload) = data.symbol(*symbol).map_err(|e| e.to_string())? else {
                    return Err(format!("the order has no {}", symbol.name()));
                };
                let (x, y) = at(*origin);
                let size = super::raster::datamatrix_side(&payload).map_err(|e| e.to_string())?;
                let room = dots(*side, dpi);
                let span = size + 2; // one module of quiet zone each side
                let module = room / span;
                if module < module_dots(dpi) {
                    return Err(format!(
                        "the {} needs {} modules of at least {TARGET_MODULE_MM} mm with its quiet zone: {:.1} mm, the element has {:.1} mm",
                        symbol.name(),
                        span,
                        mm(span * module_dots(dpi), dpi),
                        mm(room, dpi)
                    ));
                }
                let rect = Rect {
                    x,
                    y,
                    width: span * module,
                    height: span * module,
                };
                self.items.push(Item::DataMatrix {
                    rect,
                    quiet: module,
                    module,
                    size,
                    data: payload,
                    symbol: *symbol,
                });
                self.claim(
                    name,
                    Rect {
                        x,
                        y,
                        width: room,
                        height: room,
                    },
                    false,
                );
            }
            Element::Rule {
                at: origin,
                width,
                height,
            } => {
                let (x, y) = at(*origin);
                let rect = Rect {
                    x,
                    y,
                    width: dots(*width, dpi).max(1),
                    height: dots(*height, dpi).max(1),
                };
                self.items.push(Item::Rule(rect));
                self.claim(name, rect, true);
            }
        }
        Ok(())
    }

    /// The geometry rules: every element on the label, no element over another (rules may
    /// cross rules), Code 128 modules whole dots at the target with 10-module quiet zones and
    /// bars at least 5 mm and 15 % of the length, Data Matrix modules at least 0.25 mm.
    ///
    /// # Errors
    /// The first rule broken, naming the elements of `template` (the one laid out).
    pub fn lint(&self, template: &Template) -> Result<(), LayoutError> {
        let name = |i: usize| {
            template
                .elements
                .get(i)
                .map_or_else(|| format!("{}", i + 1), |e| describe(i, e))
        };
        let fail = |problem: String| LayoutError::Lint {
            template: self.template.clone(),
            dpi: self.dpi,
            problem,
        };
        for area in &self.areas {
            if area.rect.right() > self.width || area.rect.bottom() > self.height {
                return Err(fail(format!("{} falls off the label", name(area.element))));
            }
        }
        for (i, a) in self.areas.iter().enumerate() {
            for b in &self.areas[i + 1..] {
                if !(a.is_rule && b.is_rule) && a.rect.overlaps(b.rect) {
                    return Err(fail(format!(
                        "{} overlaps {}",
                        name(a.element),
                        name(b.element)
                    )));
                }
            }
        }
        for item in &self.items {
            match item {
                Item::Text {
                    x,
                    y,
                    size,
                    text,
                    rotation,
                    block,
                    element,
                } => {
                    let run = font::width(text, *size as f32).ceil() as u32;
                    let drawn = match rotation {
                        Rotation::Normal => Rect {
                            x: *x,
                            y: *y,
                            width: run,
                            height: *size,
                        },
                        Rotation::Clockwise => Rect {
                            x: *x,
                            y: *y,
                            width: *size,
                            height: run,
                        },
                    };
                    // The printer may draw anywhere in a ^FB block: it must be in the box too.
                    let span = block.map_or(drawn, |b| Rect {
                        x: b.x,
                        width: b.width,
                        ..drawn
                    });
                    let inside = self.areas.iter().any(|a| {
                        a.element == *element
                            && [drawn, span].iter().all(|r| {
                                r.x >= a.rect.x
                                    && r.y >= a.rect.y
                                    && r.right() <= a.rect.right()
                                    && r.bottom() <= a.rect.bottom()
                            })
                    });
                    let aligned =
                        block.is_none_or(|b| b.x <= drawn.x && b.x + b.width >= drawn.x + run);
                    if !inside || !aligned {
                        return Err(fail(format!(
                            "the text of {} runs out of its box",
                            name(*element)
                        )));
                    }
                }
                Item::Code128 {
                    rect,
                    quiet,
                    module,
                    modules,
                    symbol,
                    ..
                } => {
                    let length = modules * module;
                    if *module != module_dots(self.dpi)
                        || mm(*module, self.dpi) < MIN_MODULE_MM
                        || *quiet < 10 * module
                    {
                        return Err(fail(format!(
                            "the {} Code 128 is off its module or quiet zone",
                            symbol.name()
                        )));
                    }
                    let least = dots(5.0, self.dpi).max((f64::from(length) * 0.15).ceil() as u32);
                    if rect.height < least {
                        return Err(fail(format!("the {} Code 128 is too short", symbol.name())));
                    }
                }
                Item::DataMatrix {
                    module,
                    quiet,
                    symbol,
                    ..
                } if mm(*module, self.dpi) < TARGET_MODULE_MM - 0.005 || quiet < module => {
                    return Err(fail(format!(
                        "the {} Data Matrix module is under {TARGET_MODULE_MM} mm",
                        symbol.name()
                    )));
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// The box round a check character of text `size` dots: its side and line thickness, dots.
/// It is one line high and at least 1.1 em wide inside: wider than any character either font
/// draws.
fn check_box(size: u32, dpi: u32) -> (u32, u32) {
    let thickness = dots(0.25, dpi).max(2);
    (
        line_pitch(size).max(size + size / 10 + 2 * thickness),
        thickness,
    )
}

/// Dots to millimetres at `dpi`.
pub fn mm(dots: u32, dpi: u32) -> f64 {
    f64::from(dots) * 25.4 / f64::from(dpi)
}

/// How an element is named in messages: its number, kind and template text (never a value).
fn describe(i: usize, element: &Element) -> String {
    match element {
        Element::Text { text, .. } => format!("{} (text \"{text}\")", i + 1),
        Element::Identifier { of, .. } => format!("{} (identifier {of:?})", i + 1),
        Element::Code128 { symbol, .. } => format!("{} (Code 128 {})", i + 1, symbol.name()),
        Element::DataMatrix { symbol, .. } => {
            format!("{} (Data Matrix {})", i + 1, symbol.name())
        }
        Element::Rule { .. } => format!("{} (rule)", i + 1),
    }
}

/// The text of an element with its placeholders filled: `None` when a value is absent.
fn fill(text: &str, data: &LabelData<'_>) -> Result<Option<String>, String> {
    let mut out = String::new();
    for piece in pieces(text)? {
        match piece {
            Piece::Literal(s) => out.push_str(s),
            Piece::Key(key) => match data.text(key) {
                Some(value) => out.push_str(&value),
                None => return Ok(None),
            },
        }
    }
    Ok(Some(out))
}

/// Refuses text the label's fonts cannot draw, naming the code point and its script only
/// (never the value). A letter the printer's resident font lacks but the label's fonts draw is
/// sent as a graphic (`zpl::render`).
fn check_drawable(value: &str) -> Result<(), String> {
    for c in value.chars() {
        if !font::draws(c) {
            return Err(format!(
                "character U+{:04X} in its value cannot be printed: {}",
                u32::from(c),
                unsupported(c)
            ));
        }
    }
    Ok(())
}

/// Why a character cannot be printed, by its script.
fn unsupported(c: char) -> String {
    let script = match u32::from(c) {
        0x0300..=0x036F => {
            return "a combining accent (send names with precomposed letters, Unicode NFC)"
                .to_owned();
        }
        0x0530..=0x058F => "Armenian",
        0x0590..=0x05FF | 0xFB1D..=0xFB4F => "Hebrew",
        0x0600..=0x06FF | 0x0750..=0x077F | 0x08A0..=0x08FF | 0xFB50..=0xFDFF | 0xFE70..=0xFEFF => {
            "Arabic"
        }
        0x0900..=0x097F => "Devanagari",
        0x0E00..=0x0E7F => "Thai",
        0x10A0..=0x10FF => "Georgian",
        0x1100..=0x11FF | 0xAC00..=0xD7AF => "Hangul (Korean)",
        0x3040..=0x30FF => "Japanese kana",
        0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xF900..=0xFAFF => "CJK (Chinese, Japanese, Korean)",
        _ if c.is_control() => return "a control character".to_owned(),
        _ => return "the label's fonts (Latin, Greek, Cyrillic) do not have it".to_owned(),
    };
    format!("{script} script is not supported on labels (Latin, Greek and Cyrillic are)")
}

/// `value` in capitals, as each script writes them: Greek capitals drop the tonos (ΠΑΠΑΔΟΠΟΥΛΟΣ,
/// as Greek passports print names), keeping the dialytika.
fn capitals(value: &str) -> String {
    value
        .to_uppercase()
        .chars()
        .map(|c| match c {
            'Ά' => 'Α',
            'Έ' => 'Ε',
            'Ή' => 'Η',
            'Ί' => 'Ι',
            'Ό' => 'Ο',
            'Ύ' => 'Υ',
            'Ώ' => 'Ω',
            other => other,
        })
        .collect()
}

/// The mark at the end of a line where a word was broken to fit (never a hyphen: names have
/// hyphens of their own, and a reader must not take a break for one). `»` says "continues"; it
/// is in the printer's resident font and the preview's, and a value holding it is refused
/// wherever words may be broken, so on a label it only ever means a break.
pub const WORD_BREAK: char = '\u{BB}';

/// Fits `value` into a box `width` × `height` dots, never clipped: first on one line at the
/// largest size from `size` down to `floor` points (half-point steps); then wrapped at spaces
/// into as many lines as the box holds, again from `size` down to `floor`. A name (`name`)
/// may go further, as it must print for every patient: wrapped after its hyphens too, then
/// below `floor` down to the least legible size (one line, else wrapped, at each size), then
/// with a word too long for a line broken inside, each broken line ending in [`WORD_BREAK`].
/// With `cap`, no size above `cap` dots is used (below `floor` if it must). What fits none of
/// these is refused. Returns the size in dots and the lines.
fn fit(
    value: &str,
    (width, height): (u32, u32),
    (size, floor): (f64, f64),
    (cap, name): (Option<u32>, bool),
    dpi: u32,
) -> Result<(u32, Vec<String>), String> {
    let cap = cap.unwrap_or(u32::MAX);
    let least = if name || cap < points_to_dots(floor, dpi) {
        MIN_TEXT_PT.min(floor)
    } else {
        floor
    };
    // Sizes in dots from `from` down to `to` points, in half-point steps, none above the cap.
    let sizes = |from: f64, to: f64| {
        let steps = ((from - to) * 2.0).round().max(0.0) as u32;
        (0..=steps)
            .take(if from >= to { usize::MAX } else { 0 })
            .map(move |step| points_to_dots(from - f64::from(step) * 0.5, dpi))
            .filter(move |dots| *dots <= cap)
    };
    let fits = |line: &str, size: u32| font::width(line, size as f32).ceil() as u32 <= width;
    let room = |dots: u32| (height / line_pitch(dots).max(1)) as usize;
    // Where lines may break, the mark means a break and nothing else.
    if name && sizes(size, least).any(|dots| room(dots) >= 2) && value.contains(WORD_BREAK) {
        return Err(format!(
            "its value holds {WORD_BREAK}, the mark of a word broken across lines: it could not be told from a break"
        ));
    }
    let one_line = |dots: u32| fits(value, dots).then(|| (dots, vec![value.to_owned()]));
    let wrapped = |dots: u32, break_words: bool| {
        (room(dots) >= 2)
            .then(|| {
                wrap(value, room(dots), (name, break_words), |line| {
                    fits(line, dots)
                })
            })
            .flatten()
            .map(|lines| (dots, lines))
    };
    let found = sizes(size, floor)
        .find_map(one_line)
        .or_else(|| sizes(size, floor).find_map(|dots| wrapped(dots, false)))
        .or_else(|| {
            // Below the floor: the name's least legible sizes, then words broken.
            sizes(floor - 0.5, least)
                .find_map(|dots| one_line(dots).or_else(|| wrapped(dots, false)))
        })
        .or_else(|| {
            name.then(|| sizes(size, least).find_map(|dots| wrapped(dots, true)))
                .flatten()
        });
    found.ok_or_else(|| {
        format!(
            "its value ({} characters) does not fit {:.1} × {:.1} mm at {least} pt or more",
            value.chars().count(),
            mm(width, dpi),
            mm(height, dpi)
        )
    })
}

/// The pieces a line may break between: words after a space (the space dropped) and after a
/// hyphen inside a word (kept, ending the line as the name has it). A word that ends in a
/// hyphen keeps the next word on its line: a line ending in a hyphen must mean the name goes
/// on without a space.
fn breakable(value: &str) -> Vec<(String, bool)> {
    let mut pieces: Vec<(String, bool)> = Vec::new();
    let mut push = |piece: &str, spaced: bool| match pieces.last_mut() {
        Some((last, _)) if spaced && last.ends_with('-') => {
            last.push(' ');
            last.push_str(piece);
        }
        _ => pieces.push((piece.to_owned(), spaced)),
    };
    for word in value.split(' ').filter(|w| !w.is_empty()) {
        let mut rest = word;
        let mut spaced = true;
        while let Some(at) = rest.find('-').filter(|at| at + 1 < rest.len()) {
            push(&rest[..=at], spaced);
            rest = &rest[at + 1..];
            spaced = false;
        }
        push(rest, spaced);
    }
    pieces
}

/// Greedy wrap into at most `room` lines that each `fits`, breaking at spaces (and with
/// `hyphens`, after hyphens); with `break_words`, a piece too long for a line of its own is broken inside, the line ending
/// in [`WORD_BREAK`]. `None` when it cannot.
fn wrap(
    value: &str,
    room: usize,
    (hyphens, break_words): (bool, bool),
    fits: impl Fn(&str) -> bool,
) -> Option<Vec<String>> {
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::new();
    let pieces = if hyphens {
        breakable(value)
    } else {
        value
            .split(' ')
            .filter(|w| !w.is_empty())
            .map(|w| (w.to_owned(), true))
            .collect()
    };
    for (piece, spaced) in pieces {
        let candidate = if line.is_empty() {
            piece.clone()
        } else if spaced {
            format!("{line} {piece}")
        } else {
            format!("{line}{piece}")
        };
        if fits(&candidate) {
            line = candidate;
            continue;
        }
        if !line.is_empty() {
            lines.push(std::mem::take(&mut line));
        }
        if fits(&piece) {
            line = piece;
            continue;
        }
        if !break_words {
            return None;
        }
        // Broken inside: as many characters as fit with the mark, at least one per line.
        let mut rest: Vec<char> = piece.chars().collect();
        loop {
            let whole: String = rest.iter().collect();
            if fits(&whole) {
                line = whole;
                break;
            }
            let take = (1..rest.len())
                .rev()
                .find(|&n| fits(&rest[..n].iter().chain([&WORD_BREAK]).collect::<String>()))?;
            lines.push(rest[..take].iter().chain([&WORD_BREAK]).collect());
            rest.drain(..take);
            if lines.len() > room {
                return None;
            }
        }
    }
    if !line.is_empty() {
        lines.push(line);
    }
    (lines.len() <= room).then_some(lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn millimetres_become_whole_dots() {
        assert_eq!([203, 300, 600].map(module_dots), [2, 3, 6]);
        assert_eq!(dots(101.6, 203), 812);
        assert_eq!(dots(101.6, 300), 1200);
    }

    /// Every ISBT 128 check character, in the preview's font, fits its box with room to spare,
    /// so the printer's font (narrower) is centred in the box and never wraps out of it.
    #[test]
    fn every_check_character_fits_its_box() {
        for dpi in [203, 300, 600] {
            for pt in 6..=24 {
                let size = points_to_dots(f64::from(pt), dpi);
                let (side, thickness) = check_box(size, dpi);
                for c in ('0'..='9').chain('A'..='Z').chain(['*']) {
                    let glyph = font::width(&c.to_string(), size as f32);
                    assert!(
                        glyph * 1.1 <= (side - 2 * thickness) as f32,
                        "{c} ({glyph} of {side}) at {pt} pt, {dpi} dpi"
                    );
                }
            }
        }
    }

    #[test]
    fn text_shrinks_then_wraps_then_fails() {
        // 40 mm at 203 dpi.
        let width = dots(40.0, 203);
        let (size, lines) = fit("SHORT", (width, 100), (10.0, 6.0), (None, false), 203).unwrap();
        assert_eq!((size, lines.len()), (points_to_dots(10.0, 203), 1));

        let long = "EXAMPLE AUTOLOGOUS CAR-T";
        let (size, lines) = fit(long, (width, 30), (10.0, 6.0), (None, false), 203).unwrap();
        assert!(
            size < points_to_dots(10.0, 203) && lines.len() == 1,
            "shrinks first"
        );

        let longer = "EXAMPLE AUTOLOGOUS CAR-T PRODUCT FOR FURTHER MANUFACTURE";
        assert!(
            fit(longer, (width, 30), (10.0, 6.0), (None, false), 203).is_err(),
            "one line only"
        );
        let (_, lines) = fit(longer, (width, 80), (10.0, 6.0), (None, false), 203).unwrap();
        assert!(
            lines.len() >= 2 && lines.join(" ") == longer,
            "wraps in a taller box"
        );

        let err = fit(
            &"W".repeat(80),
            (width, 60),
            (10.0, 6.0),
            (None, false),
            203,
        )
        .unwrap_err();
        assert!(err.contains("80 characters"), "{err}");
        assert!(!err.contains("WWW"), "the value stays out of the message");
    }

    /// Issue #15: wrapped after a hyphen (kept, as the name has it) before any word is broken;
    /// a word too long for a line is broken inside, the line ending in the mark, never a
    /// hyphen; the lines hold the whole value.
    #[test]
    fn names_wrap_after_hyphens_then_break_inside_words_with_the_mark() {
        let width = dots(46.0, 203);
        let height = dots(8.0, 203);
        let (_, lines) = fit(
            "VANDENBERGHE-OKONKWO-RASMUSSEN-PAPADOPOULOS",
            (width, height),
            (14.0, 9.0),
            (None, true),
            203,
        )
        .unwrap();
        assert!(lines.len() >= 2, "{lines:?}");
        assert!(lines[0].ends_with('-'), "{lines:?}");
        assert!(lines.iter().all(|l| !l.contains(WORD_BREAK)), "{lines:?}");
        assert_eq!(
            lines.concat(),
            "VANDENBERGHE-OKONKWO-RASMUSSEN-PAPADOPOULOS"
        );

        let word = "WOLFESCHLEGELSTEINHAUSENBERGERDORFFWOLFESCHLEGELSTEIN";
        let (size, lines) = fit(word, (width, height), (14.0, 6.0), (None, true), 203).unwrap();
        assert!(lines.len() >= 2, "{lines:?}");
        for line in &lines[..lines.len() - 1] {
            assert!(line.ends_with(WORD_BREAK), "{lines:?}");
            assert!(font::width(line, size as f32).ceil() as u32 <= width);
        }
        let joined: String = lines
            .concat()
            .chars()
            .filter(|c| *c != WORD_BREAK)
            .collect();
        assert_eq!(joined, word);

        // The mark in a value could not be told from a break.
        let err = fit(
            &format!("SMITH{WORD_BREAK}JONES"),
            (width, height),
            (14.0, 6.0),
            (None, true),
            203,
        )
        .unwrap_err();
        assert!(err.contains("mark of a word broken"), "{err}");
        // Other text breaks at spaces only: a date is never cut at its hyphens.
        assert!(
            fit(
                "2025-06-04",
                (dots(12.0, 203), 60),
                (10.0, 10.0),
                (None, false),
                203
            )
            .is_err()
        );
        assert!(super::super::zpl::printable(WORD_BREAK) && font::draws(WORD_BREAK));
    }

    #[test]
    fn greek_capitals_drop_the_tonos_and_keep_the_dialytika() {
        assert_eq!(capitals("Παπαδόπουλος"), "ΠΑΠΑΔΟΠΟΥΛΟΣ");
        assert_eq!(capitals("Ϊάσων Ώρα"), "ΪΑΣΩΝ ΩΡΑ");
        assert_eq!(capitals("Müller-Lüdenscheidt"), "MÜLLER-LÜDENSCHEIDT");
    }

    /// A cap keeps text at or below it, going under the element's floor if it must (never under
    /// the least legible size).
    #[test]
    fn a_cap_keeps_text_no_larger() {
        let width = dots(46.0, 203);
        let cap = points_to_dots(7.0, 203);
        let (size, _) = fit("Anna", (width, 60), (11.0, 8.0), (Some(cap), true), 203).unwrap();
        assert_eq!(size, cap);
        assert!(fit("Anna", (width, 60), (11.0, 8.0), (Some(1), true), 203).is_err());
    }
}
