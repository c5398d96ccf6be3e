use std::io;
use std::os::fd::AsRawFd;

use percore_runtime::io_uring::{opcode, squeue, types};
use percore_runtime::{BufResult, IoBuf, IoBufMut, OpCode};
use socket2::{SockAddr, SockAddrStorage};

use super::SharedFd;

/// A list of buffers an op sends from, as `iovec`s of their initialised bytes.
pub(crate) trait BufList: 'static {
    /// Number of buffers.
    fn count(&self) -> usize;
    /// The initialised bytes of buffer `i` (`i < count()`).
    fn iovec(&self, i: usize) -> libc::iovec;
}

/// A list of buffers an op receives into, each at its spare capacity.
pub(crate) trait BufListMut: BufList {
    /// The spare capacity of buffer `i` (`i < count()`).
    fn spare_iovec(&mut self, i: usize) -> libc::iovec;
    /// Marks `n` bytes received, filling the buffers' spare capacity in order.
    ///
    /// # Safety
    ///
    /// The kernel must have written those `n` bytes through [`spare_iovec`]s.
    unsafe fn advance(&mut self, n: usize);
}

/// One buffer as a list, for `send_to`/`recv_from` without a `Vec`.
pub(crate) struct One<B>(pub(crate) B);

fn init_iovec(buf: &impl IoBuf) -> libc::iovec {
    libc::iovec {
        iov_base: buf.stable_ptr().cast_mut().cast(),
        iov_len: buf.bytes_init(),
    }
}

fn spare_iovec(buf: &mut impl IoBufMut) -> libc::iovec {
    let init = buf.bytes_init();
    libc::iovec {
        // SAFETY: `init <= bytes_total`, so the offset stays inside the allocation.
        iov_base: unsafe { buf.stable_mut_ptr().add(init) }.cast(),
        iov_len: buf.bytes_total() - init,
    }
}

/// # Safety
///
/// `n` bytes must have been written into `buf`'s spare capacity.
unsafe fn advance_one(buf: &mut impl IoBufMut, n: usize) -> usize {
    let init = buf.bytes_init();
    let take = n.min(buf.bytes_total() - init);
    // SAFETY: the caller promises the kernel wrote these bytes after `init`.
    unsafe { buf.set_init(init + take) };
    take
}

impl<B: IoBuf> BufList for One<B> {
    fn count(&self) -> usize {
        1
    }
    fn iovec(&self, _i: usize) -> libc::iovec {
        init_iovec(&self.0)
    }
}

impl<B: IoBufMut> BufListMut for One<B> {
    fn spare_iovec(&mut self, _i: usize) -> libc::iovec {
        spare_iovec(&mut self.0)
    }
    unsafe fn advance(&mut self, n: usize) {
        // SAFETY: forwarded from the caller.
        unsafe { advance_one(&mut self.0, n) };
    }
}

impl<B: IoBuf> BufList for Vec<B> {
    fn count(&self) -> usize {
        self.len()
    }
    fn iovec(&self, i: usize) -> libc::iovec {
        init_iovec(&self[i])
    }
}

impl<B: IoBufMut> BufListMut for Vec<B> {
    fn spare_iovec(&mut self, i: usize) -> libc::iovec {
        spare_iovec(&mut self[i])
    }
    unsafe fn advance(&mut self, mut n: usize) {
        for buf in self.iter_mut() {
            if n == 0 {
                break;
            }
            // SAFETY: the kernel fills the iovecs in order, so these bytes of this
            // buffer were written.
            n -= unsafe { advance_one(buf, n) };
        }
    }
}

/// The `msghdr` of a `sendmsg`/`recvmsg`, with its address and, for one buffer,
/// its iovec: all in one box, so they stay put while the op moves.
struct Header {
    msg: libc::msghdr,
    addr: SockAddrStorage,
    one: libc::iovec,
}

/// The iovecs of a message: the one in the header, or a `Vec` for several.
struct Message {
    header: Box<Header>,
    many: Vec<libc::iovec>,
}

impl Message {
    fn new(addr: Option<&SockAddr>) -> Message {
        let (storage, addr_len) = match addr {
            Some(addr) => (addr.clone().as_storage(), addr.len()),
            None => {
                let storage = SockAddrStorage::zeroed();
                let len = storage.size_of();
                (storage, len)
            }
        };
        // SAFETY: an all-zero `msghdr` is a valid empty message.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_namelen = addr_len;
        let one = libc::iovec {
            iov_base: std::ptr::null_mut(),
            iov_len: 0,
        };
        Message {
            header: Box::new(Header {
                msg,
                addr: storage,
                one,
            }),
            many: Vec::new(),
        }
    }

