//! The Veritrace binary's library: the embedded platform (every service in one process), the
//! receipt verification command and the benchmarks.

pub mod admin_key;
pub mod audit;
pub mod bench;
pub mod bench_chain;
pub mod bench_distributed;
pub mod cli;
pub mod dead_letters;
pub mod domains;
pub mod explorer;
pub mod governance;
pub mod network;
pub mod node;
pub mod openapi;
pub mod platform;
pub mod receipt_source;
pub mod serve;
pub mod verify;
