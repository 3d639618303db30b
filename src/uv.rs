//! The few libuv functions the event-loop transport needs, looked up at run time in
//! the host process (Node exports libuv). Absent (another runtime), the transport is
//! simply not used.

use std::ffi::{c_char, c_int, c_uint, c_void, CStr};
use std::sync::OnceLock;

pub type Handle = c_void;
pub type Req = c_void;
pub type Loop = c_void;

/// `uv_buf_t` on Unix.
#[repr(C)]
pub struct Buf {
  pub base: *mut c_char,
  pub len: usize,
}

pub const UV_TCP: c_int = 12;
pub const UV_TIMER: c_int = 13;
pub const UV_ASYNC: c_int = 1;
pub const UV_PREPARE: c_int = 9;
pub const UV_CONNECT: c_int = 2;
pub const UV_WRITE: c_int = 3;
pub const UV_GETADDRINFO: c_int = 8;
pub const UV_EOF: isize = -4095;
pub const UV_EAGAIN: c_int = -(libc::EAGAIN);
pub const UV_ECANCELED: c_int = -(libc::ECANCELED);

pub type CloseCb = unsafe extern "C" fn(*mut Handle);
pub type AllocCb = unsafe extern "C" fn(*mut Handle, usize, *mut Buf);
pub type ReadCb = unsafe extern "C" fn(*mut Handle, isize, *const Buf);
pub type StatusCb = unsafe extern "C" fn(*mut Req, c_int);
pub type TimerCb = unsafe extern "C" fn(*mut Handle);
pub type AsyncCb = unsafe extern "C" fn(*mut Handle);
pub type PrepareCb = unsafe extern "C" fn(*mut Handle);
pub type AddrInfoCb = unsafe extern "C" fn(*mut Req, c_int, *mut libc::addrinfo);

pub struct Uv {
  pub handle_size: unsafe extern "C" fn(c_int) -> usize,
  pub req_size: unsafe extern "C" fn(c_int) -> usize,
  pub tcp_init: unsafe extern "C" fn(*mut Loop, *mut Handle) -> c_int,
  pub tcp_nodelay: unsafe extern "C" fn(*mut Handle, c_int) -> c_int,
  pub tcp_connect:
    unsafe extern "C" fn(*mut Req, *mut Handle, *const libc::sockaddr, StatusCb) -> c_int,
  pub read_start: unsafe extern "C" fn(*mut Handle, AllocCb, ReadCb) -> c_int,
  pub read_stop: unsafe extern "C" fn(*mut Handle) -> c_int,
  pub try_write: unsafe extern "C" fn(*mut Handle, *const Buf, c_uint) -> c_int,
  pub write: unsafe extern "C" fn(*mut Req, *mut Handle, *const Buf, c_uint, StatusCb) -> c_int,
  pub close: unsafe extern "C" fn(*mut Handle, Option<CloseCb>),
  pub is_closing: unsafe extern "C" fn(*const Handle) -> c_int,
  pub is_active: unsafe extern "C" fn(*const Handle) -> c_int,
  pub ref_: unsafe extern "C" fn(*mut Handle),
  pub unref: unsafe extern "C" fn(*mut Handle),
  pub timer_init: unsafe extern "C" fn(*mut Loop, *mut Handle) -> c_int,
  pub timer_start: unsafe extern "C" fn(*mut Handle, TimerCb, u64, u64) -> c_int,
  pub timer_stop: unsafe extern "C" fn(*mut Handle) -> c_int,
  pub getaddrinfo: unsafe extern "C" fn(
    *mut Loop,
    *mut Req,
    AddrInfoCb,
    *const c_char,
    *const c_char,
    *const libc::addrinfo,
  ) -> c_int,
  pub async_init: unsafe extern "C" fn(*mut Loop, *mut Handle, AsyncCb) -> c_int,
  pub async_send: unsafe extern "C" fn(*mut Handle) -> c_int,
  pub freeaddrinfo: unsafe extern "C" fn(*mut libc::addrinfo),
  pub err_name: unsafe extern "C" fn(c_int) -> *const c_char,
  pub fileno: unsafe extern "C" fn(*const Handle, *mut c_int) -> c_int,
  pub prepare_init: unsafe extern "C" fn(*mut Loop, *mut Handle) -> c_int,
  pub prepare_start: unsafe extern "C" fn(*mut Handle, PrepareCb) -> c_int,
  pub default_loop: unsafe extern "C" fn() -> *mut Loop,
}

