//! The label engine (issue #3), pure: no I/O. A [`template::Template`] (data, from
//! `label-templates/`) and one bag's [`data::LabelData`] become a [`layout::Layout`] in printer
//! dots; [`zpl::render`] and [`raster::render`] draw that one layout for the printer and the
//! preview; [`render`] proves every symbol by decoding the raster before a label may print.
//!
//! Every value reaches ZPL through [`zpl::field_data`]; Code 128 symbols come from one
//! [`code128::Plan`] so the printer and the preview draw the same modules.

pub mod code128;
pub mod data;
pub mod font;
pub mod layout;
pub mod raster;
pub mod template;
pub mod zpl;

use data::{DataError, LabelData};
use layout::{Layout, LayoutError};
use raster::{Canvas, RasterError};
use template::{Template, TemplateError};
use zpl::FieldError;

/// A label ready to print: its layout, the ZPL and the raster it was proven on.
#[derive(Debug, Clone)]
pub struct Label {
    pub layout: Layout,
    pub zpl: String,
    pub raster: Canvas,
}

impl Label {
    /// The preview: a 1-bit PNG at the label's resolution.
    ///
    /// # Errors
    /// The PNG encoder failed (memory only, so a bug).
    pub fn png(&self) -> Result<Vec<u8>, RasterError> {
        self.raster.to_png(self.layout.dpi)
    }
}

/// Why a label was not made. Messages name templates, elements, fields and symbols, never a
/// patient's data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LabelError {
    #[error(transparent)]
    Template(#[from] TemplateError),
    /// A resolution labels are not made for: at 152 dpi a Code 128 module is one dot, 0.17 mm,
    /// under the ISBT 128 minimum X.
    #[error("labels are made at 203, 300 or 600 dpi, not {0} dpi")]
    Resolution(u32),
    #[error("order data: {0}")]
    Data(#[from] DataError),
    #[error(transparent)]
    Layout(#[from] LayoutError),
    #[error("{0}")]
    Field(#[from] FieldError),
    #[error("drawing the label: {0}")]
    Raster(#[from] RasterError),
    /// A symbol on the drawn label does not read back as its payload: the label must not print.
    #[error("proof failed: the {symbol} symbol: {problem}")]
    Proof {
        symbol: &'static str,
        problem: RasterError,
    },
    /// A barcode field of the ZPL does not read back as the payload the raster proved.
    #[error("proof failed: the {symbol} symbol in the ZPL: {problem}")]
    ZplProof {
        symbol: &'static str,
        problem: String,
    },
}

impl LabelError {
    /// What a nurse is told: a plain sentence first when the refusal is about one of the
    /// patient's values (which value, and why), then the detail site IT needs. Never the value.
    pub fn for_operator(&self) -> String {
        let detail = self.to_string();
        let LabelError::Layout(LayoutError::Element {
            element, problem, ..
        }) = self
        else {
            return detail;
        };
        let field = [
            ("{patient.family_name}", "The patient's family name"),
            ("{patient.given_name}", "The patient's given name"),
            ("{patient.id}", "The patient's identifier"),
        ]
        .into_iter()
        .find(|(key, _)| element.contains(key))
        .map_or("A value of the order", |(_, words)| words);
        let plain = if let Some(script) =
            problem
                .split_once(": ")
                .map(|(_, why)| why)
                .and_then(|why| {
                    why.strip_suffix(
                        " script is not supported on labels (Latin, Greek and Cyrillic are)",
                    )
                }) {
            format!(
                "{field} has {script} letters, which labels cannot print (only Latin, Greek and Cyrillic letters)."
            )
        } else if problem.contains("does not fit") {
            format!("{field} is too long for this label.")
        } else if problem.contains("mark of a word broken") {
            format!("{field} contains », which labels use to mark a word broken across lines.")
        } else if problem.contains("cannot be printed") {
            format!("{field} has a character labels cannot print.")
        } else {
            return detail;
        };
        format!("{plain} ({detail})")
    }
}

/// The resolutions labels are made for.
pub const RESOLUTIONS: [u32; 3] = [203, 300, 600];

/// Lays out, draws and proves one label.
///
/// # Errors
/// See [`LabelError`]: nothing is returned unless every symbol decoded to its payload.
pub fn render(template: &Template, data: &LabelData<'_>, dpi: u32) -> Result<Label, LabelError> {
    if !RESOLUTIONS.contains(&dpi) {
        return Err(LabelError::Resolution(dpi));
    }
    let layout = Layout::new(template, data, dpi)?;
    let zpl = zpl::render(&layout)?;
    let raster = raster::render(&layout)?;
    raster::prove_layout(&layout, &raster).map_err(|(symbol, problem)| LabelError::Proof {
        symbol: symbol.name(),
        problem,
    })?;
    prove_zpl(&layout, &zpl)?;
    Ok(Label {
        layout,
        zpl,
        raster,
    })
}

/// Reads the barcode fields of `zpl` back as the printer will and compares each with the payload
/// the layout proved on the raster: the printer is sent exactly the symbols that were proven.
///
/// # Errors
/// [`LabelError::ZplProof`] naming the first symbol that differs or is missing.
pub fn prove_zpl(layout: &Layout, zpl: &str) -> Result<(), LabelError> {
    let mut printed = zpl::symbol_data(zpl).into_iter();
    for item in &layout.items {
        let (symbol, payload) = match item {
            layout::Item::Code128 { plan, symbol, .. } => (symbol, plan.data()),
            layout::Item::DataMatrix { data, symbol, .. } => (symbol, data.clone()),
            _ => continue,
        };
        let fail = |problem: &str| LabelError::ZplProof {
            symbol: symbol.name(),
            problem: problem.to_owned(),
        };
        match printed.next() {
            None => return Err(fail("missing from the ZPL")),
            Some(Err(problem)) => return Err(fail(&problem)),
            Some(Ok(data)) if data != payload => {
                return Err(fail("the ZPL encodes other data than its payload"));
            }
            Some(Ok(_)) => {}
        }
    }
    if printed.next().is_some() {
        return Err(LabelError::ZplProof {
            symbol: "extra",
            problem: "the ZPL holds a barcode the layout does not".to_owned(),
        });
    }
    Ok(())
}

/// The templates compiled into the agent, from `label-templates/`.
const BUILTIN: [(&str, &str); 3] = [
    (
        "apheresis-bag.toml",
        include_str!("../../label-templates/apheresis-bag.toml"),
    ),
    (
        "bag-small.toml",
        include_str!("../../label-templates/bag-small.toml"),
    ),
    (
        "sample-tube.toml",
        include_str!("../../label-templates/sample-tube.toml"),
    ),
];

/// The built-in templates, parsed and checked.
///
/// # Errors
/// A built-in template that does not parse (a build defect the tests catch).
pub fn builtin() -> Result<Vec<Template>, TemplateError> {
    BUILTIN
        .iter()
        .map(|(source, text)| Template::parse(source, text))
        .collect()
}
