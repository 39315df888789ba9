//! The toolstack: what `xl` is made of.
//!
//! * [`config`]: xl.cfg files, parsed as Xen documents them;
//! * [`client`] and [`commands`]: `xl`'s side of the conversation with
//!   `hypd`, and Xen's output formats;
//! * [`demo`]: `xl demo`, the guided tour that boots Dom0 and a guest;
//! * [`bench`]: `xl bench`, native vs host model vs service VM;
//! * [`trace`]: `xl trace`, one request's journey through every party.
#![deny(missing_docs)]

pub mod bench;
pub mod client;
pub mod commands;
pub mod config;
pub mod demo;
pub mod trace;
