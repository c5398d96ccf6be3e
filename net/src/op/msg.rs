use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

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

/// The iovecs of a message: the one in the header, or a `Vec` for several;
/// and its control buffer, if it carries fds.
struct Message {
    header: Box<Header>,
    many: Vec<libc::iovec>,
    control: Control,
}

/// The ancillary data of a message: `SCM_RIGHTS` fds to send, or room for
/// fds to receive. Heap memory (the kernel reads or writes it through the
/// header), aligned for `cmsghdr`.
enum Control {
    None,
    /// One `SCM_RIGHTS` message naming `fds`, which the op owns (duplicates of
    /// the caller's), so their numbers cannot be reused until the kernel took
    /// the files, even if the future is dropped and the caller closes its own.
    Send {
        buf: Box<[u64]>,
        _fds: Vec<OwnedFd>,
    },
    /// Room for `SCM_RIGHTS` fds the kernel installs in this process. Any it
    /// put there are closed when the message is dropped, unless
    /// [`Message::take_fds`] handed them out first.
    Recv {
        buf: Box<[u64]>,
    },
}

/// The `cmsghdr` of `n` fds: its full length and the space it takes.
fn rights_len(n: usize) -> (usize, usize) {
    let bytes = (n * size_of::<RawFd>()) as u32;
    // SAFETY: (both) pure arithmetic on the length.
    unsafe {
        (
            libc::CMSG_LEN(bytes) as usize,
            libc::CMSG_SPACE(bytes) as usize,
        )
    }
}

/// A zeroed, `u64`-aligned buffer of at least `bytes` bytes.
fn control_buf(bytes: usize) -> Box<[u64]> {
    vec![0u64; bytes.div_ceil(8)].into_boxed_slice()
}

impl Control {
    fn send(fds: Vec<OwnedFd>) -> Control {
        if fds.is_empty() {
            return Control::None;
        }
        let (len, space) = rights_len(fds.len());
        let mut buf = control_buf(space);
        let base = buf.as_mut_ptr().cast::<u8>();
        let header = libc::cmsghdr {
            cmsg_len: len as _,
            cmsg_level: libc::SOL_SOCKET,
            cmsg_type: libc::SCM_RIGHTS,
        };
        let data = rights_len(0).0;
        // SAFETY: `buf` holds `space >= len` bytes: the header, then one
        // `RawFd` per fd from `CMSG_LEN(0)` on; unaligned writes need no more.
        unsafe {
            base.cast::<libc::cmsghdr>().write_unaligned(header);
            for (i, fd) in fds.iter().enumerate() {
                base.add(data + i * size_of::<RawFd>())
                    .cast::<RawFd>()
                    .write_unaligned(fd.as_raw_fd());
            }
        }
        Control::Send { buf, _fds: fds }
    }

    fn recv(max_fds: usize) -> Control {
        // The kernel passes at most SCM_MAX_FD (253) fds in one message.
        let (_, space) = rights_len(max_fds.min(253));
        Control::Recv {
            buf: control_buf(space),
        }
    }

    /// The buffer and the length to give the kernel (`msg_controllen`).
    fn raw(&mut self) -> (*mut libc::c_void, usize) {
        match self {
            Control::None => (std::ptr::null_mut(), 0),
            Control::Send { buf, .. } | Control::Recv { buf } => {
                (buf.as_mut_ptr().cast(), buf.len() * 8)
            }
        }
    }
}

impl Message {
    fn new(addr: Option<&SockAddr>) -> Message {
        Message::with_control(addr, Control::None)
    }

