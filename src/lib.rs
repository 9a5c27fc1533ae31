//! rustcached library (work in progress).
pub mod storage;
