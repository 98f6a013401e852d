//! A 1-bit raster at the printer's resolution — what the PNG preview shows — and the proof that
//! a symbol drawn on it reads back as its intended data, decoded by an independent reader
//! (rxing) before a label may be printed.

use super::code128::{Plan, Set};
use super::layout::{Item, Layout, Rect};
use super::template::Symbol;

/// A white canvas of `width` × `height` dots; each dot is black (0) or white (255), stored as
/// 8-bit luma because that is what the decoder reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Canvas {
    pub width: u32,
    pub height: u32,
    luma: Vec<u8>,
}

/// Why a symbol could not be drawn or proven.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RasterError {
    #[error("Code 128 {0}")]
    Encode(String),
    #[error(
        "the symbol does not fit the label: it needs {needed} dots across, {available} are left"
    )]
    TooWide { needed: u32, available: u32 },
    #[error("the drawn symbol does not read back: {0}")]
    Unreadable(String),
    #[error(
        "the drawn symbol reads back as something else (expected {expected} characters, read {read})"
    )]
    Mismatch { expected: usize, read: usize },
}

/// Where a drawn symbol lies, quiet zones included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extent {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
}

impl Canvas {
    pub fn new(width: u32, height: u32) -> Canvas {
        Canvas {
            width,
            height,
            luma: vec![255; width as usize * height as usize],
        }
    }

    /// Blackens a rectangle, clipped to the canvas.
    pub fn fill(&mut self, x: u32, y: u32, width: u32, height: u32) {
        let x_end = x.saturating_add(width).min(self.width);
        let y_end = y.saturating_add(height).min(self.height);
        for row in y.min(self.height)..y_end {
            let start = (row * self.width) as usize;
            self.luma[start + x.min(self.width) as usize..start + x_end as usize].fill(0);
        }
    }

    /// Blackens one dot, if it is on the canvas.
    pub fn dot(&mut self, x: u32, y: u32) {
        if x < self.width && y < self.height {
            self.luma[(y * self.width + x) as usize] = 0;
        }
    }

    pub fn is_black(&self, x: u32, y: u32) -> bool {
        x < self.width && y < self.height && self.luma[(y * self.width + x) as usize] == 0
    }

    /// The dots, row by row (0 black, 255 white).
    pub fn luma(&self) -> &[u8] {
        &self.luma
    }

    /// A copy of a region, for decoding one symbol without searching the whole label.
    pub fn crop(&self, extent: Extent) -> Canvas {
        let mut out = Canvas::new(extent.width, extent.height);
        for row in 0..extent.height.min(self.height.saturating_sub(extent.y)) {
            for col in 0..extent.width.min(self.width.saturating_sub(extent.x)) {
                let v = self.luma[((extent.y + row) * self.width + extent.x + col) as usize];
                out.luma[(row * extent.width + col) as usize] = v;
            }
        }
        out
    }

    /// Draws a Code 128 symbol for `plan` with its left quiet zone starting at `x`: modules
    /// `module` dots wide, bars `height` dots tall, 10 modules of quiet zone on each side.
    ///
    /// # Errors
    /// The plan cannot be encoded, or the symbol does not fit across the canvas.
    pub fn code128(
        &mut self,
        plan: &Plan,
        x: u32,
        y: u32,
        module: u32,
        height: u32,
    ) -> Result<Extent, RasterError> {
        let modules = code128_modules(plan)?;
        let quiet = 10 * module;
        let width = quiet * 2 + modules.len() as u32 * module;
        let available = self.width.saturating_sub(x);
        if width > available {
            return Err(RasterError::TooWide {
                needed: width,
                available,
            });
        }
        for (i, &m) in modules.iter().enumerate() {
            if m == 1 {
                self.fill(x + quiet + i as u32 * module, y, module, height);
            }
        }
        Ok(Extent {
            x,
            y,
            width,
            height,
        })
    }
}

impl Canvas {
    /// Draws a Data Matrix from its module grid with its quiet zone starting at (`x`, `y`):
    /// modules `module` dots square, `quiet` modules of quiet zone around it.
    ///
    /// # Errors
    /// A symbol that does not fit the canvas.
    pub fn datamatrix(
        &mut self,
        symbol: &DataMatrixModules,
        x: u32,
        y: u32,
        module: u32,
        quiet: u32,
    ) -> Result<Extent, RasterError> {
        let side = (symbol.size + 2 * quiet) * module;
        let available = self
            .width
            .saturating_sub(x)
            .min(self.height.saturating_sub(y));
        if side > available {
            return Err(RasterError::TooWide {
                needed: side,
                available,
            });
        }
        let origin = quiet * module;
        for (i, _) in symbol.dark.iter().enumerate().filter(|(_, dark)| **dark) {
            let (row, col) = (i as u32 / symbol.size, i as u32 % symbol.size);
            self.fill(
                x + origin + col * module,
                y + origin + row * module,
                module,
                module,
            );
        }
        Ok(Extent {
            x,
            y,
            width: side,
            height: side,
        })
    }
}

