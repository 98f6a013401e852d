//! Printer profiles from `drivers/printers.toml`: resolution, print width, USB ids and status
//! support per model. Embedded at build time; the file is data a site can extend.

use serde::Deserialize;

/// The profiles this binary was built with.
pub const EMBEDDED: &str = include_str!("../../drivers/printers.toml");

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrinterProfile {
    pub model: String,
    pub dpi: u32,
    pub print_width_mm: u32,
    pub vendor_id: String,
    #[serde(default)]
    pub product_ids: Vec<String>,
    pub hqes: bool,
    pub status_port: u16,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileFile {
    printer: Vec<PrinterProfile>,
}

/// Parses a profiles file.
///
/// # Errors
/// TOML that does not match the profile shape, an unsupported resolution, or ids that are not
/// hexadecimal.
pub fn parse(text: &str) -> Result<Vec<PrinterProfile>, String> {
    let file: ProfileFile = toml::from_str(text).map_err(|e| format!("printer profiles: {e}"))?;
    for p in &file.printer {
        if ![203, 300, 600].contains(&p.dpi) {
            return Err(format!(
                "printer profile {:?}: dpi {} is not 203, 300 or 600",
                p.model, p.dpi
            ));
        }
        for id in std::iter::once(&p.vendor_id).chain(&p.product_ids) {
            if u16::from_str_radix(id, 16).is_err() {
                return Err(format!(
                    "printer profile {:?}: USB id {id:?} is not hexadecimal",
                    p.model
                ));
            }
        }
    }
    Ok(file.printer)
}

/// The profile named `model`.
pub fn by_model<'p>(profiles: &'p [PrinterProfile], model: &str) -> Option<&'p PrinterProfile> {
    profiles.iter().find(|p| p.model == model)
}

/// Whether a USB device is a printer a profile covers.
pub fn covers(profiles: &[PrinterProfile], vendor_id: u16, product_id: u16) -> bool {
    let hex = |id: &str| u16::from_str_radix(id, 16).ok();
    profiles.iter().any(|p| {
        hex(&p.vendor_id) == Some(vendor_id)
            && (p.product_ids.is_empty()
                || p.product_ids.iter().any(|id| hex(id) == Some(product_id)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_profiles_parse() {
        let profiles = parse(EMBEDDED).unwrap();
        assert!(profiles.len() >= 3);
        assert_eq!(by_model(&profiles, "Zebra ZT411 300 dpi").unwrap().dpi, 300);
        assert!(covers(&profiles, 0x0a5f, 0x0166));
        assert!(!covers(&profiles, 0x1234, 0x0166));
        let dpis: std::collections::HashSet<u32> = profiles.iter().map(|p| p.dpi).collect();
        assert_eq!(dpis, [203, 300, 600].into_iter().collect());
    }

    #[test]
    fn bad_profiles_are_refused() {
        let bad = EMBEDDED.replacen("dpi = 300", "dpi = 301", 1);
        assert!(parse(&bad).unwrap_err().contains("dpi 301"));
    }
}
