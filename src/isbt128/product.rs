//! The Product Code (DS 003) `αooootds`: a product description code (`αoooo`, looked up in
//! ICCBBA's licensed table, which the agent loads as site data and never guesses) and three
//! characters whose meaning depends on the product family `α`; and Product Divisions (DS 032).

use super::error::Isbt128Error;
use super::field::{ALPHANUMERIC, At, DIGIT, LOWER_OR_DIGIT, UPPER, UPPER_OR_DIGIT, ascii};
use super::spec;

/// A DS 003 product code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ProductCode {
    description_code: [u8; 5],
    tds: [u8; 3],
}

/// How a product family uses the last three characters `tds` (ST-001 §2.4.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TdsUse {
    /// Blood components, MPHO with INN/USAN, cellular therapy, regenerated tissue, plasma
    /// derivatives, clinical trials: `t` collection type, `ds` division.
    CollectionTypeAndDivision,
    /// Milk, organs, reproductive, tissue, ocular, fecal microbiota: a 3-digit pack code.
    PackCode,
    /// National or local codes (`A`–`D`), reserved ranges, unassigned families.
    NotInterpreted,
}

/// DS 032: six division characters, used with a product code whose division is `99`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ProductDivisions([u8; 6]);

impl ProductCode {
    /// A product code for a family that carries a collection type and division, e.g.
    /// `ProductCode::new("S1295", '1', "00")` for an autologous cellular-therapy collection.
    ///
    /// # Errors
    /// A description code that is not `α` + four letters or digits, a family without
    /// collection type, or a collection type or division outside their character sets.
    pub fn new(
        description_code: &str,
        collection_type: char,
        division: &str,
    ) -> Result<ProductCode, Isbt128Error> {
        let cannot = |problem: &str| Isbt128Error::CannotBuild {
            spec: &spec::PRODUCT_CODE,
            problem: problem.to_owned(),
        };
        let Ok(description_code) = <[u8; 5]>::try_from(description_code.as_bytes()) else {
            return Err(cannot("a product description code is 5 characters"));
        };
        let Ok(division) = <[u8; 2]>::try_from(division.as_bytes()) else {
            return Err(cannot("a division is 2 characters"));
        };
        if !collection_type.is_ascii() {
            return Err(cannot("the collection type is one ASCII letter or digit"));
        }
        // The check above makes the cast exact.
        let tds = [collection_type as u8, division[0], division[1]];
        if tds_use(&description_code) != TdsUse::CollectionTypeAndDivision {
            return Err(cannot(
                "this product family has no collection type and division",
            ));
        }
        let mut content = [0u8; 8];
        content[..5].copy_from_slice(&description_code);
        content[5..].copy_from_slice(&tds);
        ProductCode::from_content(At::new(&spec::PRODUCT_CODE, 0), &content)
    }

    pub(crate) fn from_content(at: At, bytes: &[u8]) -> Result<ProductCode, Isbt128Error> {
        let Ok(content) = <[u8; 8]>::try_from(bytes) else {
            return Err(at.invalid("a product code is 8 characters"));
        };
        at.check(&content[..1], 0, "product family", UPPER)?;
        at.check(
            &content[1..5],
            1,
            "product description code",
            UPPER_OR_DIGIT,
        )?;
        let (description_code, tds) = content.split_at(5);
        match tds_use(description_code) {
            TdsUse::CollectionTypeAndDivision => {
                at.check(&tds[..1], 5, "collection type", ALPHANUMERIC)?;
                at.check(&tds[1..2], 6, "division", UPPER_OR_DIGIT)?;
                at.check(&tds[2..], 7, "division", LOWER_OR_DIGIT)?;
            }
            TdsUse::PackCode => at.check(tds, 5, "pack code", DIGIT)?,
            TdsUse::NotInterpreted => at.check(tds, 5, "product code", ALPHANUMERIC)?,
        }
        let mut code = ProductCode {
            description_code: [0; 5],
            tds: [0; 3],
        };
        code.description_code.copy_from_slice(description_code);
        code.tds.copy_from_slice(tds);
        Ok(code)
    }

    /// The product description code `αoooo`, e.g. `S1295`.
    pub fn description_code(&self) -> &str {
        ascii(&self.description_code)
    }

    /// The collection type `t` (`1` = for autologous use only), for families that have one.
    pub fn collection_type(&self) -> Option<char> {
        (tds_use(&self.description_code) == TdsUse::CollectionTypeAndDivision)
            .then_some(char::from(self.tds[0]))
    }

    /// The division `ds` (`00` = not divided; `99` = see DS 032), for families that have one.
    pub fn division(&self) -> Option<&str> {
        (tds_use(&self.description_code) == TdsUse::CollectionTypeAndDivision)
            .then(|| ascii(&self.tds[1..]))
    }

    /// The three-digit pack code of families without collection type.
    pub fn pack_code(&self) -> Option<&str> {
        (tds_use(&self.description_code) == TdsUse::PackCode).then(|| ascii(&self.tds))
    }

    /// The last three characters as read.
    pub fn tds(&self) -> &str {
        ascii(&self.tds)
    }
}

fn tds_use(description_code: &[u8]) -> TdsUse {
    match description_code {
        [b'E' | b'F' | b'H' | b'S' | b'P' | b'Y', ..] | [b'X', b'0', ..] => {
            TdsUse::CollectionTypeAndDivision
        }
        [b'M' | b'N' | b'R' | b'T' | b'V' | b'W', ..] => TdsUse::PackCode,
        _ => TdsUse::NotInterpreted,
    }
}

impl ProductDivisions {
    /// Six division characters.
    ///
    /// # Errors
    /// Not six upper-case letters or digits.
    pub fn parse(text: &str) -> Result<ProductDivisions, Isbt128Error> {
        ProductDivisions::from_content(At::new(&spec::PRODUCT_DIVISIONS, 0), text.as_bytes())
    }

    pub(crate) fn from_content(at: At, bytes: &[u8]) -> Result<ProductDivisions, Isbt128Error> {
        let Ok(divisions) = <[u8; 6]>::try_from(bytes) else {
            return Err(at.invalid("product divisions are 6 characters"));
        };
        at.check(&divisions, 0, "divisions", UPPER_OR_DIGIT)?;
        Ok(ProductDivisions(divisions))
    }

    pub fn as_str(&self) -> &str {
        ascii(&self.0)
    }
}