/// A square Data Matrix symbol's modules, row by row, `size` × `size`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataMatrixModules {
    pub size: u32,
    pub dark: Vec<bool>,
}

/// The side, in modules, of the square Data Matrix [`datamatrix_modules`] makes for `data`,
/// from the encoder's codeword stage alone (no error correction or module placement): what a
/// layout needs to place the symbol and tell the printer its size.
///
/// # Errors
/// Data too long for any symbol.
pub fn datamatrix_side(data: &str) -> Result<u32, RasterError> {
    use datamatrix::SymbolSize as S;
    let (_, size) = datamatrix::data::encode_data(
        data.as_bytes(),
        &datamatrix::SymbolList::default().enforce_square(),
        None,
        datamatrix::EncodationType::Ascii,
        false,
    )
    .map_err(|e| RasterError::Encode(format!("Data Matrix: {e:?}")))?;
    let side = match size {
        S::Square10 => 10,
        S::Square12 => 12,
        S::Square14 => 14,
        S::Square16 => 16,
        S::Square18 => 18,
        S::Square20 => 20,
        S::Square22 => 22,
        S::Square24 => 24,
        S::Square26 => 26,
        S::Square32 => 32,
        S::Square36 => 36,
        S::Square40 => 40,
        S::Square44 => 44,
        S::Square48 => 48,
        S::Square52 => 52,
        S::Square64 => 64,
        S::Square72 => 72,
        S::Square80 => 80,
        S::Square88 => 88,
        S::Square96 => 96,
        S::Square104 => 104,
        S::Square120 => 120,
        S::Square132 => 132,
        S::Square144 => 144,
        _ => {
            return Err(RasterError::Encode(
                "Data Matrix: the encoder chose a rectangular symbol".to_owned(),
            ));
        }
    };
    Ok(side)
}

/// Encodes `data` as a square ECC 200 Data Matrix in ASCII encodation (digit pairs packed, no
/// macros): the plainest encodation, the one a printer's own encoder also produces, so the
/// symbol size the preview shows is the size the ZPL asks for.
///
/// # Errors
/// Data too long for any symbol.
pub fn datamatrix_modules(data: &str) -> Result<DataMatrixModules, RasterError> {
    let symbol = datamatrix::DataMatrixBuilder::new()
        .with_encodation_types(datamatrix::EncodationType::Ascii)
        .with_macros(false)
        .with_symbol_list(datamatrix::SymbolList::default().enforce_square())
        .encode(data.as_bytes())
        .map_err(|e| RasterError::Encode(format!("Data Matrix: {e:?}")))?;
    let bitmap = symbol.bitmap();
    Ok(DataMatrixModules {
        size: bitmap.width() as u32,
        dark: bitmap.bits().to_vec(),
    })
}

impl Canvas {
    /// The canvas as a 1-bit grayscale PNG (black dots 0, white 1), at `dpi` (recorded in the
    /// file so viewers show it at print size).
    ///
    /// # Errors
    /// The encoder failed (it writes to memory, so only on a bug).
    pub fn to_png(&self, dpi: u32) -> Result<Vec<u8>, RasterError> {
        let mut out = Vec::new();
        let mut encoder = png::Encoder::new(&mut out, self.width, self.height);
        encoder.set_color(png::ColorType::Grayscale);
        encoder.set_depth(png::BitDepth::One);
        // fdeflate's fast mode: labels are mostly white runs, which it packs well and quickly.
        encoder.set_compression(png::Compression::Fast);
        let dots_per_metre = (f64::from(dpi) / 0.0254).round() as u32;
        encoder.set_pixel_dims(Some(png::PixelDimensions {
            xppu: dots_per_metre,
            yppu: dots_per_metre,
            unit: png::Unit::Meter,
        }));
        let mut writer = encoder
            .write_header()
            .map_err(|e| RasterError::Encode(format!("PNG: {e}")))?;
        let row_bytes = self.width.div_ceil(8) as usize;
        let mut packed = Vec::with_capacity(row_bytes * self.height as usize);
        for row in self.luma.chunks_exact(self.width.max(1) as usize) {
            for eight in row.chunks(8) {
                let mut byte = 0u8;
                for (bit, &luma) in eight.iter().enumerate() {
                    if luma != 0 {
                        byte |= 0x80 >> bit;
                    }
                }
                packed.push(byte);
            }
        }
        writer
            .write_image_data(&packed)
            .map_err(|e| RasterError::Encode(format!("PNG: {e}")))?;
        writer
            .finish()
            .map_err(|e| RasterError::Encode(format!("PNG: {e}")))?;
        Ok(out)
    }
}