    fn with_control(addr: Option<&SockAddr>, control: Control) -> Message {
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
            control,
        }
    }

    /// Points the header at its address (if `named`), at `iovecs` and at its
    /// control buffer.
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
        let (control, len) = self.control.raw();
        header.msg.msg_control = control;
        header.msg.msg_controllen = len;
    }

    /// The fds the kernel put in the receive buffer, now the caller's; none
    /// for a message that carries none. Called after the op's completion (the
    /// kernel set `msg_controllen` to the bytes it wrote); before it (an op
    /// never submitted, or cancelled before it received) the buffer is still
    /// zeroed and holds no fd. A second call finds none.
    fn take_fds(&mut self) -> Vec<OwnedFd> {
        let Control::Recv { buf } = &mut self.control else {
            return Vec::new();
        };
        let len = self.header.msg.msg_controllen.min(buf.len() * 8);
        let base = buf.as_ptr().cast::<u8>();
        let head = size_of::<libc::cmsghdr>();
        let data = rights_len(0).0;
        let mut fds = Vec::new();
        let mut at = 0;
        while at + head <= len {
            // SAFETY: `at + head <= len <=` the buffer's size.
            let cmsg = unsafe { base.add(at).cast::<libc::cmsghdr>().read_unaligned() };
            // `size_t` on glibc, `socklen_t` on musl.
            #[allow(clippy::unnecessary_cast)]
            let cmsg_len = cmsg.cmsg_len as usize;
            if cmsg_len < head || at + cmsg_len > len {
                break;
            }
            if cmsg.cmsg_level == libc::SOL_SOCKET && cmsg.cmsg_type == libc::SCM_RIGHTS {
                let count = cmsg_len.saturating_sub(data) / size_of::<RawFd>();
                for i in 0..count {
                    // SAFETY: inside this cmsg, which ends within the buffer.
                    let fd = unsafe {
                        base.add(at + data + i * size_of::<RawFd>())
                            .cast::<RawFd>()
                            .read_unaligned()
                    };
                    if fd >= 0 {
                        // SAFETY: `SCM_RIGHTS` installed this fd in our table
                        // for us alone; the buffer is zeroed below, so it is
                        // wrapped once.
                        fds.push(unsafe { OwnedFd::from_raw_fd(fd) });
                    }
                }
            }
            // The next header starts at the aligned end of this one.
            at += cmsg_len.next_multiple_of(size_of::<usize>());
        }
        buf.fill(0);
        self.header.msg.msg_controllen = 0;
        fds
    }
}

impl Drop for Message {
    /// A receive whose fds were never taken (its output never made: the data
    /// dropped after the kernel let go of it) closes them here.
    fn drop(&mut self) {
        drop(self.take_fds());
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

    /// A send with `fds` attached (`SCM_RIGHTS`); the op owns them until its
    /// data is dropped, after the kernel took the files.
    pub(crate) fn with_fds(fd: SharedFd, bufs: L, fds: Vec<OwnedFd>) -> SendMsg<L> {
        SendMsg {
            fd,
            bufs,
            named: false,
            message: Message::with_control(None, Control::send(fds)),
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

/// `IORING_OP_RECVMSG`: like `recvmsg(2)` with `MSG_CMSG_CLOEXEC`, returning
/// the sender's address and, if room was made for them, the fds sent along.
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

    /// A receive with room for `max_fds` fds (`SCM_RIGHTS`). Fds it received
    /// are closed if the output is dropped, or the op's data is dropped
    /// without an output (the future dropped in flight, or completed and
    /// never taken).
    pub(crate) fn with_fds(fd: SharedFd, bufs: L, max_fds: usize) -> RecvMsg<L> {
        RecvMsg {
            fd,
            bufs,
            message: Message::with_control(None, Control::recv(max_fds)),
        }
    }
}

/// What `recvmsg` received.
pub(crate) struct Received {
    /// Bytes received.
    pub(crate) len: usize,
    /// The sender.
    pub(crate) from: SockAddr,
    /// `msg_flags`: `MSG_TRUNC`, `MSG_CTRUNC`…
    pub(crate) flags: i32,
    /// The fds sent along (`SCM_RIGHTS`), close-on-exec; empty unless the op
    /// made room for them.
    pub(crate) fds: Vec<OwnedFd>,
}

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
        // Received fds are close-on-exec from the start: a child spawned by
        // another thread meanwhile inherits none.
        opcode::RecvMsg::new(
            types::Fd(self.fd.as_raw_fd()),
            &raw mut self.message.header.msg,
        )
        .flags(libc::MSG_CMSG_CLOEXEC as u32)
        .build()
    }

    fn complete(mut self, res: io::Result<u32>, _flags: u32) -> BufResult<Received, L> {
        let n = match res {
            Ok(n) => n as usize,
            // A failed receive installed no fd (and the message's drop would
            // close any).
            Err(err) => return (Err(err), self.bufs),
        };
        // SAFETY: the kernel wrote `n` bytes through the iovecs built in `sqe`.
        unsafe { self.bufs.advance(n) };
        let fds = self.message.take_fds();
        let header = &mut *self.message.header;
        let (namelen, flags) = (header.msg.msg_namelen, header.msg.msg_flags);
        let addr = std::mem::replace(&mut header.addr, SockAddrStorage::zeroed());
        // SAFETY: the kernel initialised `msg_namelen` bytes of `addr` (at most
        // its size; the storage was zeroed before, so the rest is zero too).
        let from = unsafe { SockAddr::new(addr, namelen) };
        let received = Received {
            len: n,
            from,
            flags,
            fds,
        };
        (Ok(received), self.bufs)
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
