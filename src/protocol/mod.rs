//! Wire protocols: pure functions over byte buffers.
//!
//! Owns: framing and parsing of the classic text protocol (`text`), the meta protocol's parser
//! and reply encoders (`meta`), the binary protocol's 24-byte frames (`binary`), `lru_crawler metadump`'s
//! arguments and lines (`metadump`), UDP datagram framing (`udp`), ASCII auth's password file
//! and login (`asciiauth`), the number parsing rules memcached applies to tokens (`num`), and
//! a byte search for short spans (`find`).
//! Parsers borrow from the caller's buffer, never allocate per request, never block and never
//! log; they know nothing of sockets or storage.
//! The server (`server::*`) glues parsed requests to the store.

pub mod asciiauth;
pub mod binary;
pub mod find;
pub mod meta;
pub mod metadump;
pub mod num;
pub mod text;
pub mod udp;

pub use crate::memcached::KEY_MAX;
