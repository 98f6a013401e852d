//! Scanner profiles from `drivers/scanners.toml`: which USB devices are scanners, in which
//! modes, and the framing their factory settings use. Embedded at build time so the binary
//! knows the common models anywhere; the file is data a site can extend.

use serde::Deserialize;

/// The profiles this binary was built with.
pub const EMBEDDED: &str = include_str!("../../drivers/scanners.toml");

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScannerProfile {
    pub name: String,
    pub vendor_id: String,
    #[serde(default)]
    pub product_ids: Vec<String>,
    pub modes: Vec<Mode>,
    pub suffix: String,
    pub aim: bool,
    pub baud: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    Serial,
    HidPos,
    Keyboard,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileFile {
    scanner: Vec<ScannerProfile>,
}

/// Parses a profiles file.
///
/// # Errors
/// TOML that does not match the profile shape, or ids that are not hexadecimal.
pub fn parse(text: &str) -> Result<Vec<ScannerProfile>, String> {
    let file: ProfileFile = toml::from_str(text).map_err(|e| format!("scanner profiles: {e}"))?;
    for profile in &file.scanner {
        for id in std::iter::once(&profile.vendor_id).chain(&profile.product_ids) {
            if u16::from_str_radix(id, 16).is_err() {
                return Err(format!(
                    "scanner profile {:?}: USB id {id:?} is not hexadecimal",
                    profile.name
                ));
            }
        }
        if super::framing::Suffix::parse(&profile.suffix).is_none() && profile.suffix != "none" {
            return Err(format!(
                "scanner profile {:?}: suffix {:?} is not cr, lf, crlf, tab or none",
                profile.name, profile.suffix
            ));
        }
    }
    Ok(file.scanner)
}

/// The most specific profile for a USB device: one naming its product id, else one for any
/// product of its vendor.
pub fn find(
    profiles: &[ScannerProfile],
    vendor_id: u16,
    product_id: u16,
) -> Option<&ScannerProfile> {
    let hex = |id: &str| u16::from_str_radix(id, 16).ok();
    let of_vendor = || {
        profiles
            .iter()
            .filter(move |p| hex(&p.vendor_id) == Some(vendor_id))
    };
    of_vendor()
        .find(|p| p.product_ids.iter().any(|id| hex(id) == Some(product_id)))
        .or_else(|| of_vendor().find(|p| p.product_ids.is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_profiles_parse() {
        let profiles = parse(EMBEDDED).unwrap();
        assert!(profiles.len() >= 3);
        assert_eq!(
            find(&profiles, 0x0c2e, 0x0b8f).unwrap().name,
            "Honeywell Voyager 1400g"
        );
        assert!(
            find(&profiles, 0x0c2e, 0x1234)
                .unwrap()
                .name
                .starts_with("Honeywell (Metrologic)")
        );
        assert!(find(&profiles, 0x05e0, 0x1200).is_some());
        assert_eq!(find(&profiles, 0x1234, 0x0001), None);
    }

    #[test]
    fn bad_profiles_are_refused_with_the_reason() {
        let err = parse("[[scanner]]\nname = \"x\"\nvendor_id = \"zz\"\nmodes = []\nsuffix = \"cr\"\naim = true\nbaud = 9600\n").unwrap_err();
        assert!(err.contains("not hexadecimal"), "{err}");
        let err = parse("[[scanner]]\nname = \"x\"\n").unwrap_err();
        assert!(err.contains("missing field"), "{err}");
    }
}
