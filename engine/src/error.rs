//! Typed errors with messages written for the person at the terminal.
//!
//! Every error that comes from bad input names the file, and where it can the line
//! and the field, so that one line printed by the CLI is enough to find the problem.

use std::path::PathBuf;

/// billq's error type.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A path or URL that names nothing.
    #[error("{path}: no such file or directory")]
    NotFound { path: String },

    /// A glob or directory that matched no export files.
    #[error("{path}: no export files found")]
    NoFiles { path: String },

    /// A file whose format billq does not recognise.
    #[error("{path}: unknown format: {reason}")]
    UnknownFormat { path: String, reason: String },

    /// A file with no rows where rows were expected.
    #[error("{path}: empty file: no rows")]
    EmptyFile { path: String },

    /// Bad content at a known place in a file.
    #[error("{path}:{line}: {message}")]
    BadRow {
        path: String,
        line: u64,
        message: String,
    },

    /// A line that a schema inferred from the file's first lines does not cover; the
    /// file is read again with the whole file's schema.
    #[error("{path}: fields beyond the schema inferred from the first lines")]
    SchemaWidened { path: String },

    /// Bad content in a file, with no finer position (a truncated gzip stream, say).
    #[error("{path}: {message}")]
    BadFile { path: String, message: String },

    /// A URL billq cannot parse or has no object store for.
    #[error("{url}: {message}")]
    BadUrl { url: String, message: String },

    /// The store directory is not a billq store, or its catalog cannot be read.
    #[error("{path}: {message}")]
    Catalog { path: PathBuf, message: String },

    /// Reconciliation found a difference between a source and the store.
    #[error("verification failed: {0}")]
    Verify(String),

    /// An I/O error on a named path.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error(transparent)]
    ObjectStore(#[from] object_store::Error),

    #[error(transparent)]
    Arrow(#[from] arrow::error::ArrowError),

    #[error(transparent)]
    Parquet(#[from] parquet::errors::ParquetError),

    #[error(transparent)]
    DataFusion(#[from] datafusion::error::DataFusionError),

    /// SQL that billq's front end rejected.
    #[error("SQL error: {0}")]
    Sql(String),
    /// A request the data cannot answer as asked (a region the rate card lacks).
    #[error("{0}")]
    Unanswerable(String),
}

/// A `Result` with billq's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Wraps an I/O error with the path it happened on.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

impl From<Error> for datafusion::error::DataFusionError {
    fn from(e: Error) -> Self {
        match e {
            Error::DataFusion(e) => e,
            other => datafusion::error::DataFusionError::External(Box::new(other)),
        }
    }
}