/// Draws every item of `layout` on a white canvas of the label's size.
///
/// # Errors
/// A symbol that does not fit the label (the layout's lint refuses these first).
pub fn render(layout: &Layout) -> Result<Canvas, RasterError> {
    let mut canvas = Canvas::new(layout.width, layout.height);
    for item in &layout.items {
        match item {
            Item::Text {
                x,
                y,
                size,
                text,
                rotation,
                ..
            } => canvas.text(text, *x, *y, *size as f32, *rotation),
            Item::Rule(r) => canvas.fill(r.x, r.y, r.width, r.height),
            Item::Frame {
                rect: r,
                thickness: t,
            } => {
                canvas.fill(r.x, r.y, r.width, *t);
                canvas.fill(r.x, (r.y + r.height).saturating_sub(*t), r.width, *t);
                canvas.fill(r.x, r.y, *t, r.height);
                canvas.fill((r.x + r.width).saturating_sub(*t), r.y, *t, r.height);
            }
            Item::Code128 {
                rect, module, plan, ..
            } => {
                canvas.code128(plan, rect.x, rect.y, *module, rect.height)?;
            }
            Item::DataMatrix {
                rect,
                quiet,
                module,
                size,
                data,
                ..
            } => {
                let symbol = datamatrix_modules(data)?;
                if symbol.size != *size {
                    return Err(RasterError::Encode(format!(
                        "Data Matrix: {} modules across, the layout has {size}",
                        symbol.size
                    )));
                }
                canvas.datamatrix(&symbol, rect.x, rect.y, *module, *quiet / *module)?;
            }
        }
    }
    Ok(canvas)
}

/// Decodes every symbol of `layout` from `canvas` in the region the layout placed it and compares
/// it with its payload: the proof a label needs before it may print.
///
/// # Errors
/// The first symbol that does not read back as its payload, named.
pub fn prove_layout(layout: &Layout, canvas: &Canvas) -> Result<(), (Symbol, RasterError)> {
    for item in &layout.items {
        match item {
            Item::Code128 {
                rect, plan, symbol, ..
            } => prove_code128(canvas, extent(*rect), &plan.data()).map_err(|e| (*symbol, e))?,
            Item::DataMatrix {
                rect, data, symbol, ..
            } => prove_datamatrix(canvas, extent(*rect), data).map_err(|e| (*symbol, e))?,
            _ => {}
        }
    }
    Ok(())
}

fn extent(rect: Rect) -> Extent {
    Extent {
        x: rect.x,
        y: rect.y,
        width: rect.width,
        height: rect.height,
    }
}

/// Decodes the Data Matrix in `extent` and checks it reads exactly `expected`.
///
/// # Errors
/// Nothing decodes there, or it decodes to other data.
pub fn prove_datamatrix(
    canvas: &Canvas,
    extent: Extent,
    expected: &str,
) -> Result<(), RasterError> {
    prove(canvas, extent, rxing::BarcodeFormat::DATA_MATRIX, expected)
}

/// The modules (1 bar, 0 space) of a plan's symbol: start, data, check, stop.
///
/// # Errors
/// Data the encoder refuses (never for a plan from `code128::plan`).
pub fn code128_modules(plan: &Plan) -> Result<Vec<u8>, RasterError> {
    // barcoders takes the code sets as marker characters: Ɓ for set B, Ć for set C.
    let mut marked = String::new();
    for (set, text) in &plan.runs {
        marked.push(match set {
            Set::B => 'Ɓ',
            Set::C => 'Ć',
        });
        marked.push_str(text);
    }
    let symbol = barcoders::sym::code128::Code128::new(&marked)
        .map_err(|e| RasterError::Encode(e.to_string()))?;
    Ok(symbol.encode())
}

/// Decodes the Code 128 symbol in `extent` and checks it reads exactly `expected`.
///
/// # Errors
/// Nothing decodes there, or it decodes to other data.
pub fn prove_code128(canvas: &Canvas, extent: Extent, expected: &str) -> Result<(), RasterError> {
    prove(canvas, extent, rxing::BarcodeFormat::CODE_128, expected)
}

