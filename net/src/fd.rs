//! `AsFd`/`AsRawFd` for the socket types, so any option socket2 or libc offers
//! can be set on them (`socket2::SockRef::from(&stream)`).

/// Implements `AsFd` and `AsRawFd` for types with a `socket: Socket` field.
macro_rules! impl_fd {
    ($($ty:ty),*) => {$(
        impl std::os::fd::AsFd for $ty {
            fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
                std::os::fd::AsFd::as_fd(&self.socket)
            }
        }

        impl std::os::fd::AsRawFd for $ty {
            fn as_raw_fd(&self) -> std::os::fd::RawFd {
                std::os::fd::AsRawFd::as_raw_fd(&std::os::fd::AsFd::as_fd(&self.socket))
            }
        }
    )*};
}

pub(crate) use impl_fd;
