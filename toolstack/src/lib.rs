//! The toolstack: what `xl` is made of.
//!
//! * [`config`]: xl.cfg files, parsed as Xen documents them;
//! * [`demo`]: `xl demo`, the guided tour that boots Dom0 and a guest.
#![deny(missing_docs)]

pub mod config;
pub mod demo;
