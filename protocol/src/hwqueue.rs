//! Hardware-queue layout shared with Dom0 (being written).
