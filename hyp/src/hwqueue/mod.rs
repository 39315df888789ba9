//! Dom0 hardware queues: io_uring instances lent to the service VM (being written).