/// Decodes the one symbol of `format` in `extent` (decoding a known region is far cheaper than
/// searching a whole label) and compares the text.
fn prove(
    canvas: &Canvas,
    extent: Extent,
    format: rxing::BarcodeFormat,
    expected: &str,
) -> Result<(), RasterError> {
    let region = canvas.crop(extent);
    let read =
        rxing::helpers::detect_in_luma(region.luma, region.width, region.height, Some(format))
            .map_err(|e| RasterError::Unreadable(e.to_string()))?;
    if read.getText() != expected {
        return Err(RasterError::Mismatch {
            expected: expected.len(),
            read: read.getText().len(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::label::code128::plan;

    /// Modules per dpi for the 0.25 mm target X: 2 dots at 203, 3 at 300, 6 at 600.
    const MODULES: [(u32, u32); 3] = [(203, 2), (300, 3), (600, 6)];

    #[test]
    fn isbt_symbols_read_back_at_every_resolution() {
        for data in [
            "=A99992512345601",
            "&/CHA999925000042",
            "=<S1295100",
            "&>0253652359",
        ] {
            let plan = plan(data).unwrap();
            for (dpi, module) in MODULES {
                let height = (5 * dpi).div_ceil(25).max(40);
                let mut canvas = Canvas::new(1400, height + 40);
                let extent = canvas.code128(&plan, 0, 20, module, height).unwrap();
                prove_code128(
                    &canvas,
                    Extent {
                        y: 0,
                        height: height + 40,
                        ..extent
                    },
                    data,
                )
                .unwrap_or_else(|e| panic!("{data} at {dpi} dpi: {e}"));
            }
        }
    }

    #[test]
    fn a_damaged_symbol_is_not_proven() {
        let plan = plan("=A99992512345601").unwrap();
        let mut canvas = Canvas::new(800, 120);
        let extent = canvas.code128(&plan, 0, 10, 3, 100).unwrap();
        // Wipe one symbol character's width (11 modules) in the middle, full height.
        let mid = extent.x + extent.width / 2;
        for y in 0..120 {
            for x in mid..mid + 33 {
                canvas.luma[(y * 800 + x) as usize] = 255;
            }
        }
        assert!(prove_code128(&canvas, extent, "=A99992512345601").is_err());
    }

    #[test]
    fn compound_messages_in_data_matrix_read_back_at_every_resolution() {
        let data = "=+04000=A99992512345601=<S1295100&*0251531408&/CHA999925000042";
        for (dpi, module) in MODULES {
            let mut canvas = Canvas::new(400, 400);
            let symbol = datamatrix_modules(data).unwrap();
            let extent = canvas.datamatrix(&symbol, 10, 10, module, 1).unwrap();
            let margin = Extent {
                x: 0,
                y: 0,
                width: extent.width + 20,
                height: extent.height + 20,
            };
            prove_datamatrix(&canvas, margin, data).unwrap_or_else(|e| panic!("{dpi} dpi: {e}"));
        }
    }

    #[test]
    fn the_png_is_one_bit_and_holds_the_same_dots() {
        let mut canvas = Canvas::new(19, 7);
        canvas.fill(1, 1, 3, 2);
        canvas.fill(17, 6, 5, 5);
        let png = canvas.to_png(300).unwrap();
        let decoder = png::Decoder::new(std::io::Cursor::new(png));
        let mut reader = decoder.read_info().unwrap();
        let info = reader.info();
        assert_eq!(
            (info.width, info.height, info.bit_depth),
            (19, 7, png::BitDepth::One)
        );
        assert_eq!(
            info.pixel_dims.unwrap().xppu,
            11_811,
            "300 dpi in dots per metre"
        );
        let mut buf = vec![0u8; reader.output_buffer_size().unwrap()];
        let frame = reader.next_frame(&mut buf).unwrap();
        for y in 0..7u32 {
            for x in 0..19u32 {
                let byte = buf[y as usize * frame.line_size + x as usize / 8];
                let white = byte & (0x80 >> (x % 8)) != 0;
                assert_eq!(!white, canvas.is_black(x, y), "dot {x},{y}");
            }
        }
    }

    #[test]
    fn a_symbol_that_does_not_fit_is_refused() {
        let plan = plan("=A99992512345601").unwrap();
        let mut canvas = Canvas::new(200, 50);
        assert!(matches!(
            canvas.code128(&plan, 0, 0, 3, 40),
            Err(RasterError::TooWide { .. })
        ));
    }

    #[test]
    fn the_drawn_symbol_has_the_plans_module_count() {
        // Each symbol value is 11 modules, the stop 13: values + stop.
        let plan = plan("=A99992512345601").unwrap();
        let modules = code128_modules(&plan).unwrap();
        assert_eq!(modules.len(), plan.values().len() * 11 + 13);
        assert_eq!(
            &modules[modules.len() - 13..],
            &[1, 1, 0, 0, 0, 1, 1, 1, 0, 1, 0, 1, 1]
        );
    }
}
