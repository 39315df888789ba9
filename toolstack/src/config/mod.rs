//! xl.cfg parsing (being written).
