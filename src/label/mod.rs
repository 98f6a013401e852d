//! The label engine (issue #3), pure: no I/O. So far the pieces every label rests on: the one
//! escaping function through which every value reaches ZPL ([`zpl::field_data`]); the Code 128
//! plan that makes the printer and the preview draw the same symbols ([`code128`]); and the
//! 1-bit raster with the proof that a drawn symbol reads back as its data ([`raster`]).
//! Templates, layout, text, DataMatrix and the PNG and ZPL renderers come next.

pub mod code128;
pub mod raster;
pub mod zpl;
