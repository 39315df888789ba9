//! The restrictions a hardware queue is enabled with: what the host kernel
//! lets Dom0's SQEs do, and what this process may still register.
//!
//! * SQE opcodes: [`ALLOWED_OPCODES`] only (no vectored or non-fixed I/O:
//!   their addresses would be host pointers the fixed buffers do not
//!   bound; no open, no socket, no message to another ring);
//! * SQE flags: [`SQE_FIXED_FILE`] required, so only the registered file
//!   is ever touched; [`ALLOWED_SQE_FLAGS`] allowed besides;
//! * register opcodes after enabling: buffer updates only, for foreign
//!   windows mapped later. Dom0 cannot call `io_uring_register` at all;
//!   this bounds `hypd`'s own later use of the ring.

use super::sys::{
    IoUringRestriction, IORING_REGISTER_BUFFERS_UPDATE, IORING_RESTRICTION_REGISTER_OP,
    IORING_RESTRICTION_SQE_FLAGS_ALLOWED, IORING_RESTRICTION_SQE_FLAGS_REQUIRED,
    IORING_RESTRICTION_SQE_OP,
};
use protocol::hwqueue::{ALLOWED_OPCODES, ALLOWED_SQE_FLAGS, SQE_FIXED_FILE};

fn restriction(opcode: u16, arg: u8) -> IoUringRestriction {
    IoUringRestriction {
        opcode,
        arg,
        ..Default::default()
    }
}

/// The restriction list registered before the rings are enabled.
pub fn restrictions() -> Vec<IoUringRestriction> {
    let mut list: Vec<_> = ALLOWED_OPCODES
        .iter()
        .map(|&op| restriction(IORING_RESTRICTION_SQE_OP, op))
        .collect();
    list.push(restriction(
        IORING_RESTRICTION_SQE_FLAGS_REQUIRED,
        SQE_FIXED_FILE,
    ));
    list.push(restriction(
        IORING_RESTRICTION_SQE_FLAGS_ALLOWED,
        ALLOWED_SQE_FLAGS,
    ));
    list.push(restriction(
        IORING_RESTRICTION_REGISTER_OP,
        IORING_REGISTER_BUFFERS_UPDATE as u8,
    ));
    list
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::hwqueue::op;

    #[test]
    fn only_fixed_buffer_io_fsync_and_nop_are_allowed() {
        let list = restrictions();
        let ops: Vec<u8> = list
            .iter()
            .filter(|r| r.opcode == IORING_RESTRICTION_SQE_OP)
            .map(|r| r.arg)
            .collect();
        assert_eq!(ops, [op::NOP, op::FSYNC, op::READ_FIXED, op::WRITE_FIXED]);
        assert!(!ops.contains(&op::READV) && !ops.contains(&op::OPENAT));
        let required: Vec<u8> = list
            .iter()
            .filter(|r| r.opcode == IORING_RESTRICTION_SQE_FLAGS_REQUIRED)
            .map(|r| r.arg)
            .collect();
        assert_eq!(required, [SQE_FIXED_FILE]);
        assert!(list.iter().all(|r| r.resv == 0 && r.resv2 == [0; 3]));
    }
}
