//! Integration tests of the real `billq` binary, one module per theme.

mod aws;
mod azure;
mod common;
mod convert;
mod errors;
mod focus;
mod generate;
mod memory;
mod query;
mod remote;
mod report;
mod s3;
mod seed;
