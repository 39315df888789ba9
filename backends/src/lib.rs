//! Device backends (being written).
#![no_std]
