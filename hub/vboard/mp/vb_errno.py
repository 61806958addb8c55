"""`errno` on the virtual board: Linux numbers, like a board's MicroPython
(the glue translates Emscripten's WASI numbers to these)."""
EPERM, ENOENT, EINTR, EIO, EBADF, EAGAIN, ENOMEM, EACCES = 1, 2, 4, 5, 9, 11, 12, 13
EBUSY, EEXIST, ENODEV, ENOTDIR, EISDIR, EINVAL, ENOSPC, EROFS = 16, 17, 19, 20, 21, 22, 28, 30
ENOTEMPTY, EOPNOTSUPP, ETIMEDOUT, EADDRINUSE, ECONNABORTED = 39, 95, 110, 98, 103
ECONNRESET, ENOBUFS, ENOTCONN, ECONNREFUSED, EHOSTUNREACH = 104, 105, 107, 111, 113
EALREADY, EINPROGRESS = 114, 115
errorcode = {v: k for k, v in globals().items() if k.startswith('E')}
