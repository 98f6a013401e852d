//! The label engine (issue #3), pure: no I/O. So far the two pieces every label rests on —
//! the one escaping function through which every value reaches ZPL ([`zpl::field_data`]), and
//! the Code 128 plan that makes the printer and the preview draw the same symbols
//! ([`code128`]). Templates, layout, DataMatrix and the renderers come next.

pub mod code128;
pub mod zpl;