macro_rules! lookup {
  ($name:literal) => {{
    // SAFETY: dlsym on the running process; the symbol has the declared C signature.
    let symbol = unsafe { libc::dlsym(libc::RTLD_DEFAULT, concat!($name, "\0").as_ptr().cast()) };
    if symbol.is_null() {
      return None;
    }
    unsafe { std::mem::transmute::<*mut c_void, _>(symbol) }
  }};
}

// Each symbol's type is the field it is assigned to.
#[allow(clippy::missing_transmute_annotations)]
fn load() -> Option<Uv> {
  Some(Uv {
    handle_size: lookup!("uv_handle_size"),
    req_size: lookup!("uv_req_size"),
    tcp_init: lookup!("uv_tcp_init"),
    tcp_nodelay: lookup!("uv_tcp_nodelay"),
    tcp_connect: lookup!("uv_tcp_connect"),
    read_start: lookup!("uv_read_start"),
    read_stop: lookup!("uv_read_stop"),
    try_write: lookup!("uv_try_write"),
    write: lookup!("uv_write"),
    close: lookup!("uv_close"),
    is_closing: lookup!("uv_is_closing"),
    is_active: lookup!("uv_is_active"),
    ref_: lookup!("uv_ref"),
    unref: lookup!("uv_unref"),
    timer_init: lookup!("uv_timer_init"),
    timer_start: lookup!("uv_timer_start"),
    timer_stop: lookup!("uv_timer_stop"),
    getaddrinfo: lookup!("uv_getaddrinfo"),
    async_init: lookup!("uv_async_init"),
    async_send: lookup!("uv_async_send"),
    freeaddrinfo: lookup!("uv_freeaddrinfo"),
    err_name: lookup!("uv_err_name"),
    fileno: lookup!("uv_fileno"),
    prepare_init: lookup!("uv_prepare_init"),
    prepare_start: lookup!("uv_prepare_start"),
    default_loop: lookup!("uv_default_loop"),
  })
}

/// libuv, when the host process has it.
pub fn get() -> Option<&'static Uv> {
  static UV: OnceLock<Option<Uv>> = OnceLock::new();
  UV.get_or_init(load).as_ref()
}

impl Uv {
  /// The error's name (`ECONNREFUSED`, `EAI_NONAME`, …).
  pub fn name(&self, err: c_int) -> &'static str {
    // SAFETY: libuv returns a static string (or a leaked one for unknown codes).
    let ptr = unsafe { (self.err_name)(err) };
    if ptr.is_null() {
      return "EPROTO";
    }
    unsafe { CStr::from_ptr(ptr) }.to_str().unwrap_or("EPROTO")
  }
}

/// Zeroed, 8-byte aligned memory for a libuv handle or request whose first field is
/// `void* data`.
pub struct Block(Box<[u64]>);

impl Block {
  pub fn new(size: usize) -> Self {
    Self(vec![0u64; size.div_ceil(8).max(1)].into_boxed_slice())
  }

  pub fn ptr(&mut self) -> *mut c_void {
    self.0.as_mut_ptr().cast()
  }

  /// Leaks the block (freed by [`Block::free`] from a callback).
  pub fn into_raw(self) -> *mut c_void {
    Box::into_raw(self.0).cast::<u64>().cast()
  }

  /// # Safety
  /// `ptr` came from [`Block::into_raw`] with the same `size`.
  pub unsafe fn free(ptr: *mut c_void, size: usize) {
    let len = size.div_ceil(8).max(1);
    drop(Box::from_raw(std::ptr::slice_from_raw_parts_mut(
      ptr.cast::<u64>(),
      len,
    )));
  }
}

/// The `data` field every libuv handle and request starts with.
///
/// # Safety
/// `handle` points to a live libuv handle or request.
pub unsafe fn data<T>(handle: *mut c_void) -> *mut T {
  *(handle as *mut *mut T)
}

/// # Safety
/// As [`data`].
pub unsafe fn set_data<T>(handle: *mut c_void, value: *mut T) {
  *(handle as *mut *mut T) = value;
}