    /// Points the header at its address (if `named`) and at `iovecs`.
    fn build(&mut self, named: bool, iovecs: impl ExactSizeIterator<Item = libc::iovec>) {
        let header = &mut *self.header;
        let count = iovecs.len();
        if count == 1 {
            iovecs.for_each(|iovec| header.one = iovec);
            header.msg.msg_iov = &raw mut header.one;
        } else {
            self.many.clear();
            self.many.extend(iovecs);
            header.msg.msg_iov = self.many.as_mut_ptr();
        }
        header.msg.msg_iovlen = count;
        if named {
            header.msg.msg_name = (&raw mut header.addr).cast();
        } else {
            header.msg.msg_namelen = 0;
        }
    }
}

/// `IORING_OP_SENDMSG`: like `sendmsg(2)` with `MSG_NOSIGNAL`, to `addr` if given.
pub(crate) struct SendMsg<L> {
    fd: SharedFd,
    bufs: L,
    named: bool,
    message: Message,
}

impl<L: BufList> SendMsg<L> {
    pub(crate) fn new(fd: SharedFd, bufs: L, addr: Option<&SockAddr>) -> SendMsg<L> {
        SendMsg {
            fd,
            bufs,
            named: addr.is_some(),
            message: Message::new(addr),
        }
    }
}

// SAFETY: the entry points at the boxed header, which points at its own boxed
// address and iovec or at `message.many`'s heap storage, and those iovecs point at
// the buffers' heap storage: nothing inside `self`'s own bytes, so moving `self`
// is fine. `self.fd` keeps the fd open.
unsafe impl<L: BufList> OpCode for SendMsg<L> {
    type Output = BufResult<usize, L>;

    /// May wait for the peer (data to receive, or room to send): a paused clock does not wait for it.
    fn completes_on_its_own(&self) -> bool {
        false
    }

    fn sqe(&mut self) -> squeue::Entry {
        let bufs = &self.bufs;
        let iovecs = (0..bufs.count()).map(|i| bufs.iovec(i));
        self.message.build(self.named, iovecs);
        opcode::SendMsg::new(
            types::Fd(self.fd.as_raw_fd()),
            &raw const self.message.header.msg,
        )
        .flags(libc::MSG_NOSIGNAL as u32)
        .build()
    }

    fn complete(self, res: io::Result<u32>, _flags: u32) -> BufResult<usize, L> {
        (res.map(|n| n as usize), self.bufs)
    }
}

/// `IORING_OP_RECVMSG`: like `recvmsg(2)`, returning the sender's address.
pub(crate) struct RecvMsg<L> {
    fd: SharedFd,
    bufs: L,
    message: Message,
}

impl<L: BufListMut> RecvMsg<L> {
    pub(crate) fn new(fd: SharedFd, bufs: L) -> RecvMsg<L> {
        RecvMsg {
            fd,
            bufs,
            message: Message::new(None),
        }
    }
}

/// What `recvmsg` received: byte count, sender, and the `msg_flags` (`MSG_TRUNC`…).
pub(crate) type Received = (usize, SockAddr, i32);

// SAFETY: as for `SendMsg`; the iovecs point at the buffers' spare capacity.
unsafe impl<L: BufListMut> OpCode for RecvMsg<L> {
    type Output = BufResult<Received, L>;

    /// May wait for the peer (data to receive, or room to send): a paused clock does not wait for it.
    fn completes_on_its_own(&self) -> bool {
        false
    }

    fn sqe(&mut self) -> squeue::Entry {
        let bufs = &mut self.bufs;
        let count = bufs.count();
        let spare: IovecIter<'_, L> = IovecIter {
            bufs,
            next: 0,
            count,
        };
        self.message.build(true, spare);
        opcode::RecvMsg::new(
            types::Fd(self.fd.as_raw_fd()),
            &raw mut self.message.header.msg,
        )
        .build()
    }

    fn complete(mut self, res: io::Result<u32>, _flags: u32) -> BufResult<Received, L> {
        let n = match res {
            Ok(n) => n as usize,
            Err(err) => return (Err(err), self.bufs),
        };
        // SAFETY: the kernel wrote `n` bytes through the iovecs built in `sqe`.
        unsafe { self.bufs.advance(n) };
        let Header { msg, addr, .. } = *self.message.header;
        // SAFETY: the kernel initialised `msg_namelen` bytes of `addr` (at most
        // its size; the storage was zeroed before, so the rest is zero too).
        let from = unsafe { SockAddr::new(addr, msg.msg_namelen) };
        (Ok((n, from, msg.msg_flags)), self.bufs)
    }
}

/// The spare-capacity iovecs of a list, in order.
struct IovecIter<'a, L> {
    bufs: &'a mut L,
    next: usize,
    count: usize,
}

impl<L: BufListMut> Iterator for IovecIter<'_, L> {
    type Item = libc::iovec;

    fn next(&mut self) -> Option<libc::iovec> {
        if self.next == self.count {
            return None;
        }
        self.next += 1;
        Some(self.bufs.spare_iovec(self.next - 1))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.count - self.next;
        (left, Some(left))
    }
}

impl<L: BufListMut> ExactSizeIterator for IovecIter<'_, L> {}
