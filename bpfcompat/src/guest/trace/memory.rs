//! Reading a stopped tracee's memory.

use std::io::IoSliceMut;

use nix::sys::uio::{RemoteIoVec, process_vm_readv};
use nix::unistd::Pid;

use super::decode::Memory;

/// A traced thread's address space.
pub(super) struct Process(pub Pid);

impl Memory for Process {
    fn read(&self, addr: u64, len: usize) -> Option<Vec<u8>> {
        if addr == 0 || len == 0 {
            return None;
        }
        let mut buf = vec![0u8; len];
        let remote = [RemoteIoVec {
            base: addr as usize,
            len,
        }];
        let got = process_vm_readv(self.0, &mut [IoSliceMut::new(&mut buf)], &remote).ok()?;
        buf.truncate(got);
        (got > 0).then_some(buf)
    }
}
